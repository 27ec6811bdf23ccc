"""A job's webhook on its row: queued with the body it sends, each attempt recorded and
logged, sent again on the operator's word (docs/webhooks.md)."""

from __future__ import annotations

from dataclasses import dataclass

from .items import AppendEntry, Fields, to_attr
from .rows import Row, TaskCallback, Webhook, WebhookState
from .table_base import TableBase


@dataclass(frozen=True)
class WebhookAttempt:
    """What one attempt to deliver a webhook came to."""

    state: WebhookState  # PENDING: it failed and is tried again about `next_at`
    answer: str
    at: float
    next_at: float | None = None
    seconds: float = 0.0  # how long the POST took


class WebhookWrites(TableBase):
    """The tasks table's writes of webhooks."""

    def webhook_queued(self, job_id: str, delivery_id: str, now: float, body: str) -> bool:
        """Record a new webhook as pending, with the body it sends; False when this
        delivery was recorded before (a notice sent again after a crash), which is left
        as it is."""
        fields: Fields = {
            "webhook_id": delivery_id,
            "webhook_body": body,
            "webhook_state": WebhookState.PENDING.value,
            "webhook_queued_at": now,
            "webhook_attempts": 0,
            "webhook_answer": None,
            "webhook_ended_at": None,
            "webhook_next_at": None,
        }
        return (
            self._update(
                job_id,
                fields,
                condition="attribute_exists(job_id)"
                " AND (attribute_not_exists(webhook_id) OR webhook_id <> :delivery)",
                extra_values={":delivery": to_attr(delivery_id)},
            )
            is not None
        )

    def webhook_attempted(self, job_id: str, seen: Webhook, attempt: WebhookAttempt) -> Row | None:
        """Record one attempt of a pending webhook, as `seen` before it: None when another
        attempt was recorded meanwhile, or the webhook is no longer that one or pending."""
        fields: Fields = {
            "webhook_state": attempt.state.value,
            "webhook_attempts": seen.attempts + 1,
            "webhook_answer": attempt.answer,
            "webhook_ended_at": attempt.at if attempt.state.ended else None,
            "webhook_next_at": attempt.next_at,
            "webhook_log": AppendEntry(
                {
                    "delivery": seen.delivery_id,
                    "at": attempt.at,
                    "answer": attempt.answer,
                    "seconds": attempt.seconds,
                }
            ),
        }
        return self._update(
            job_id,
            fields,
            condition="webhook_id = :delivery AND webhook_state = :pending"
            " AND webhook_attempts = :seen",
            extra_values={
                ":delivery": to_attr(seen.delivery_id),
                ":pending": to_attr(WebhookState.PENDING.value),
                ":seen": to_attr(seen.attempts),
            },
        )

    def webhook_resent(self, job_id: str, delivery_id: str, now: float) -> Row | None:
        """Make an ended webhook pending again, for the operator's resend: the same
        delivery id and body, a new retry window from `now`; its attempts keep counting.
        None when the row holds no such ended webhook (pending, or another delivery)."""
        ended = {f":ended{i}": to_attr(s.value) for i, s in enumerate(WebhookState) if s.ended}
        fields: Fields = {
            "webhook_state": WebhookState.PENDING.value,
            "webhook_queued_at": now,
            "webhook_ended_at": None,
            "webhook_next_at": None,
        }
        return self._update(
            job_id,
            fields,
            condition=f"webhook_id = :delivery AND webhook_state IN ({', '.join(ended)})"
            " AND attribute_exists(webhook_body)",
            extra_values={":delivery": to_attr(delivery_id), **ended},
        )

    def task_queued(self, job_id: str, notice_id: str, output: str) -> bool:
        """Record the answer owed to the job's Step Functions task for this ending, with
        what it carries; False when this ending's was recorded before."""
        fields: Fields = {
            "task_notice": notice_id,
            "task_state": "pending",
            "task_output": output,
            "task_attempts": 0,
            "task_answer": None,
        }
        return (
            self._update(
                job_id,
                fields,
                condition="attribute_exists(job_id)"
                " AND (attribute_not_exists(task_notice) OR task_notice <> :notice)",
                extra_values={":notice": to_attr(notice_id)},
            )
            is not None
        )

    def task_attempted(self, job_id: str, seen: TaskCallback, state: str, answer: str) -> bool:
        """Record one attempt to answer the task, as `seen` before it; False when another
        was recorded meanwhile."""
        fields: Fields = {
            "task_state": state,
            "task_attempts": seen.attempts + 1,
            "task_answer": answer,
        }
        return (
            self._update(
                job_id,
                fields,
                condition="task_notice = :notice AND task_state = :pending"
                " AND task_attempts = :seen",
                extra_values={
                    ":notice": to_attr(seen.notice_id),
                    ":pending": to_attr("pending"),
                    ":seen": to_attr(seen.attempts),
                },
            )
            is not None
        )
