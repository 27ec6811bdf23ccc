"""The last step of every job: one notification, then the row leaves the due index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Settings
from .notifications import notification_body, publish
from .observability import logger
from .song_store import presigned_url
from .task_rows import Row, TaskTable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient


def announce(
    row: Row, *, table: TaskTable, sns: SNSClient, s3: S3Client, settings: Settings, now: float
) -> None:
    """Publish the job's notification and close the row.

    A crash between the two leaves the row due with `notified` false, and the next
    poll sends the notification then; the row is never closed without one.
    """
    url = (
        presigned_url(
            s3, settings.audio_bucket_name, row.song_key, settings.presign_expires_seconds
        )
        if row.song_key
        else None
    )
    body = notification_body(row, songs_bucket=settings.audio_bucket_name, song_url=url)
    message_id = publish(sns, settings.notify_topic_arn, body)
    table.mark_notified(row.job_id, expires_at=now + settings.terminal_ttl_days * 86400)
    logger.info(
        "notification sent",
        extra={"status": row.state.value, "sns_message_id": message_id, "error": row.error},
    )
