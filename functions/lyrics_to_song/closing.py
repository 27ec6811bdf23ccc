"""The last step of every job: one notification, then the row leaves the due index."""

from __future__ import annotations

from .notifications import notification_body, publish, put_event
from .observability import count, logger
from .services import Services
from .song_store import presigned_url
from .task_rows import JobState, Row

# Counted once, when a job reaches the state (not when a notification is sent again).
ENDED_METRICS = {
    JobState.COMPLETED: "SongsCompleted",
    JobState.FAILED: "SongsFailed",
    JobState.TIMED_OUT: "SongsTimedOut",
    JobState.UNKNOWN: "SubmissionsUnknown",
}


def ended(services: Services, row: Row) -> None:
    """A job has just reached its terminal state: count it and announce it."""
    count(ENDED_METRICS[row.state])
    announce(services, row)


def announce(services: Services, row: Row) -> None:
    """Publish the job's notification (SNS) and event (EventBridge), then close the row.

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
    expires_at = services.clock() + settings.terminal_ttl_days * 86400
    services.table.mark_notified(row.job_id, expires_at=expires_at)
    logger.info(
        "notification sent",
        extra={
            "status": row.state.value,
            "sns_message_id": message_id,
            "event_id": event_id,
            "error": row.error,
        },
    )
