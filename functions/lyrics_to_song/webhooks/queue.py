"""Webhooks, the part the poll and submit functions play: when a job with a callback_url
ends, its notification body is kept on its row and a message goes on the webhooks
queue, for the webhook function to deliver (delivery.py). Nothing here waits on the
receiver.

How receivers check a delivery, and what each header holds: docs/webhooks.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..data.rows import Row

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from ..data.task_table import TaskTable


@dataclass(frozen=True)
class WebhookMessage:
    """One webhook on the queue: the job and the delivery. What is sent, and where, is
    read from the job's row: the queue is no signing oracle."""

    delivery_id: str
    job_id: str
    # A message queued by an earlier version carries its URL and body; the body is sent
    # only to the row's own callback_url, for the webhooks under way during an update.
    url: str | None = None
    body: str | None = None

    def to_json(self) -> str:
        return json.dumps({"delivery_id": self.delivery_id, "job_id": self.job_id})

    @classmethod
    def from_json(cls, text: str) -> WebhookMessage:
        fields: dict[str, Any] = json.loads(text)
        url, body = fields.get("url"), fields.get("body")
        return cls(
            str(fields["delivery_id"]),
            str(fields["job_id"]),
            url if isinstance(url, str) else None,
            body if isinstance(body, str) else None,
        )


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
    table.webhook_queued(row.job_id, delivery_id, now, body)
    message = WebhookMessage(delivery_id, row.job_id)
    sqs.send_message(QueueUrl=queue_url, MessageBody=message.to_json())
    return True


def notice_id(row: Row) -> str:
    """The same on every send of one ending, new for the next ending of the job (after a
    resubmission): the job id and the ending's number, 1 for the first. It is also the
    webhook's `webhook-id`, so it holds no `.` (the separator of the signed text)."""
    return f"{row.job_id}_{row.resubmits + 1}"
