"""`lyrics-to-song webhook`: what a tenant's receiver needs (docs/webhooks.md: Checking a
webhook)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from lyrics_to_song.data.rows import DEFAULT_TENANT, Row, WebhookState
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.data.webhook_keys import WebhookKeyStore
from lyrics_to_song.webhooks.queue import WebhookMessage
from lyrics_to_song.webhooks.signing import SECRET_PREFIX, tenant_secret

from .stack_target import CliError, Cloud, ExitCode, spending_table_of


@dataclass(frozen=True)
class Secrets:
    """A tenant's signing secret now, and during a rotation (its own or the root key's)
    the one before it; for `default` after an upgrade, until when its old secret (the
    root key, never printed) signs too."""

    current: str
    previous: str | None = None
    previous_until: float | None = None
    legacy_until: float | None = None


def secrets(cloud: Cloud, tenant: str, now: float) -> Secrets:
    """The secrets that sign for `tenant` now, derived here from the root key (the caller
    must be allowed to read it); the root key itself is never returned."""
    keys, store = _store(cloud).keys(tenant), _store(cloud)
    root = _root(cloud)
    generations = keys.signing(now)
    current = tenant_secret(root, tenant, generations[0])
    legacy = keys.legacy_until if tenant == DEFAULT_TENANT and now < keys.legacy_until else None
    if len(generations) > 1:
        previous = tenant_secret(root, tenant, generations[1])
        return Secrets(current, previous, keys.previous_until, legacy)
    root_until = store.root_previous_until()
    if now < root_until and (old_root := _root(cloud, "AWSPREVIOUS")):
        return Secrets(
            current, tenant_secret(old_root, tenant, keys.generation), root_until, legacy
        )
    return Secrets(current, legacy_until=legacy)


def rotate(cloud: Cloud, tenant: str, overlap_seconds: float, now: float) -> Secrets:
    """A new secret for the tenant; the old one signs too for `overlap_seconds`, so its
    receivers can change over without missing a delivery."""
    root = _root(cloud)
    keys = _store(cloud).rotate(tenant, now + overlap_seconds)
    return Secrets(
        tenant_secret(root, tenant, keys.generation),
        tenant_secret(root, tenant, keys.generation - 1),
        keys.previous_until,
    )


def rotate_root(cloud: Cloud, overlap_seconds: float, now: float) -> float:
    """A new root key: every tenant's secret changes, and for `overlap_seconds` each
    delivery is signed with the secret of the old root too (docs/webhooks.md: Rotating
    the root key). The overlap is recorded before the new key is put, so no function
    ever signs with the new root alone inside it. Until when the old root signs."""
    arn = _secret_arn(cloud)
    until = now + overlap_seconds
    _store(cloud).set_root_previous_until(until)
    new = SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()
    cloud.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=new)
    return until


def _store(cloud: Cloud) -> WebhookKeyStore:
    return WebhookKeyStore(cloud.dynamodb, spending_table_of(cloud, "rotate webhook secrets"))


def _secret_arn(cloud: Cloud) -> str:
    if not cloud.webhook_secret_arn:
        raise CliError(
            f"stack {cloud.stack_name!r} has no WebhookSecretArn output: it sends no webhooks",
            ExitCode.ENVIRONMENT,
        )
    return cloud.webhook_secret_arn


def _root(cloud: Cloud, stage: str = "AWSCURRENT") -> str:
    """The stack's root key (the caller must be allowed to read it): kept in memory to
    derive a tenant's secret, never printed."""
    found = cloud.client("secretsmanager").get_secret_value(
        SecretId=_secret_arn(cloud), VersionStage=stage
    )
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
