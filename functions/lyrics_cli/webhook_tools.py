"""`lyrics-to-song webhook`: what a tenant's receiver needs (docs/webhooks.md: Checking a
webhook)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lyrics_to_song.data.caps import TenantStore
from lyrics_to_song.data.rows import Row, WebhookState
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.webhooks.queue import WebhookMessage
from lyrics_to_song.webhooks.signing import tenant_secret

from .stack_target import CliError, Cloud, ExitCode, spending_table_of


@dataclass(frozen=True)
class Secrets:
    """A tenant's signing secret now, and during a rotation the one before it."""

    current: str
    previous: str | None = None
    previous_until: float | None = None


def secrets(cloud: Cloud, tenant: str, now: float) -> Secrets:
    """The secrets that sign for `tenant` now (the caller must be allowed to read the
    stack's), from its secret's generation."""
    stack = _stack_secret(cloud)
    keys = _store(cloud).webhook_keys(tenant)
    found = [tenant_secret(stack, tenant, g) for g in keys.signing(now)]
    if len(found) == 1:
        return Secrets(found[0])
    return Secrets(found[0], found[1], keys.previous_until)


def rotate(cloud: Cloud, tenant: str, overlap_seconds: float, now: float) -> Secrets:
    """A new secret for the tenant; the old one signs too for `overlap_seconds`, so its
    receivers can change over without missing a delivery."""
    stack = _stack_secret(cloud)
    keys = _store(cloud).rotate_webhook(tenant, now + overlap_seconds)
    return Secrets(
        tenant_secret(stack, tenant, keys.generation),
        tenant_secret(stack, tenant, keys.generation - 1),
        keys.previous_until,
    )


def _store(cloud: Cloud) -> TenantStore:
    return TenantStore(cloud.dynamodb, spending_table_of(cloud, "rotate webhook secrets"))


def _stack_secret(cloud: Cloud) -> str:
    """The stack's signing secret (the caller must be allowed to read it)."""
    if not cloud.webhook_secret_arn:
        raise CliError(
            f"stack {cloud.stack_name!r} has no WebhookSecretArn output: it sends no webhooks",
            ExitCode.ENVIRONMENT,
        )
    found = cloud.client("secretsmanager").get_secret_value(SecretId=cloud.webhook_secret_arn)
    value = str(found.get("SecretString") or "")
    if not value:
        raise CliError("the stack's webhook signing secret has no value", ExitCode.ENVIRONMENT)
    return value


def resend(cloud: Cloud, row: Row, now: float) -> Row:
    """Send the job's last notice again: the same webhook-id and body, a fresh timestamp
    and signature at each attempt, a new retry window. Only a webhook that has ended
    (delivered, refused or given up) is sent again; a pending one is on its way."""
    hook = row.webhook
    if hook is None:
        raise CliError(f"job {row.job_id} has sent no webhook", ExitCode.USAGE)
    if not hook.state.ended:
        raise CliError(
            f"job {row.job_id}'s webhook is being delivered (attempt {hook.attempts + 1} "
            "next): it is not sent twice",
            ExitCode.USAGE,
        )
    if not cloud.webhook_queue_url:
        raise CliError(
            f"stack {cloud.stack_name!r} has no WebhookQueueUrl output", ExitCode.ENVIRONMENT
        )
    again = TaskTable(cloud.dynamodb, cloud.tasks_table).webhook_resent(
        row.job_id, hook.delivery_id, now
    )
    if again is None:
        raise CliError(
            f"job {row.job_id}'s webhook changed meanwhile (or was queued by an earlier "
            "version, without its body): see lyrics-to-song webhook log",
            ExitCode.USAGE,
        )
    message = WebhookMessage(hook.delivery_id, row.job_id)
    cloud.sqs.send_message(QueueUrl=cloud.webhook_queue_url, MessageBody=message.to_json())
    return again


def to_recover(cloud: Cloud, since: float, tenant: str | None) -> list[Row]:
    """The jobs whose webhook was given up or refused since `since` (a scan: rows are
    kept for TERMINAL_TTL_DAYS)."""
    rows = TaskTable(cloud.dynamodb, cloud.tasks_table).rows()
    return sorted(
        (
            row
            for row in rows
            if row.webhook is not None
            and row.webhook.state in (WebhookState.GIVEN_UP, WebhookState.REFUSED)
            and (row.webhook.ended_at or 0) >= since
            and tenant in (None, row.tenant)
        ),
        key=lambda row: (row.webhook.ended_at or 0.0) if row.webhook else 0.0,
    )


def since_time(text: str) -> float:
    """`--since`: a date (UTC midnight) or an ISO 8601 time."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"--since must be a date or a time (2026-11-29, 2026-11-29T14:00Z), got {text!r}",
            ExitCode.USAGE,
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
