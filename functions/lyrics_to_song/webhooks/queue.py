"""Webhooks, the part the poll and submit functions play: when a job with a callback_url
ends, its notification body goes on the webhooks queue, for the webhook function to
deliver (delivery.py). Nothing here waits on the receiver.

How receivers check a delivery, and what each header holds: docs/webhooks.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..data.rows import Row

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from ..data.task_table import TaskTable

DELIVERY_HEADER = "Lyrics-Delivery-Id"
TIMESTAMP_HEADER = "Lyrics-Timestamp"
SIGNATURE_HEADER = "Lyrics-Signature"
SIGNATURE_SCHEME = "sha256="


@dataclass(frozen=True)
class WebhookMessage:
    """One webhook on the queue: where it goes and the exact bytes it carries."""

    delivery_id: str
    job_id: str
    url: str
    body: str  # the notification body as JSON text, signed as it is

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> WebhookMessage:
        fields: dict[str, Any] = json.loads(text)
        return cls(**{name: str(fields[name]) for name in ("delivery_id", "job_id", "url", "body")})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256, keyed with the secret, of `<timestamp>.<body>`."""
    signed = f"{timestamp}.".encode() + body
    return SIGNATURE_SCHEME + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def queue_webhook(
    table: TaskTable, sqs: SQSClient, queue_url: str, row: Row, *, body: str, now: float
) -> bool:
    """Put the webhook of the row's ending on the queue, recorded as pending first.

    Sent again when the notice is (a crash before the row was closed), unless this
    delivery already ended: the receiver drops a copy by its delivery id. False when
    nothing was sent."""
    assert row.callback_url is not None
    delivery_id = notice_id(row)
    seen = row.webhook
    if seen is not None and seen.delivery_id == delivery_id and seen.state.ended:
        return False
    table.webhook_queued(row.job_id, delivery_id, now)
    message = WebhookMessage(delivery_id, row.job_id, row.callback_url, body)
    sqs.send_message(QueueUrl=queue_url, MessageBody=message.to_json())
    return True


def notice_id(row: Row) -> str:
    """The same on every send of one ending, new for the next ending of the job (after a
    resubmission): the job id and the ending's number, 1 for the first. It is also the
    webhook's delivery id."""
    return f"{row.job_id}.{row.resubmits + 1}"
