"""The one notification each job gets when it ends, published to SNS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .task_rows import Row

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def notification_body(row: Row, *, songs_bucket: str, song_url: str | None) -> dict[str, Any]:
    """The JSON subscribers receive; see the README for the schema."""
    song = None
    if row.song_key:
        song = {
            "s3_uri": f"s3://{songs_bucket}/{row.song_key}",
            "url": song_url,
            "bytes": row.song_bytes,
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
