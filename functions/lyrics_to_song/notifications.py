"""The one notification each job gets when it ends, published to SNS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .sidecar import sidecar_key
from .task_rows import Row

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

EVENT_SOURCE = "lyrics-to-song"
EVENT_DETAIL_TYPE = "Song Job Ended"


def notification_body(row: Row, *, songs_bucket: str, song_url: str | None) -> dict[str, Any]:
    """The JSON subscribers receive; see the README for the schema."""
    song = None
    if row.song_key:
        song = {
            "s3_uri": f"s3://{songs_bucket}/{row.song_key}",
            "url": song_url,
            "bytes": row.song_bytes,
            "sidecar_s3_uri": f"s3://{songs_bucket}/{sidecar_key(row.song_key)}",
        }
    return {
        "job_id": row.job_id,
        "task_id": row.task_id,
        "status": row.state.value,
        "source": row.source,
        "model": row.model,
        "song": song,
        "duration_seconds": row.duration_seconds,
        "error": row.error,
        "created_at": row.created_at,
        "submitted_at": row.submitted_at,
        "finished_at": row.finished_at,
    }


def publish(sns: SNSClient, topic_arn: str, body: dict[str, Any]) -> str:
    """Publish with a `status` attribute so subscribers can filter; returns the message id."""
    response = sns.publish(
        TopicArn=topic_arn,
        Subject=f"lyrics-to-song: {body['status']}"[:100],
        Message=json.dumps(body, ensure_ascii=False),
        MessageAttributes={"status": {"DataType": "String", "StringValue": body["status"]}},
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
