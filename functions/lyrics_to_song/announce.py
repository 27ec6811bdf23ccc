"""Announcing the end of a job: one notification (SNS) and one event (EventBridge), then
the row leaves the due index.

The body's schema is in the docs/notifications.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .audio.sidecar import sidecar_key
from .audio.store import presigned_url
from .data.rows import JobState, Row
from .observability import count, logger
from .webhooks.queue import notice_id, queue_webhook
from .webhooks.task_callbacks import output_of, queue_task_answer, task_of

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

    from .services import Services

EVENT_SOURCE = "lyrics-to-song"
EVENT_DETAIL_TYPE = "Song Job Ended"
# Counted once, when a job reaches the state (not when a notification is sent again).
ENDED_METRICS = {
    JobState.COMPLETED: "SongsCompleted",
    JobState.FAILED: "SongsFailed",
    JobState.TIMED_OUT: "SongsTimedOut",
    JobState.UNKNOWN: "SubmissionsUnknown",
    JobState.CANCELLED: "SongsCancelled",
}


def ended(services: Services, row: Row) -> None:
    """A job has just reached its terminal state: count it and announce it."""
    count(ENDED_METRICS[row.state])
    announce(services, row)


def announce(services: Services, row: Row) -> None:
    """Publish the job's notification and event (and queue its webhook, if it has a
    callback_url, and the answer to its Step Functions task, if one waits), then close
    the row.

    A crash before the row is closed leaves it due with `notified` false, and the next
    poll sends them then; the row is never closed without them.
    """
    settings = services.settings
    url = (
        presigned_url(
            services.s3, settings.audio_bucket_name, row.song_key, settings.presign_expires_seconds
        )
        if row.song_key
        else None
    )
    body = notification_body(row, songs_bucket=settings.audio_bucket_name, song_url=url)
    message_id = publish(services.sns, settings.notify_topic_arn, body)
    event_id = put_event(services.events, settings.event_bus_name, body)
    webhook = bool(
        row.callback_url
        and settings.webhook_queue_url
        and queue_webhook(
            services.table,
            services.sqs,
            settings.webhook_queue_url,
            row,
            body=json.dumps(body, ensure_ascii=False),
            now=services.clock(),
        )
    )
    answers = settings.task_answer_queue_url or settings.webhook_queue_url
    if answers and task_of(row) is not None:
        queue_task_answer(
            services.table,
            services.sqs,
            answers,
            row,
            output=output_of(row, body, settings.audio_bucket_name),
        )
    expires_at = services.clock() + settings.terminal_ttl_days * 86400
    services.table.mark_notified(row.job_id, expires_at=expires_at)
    logger.info(
        "notification sent",
        extra={
            "status": row.state.value,
            "sns_message_id": message_id,
            "event_id": event_id,
            "webhook_queued": webhook,
            "error": row.error,
        },
    )


def event_type(row: Row) -> str:
    """What the notice tells, for receivers that route by it: `song.completed`,
    `song.failed`, `song.timed_out` or `song.unknown`."""
    return "song." + row.state.value.lower()


def notification_body(row: Row, *, songs_bucket: str, song_url: str | None) -> dict[str, Any]:
    """The JSON subscribers receive; see docs/notifications.md for the schema. Everything but the
    presigned `url` comes from the stored row, so a re-sent notice is the same notice."""
    song = None
    if row.song_key:
        song = {
            "s3_uri": f"s3://{songs_bucket}/{row.song_key}",
            "url": song_url,
            "bytes": row.song_bytes,
            "sample_rate": row.sample_rate,
            "bitrate": row.bitrate,
            "sidecar_s3_uri": f"s3://{songs_bucket}/{sidecar_key(row.song_key)}",
        }
    return {
        "type": event_type(row),
        "notice_id": notice_id(row),
        "job_id": row.job_id,
        "task_id": row.task_id,
        "status": row.state.value,
        "source": row.source,
        "request_id": row.request_id,
        "tenant": row.tenant,
        "model": row.model,
        "song": song,
        "cost": row.charge.as_dict(),
        "duration_seconds": row.duration_seconds,
        "error": row.error,
        "created_at": row.created_at,
        "submitted_at": row.submitted_at,
        "finished_at": row.finished_at,
    }


def publish(sns: SNSClient, topic_arn: str, body: dict[str, Any]) -> str:
    """Publish with `status`, `tenant` and `notice_id` attributes, so subscribers can
    filter and drop copies; returns the message id."""
    response = sns.publish(
        TopicArn=topic_arn,
        Subject=f"lyrics-to-song: {body['status']}"[:100],
        Message=json.dumps(body, ensure_ascii=False),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": body[name]}
            for name in ("status", "tenant", "notice_id")
        },
    )
    return response["MessageId"]


def put_event(events: EventBridgeClient, bus_name: str, body: dict[str, Any]) -> str:
    """The same body as an EventBridge event (detail type "Song Job Ended"); returns its id."""
    response = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": EVENT_DETAIL_TYPE,
                "Detail": json.dumps(body, ensure_ascii=False),
                "EventBusName": bus_name,
            }
        ]
    )
    entry = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in entry:
        raise RuntimeError(
            f"EventBridge refused the event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
    return entry["EventId"]
