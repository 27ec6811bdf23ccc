"""`lyrics-to-song webhook`: what a tenant's receiver needs (docs/webhooks.md: Checking a
webhook)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lyrics_to_song.data.rows import Row, WebhookState
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.data.webhook_keys import WebhookKeyStore
from lyrics_to_song.webhooks.operator_requests import new_root, tenant_secrets
from lyrics_to_song.webhooks.queue import WebhookMessage

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
    """The secrets that sign for `tenant` now, as the webhook function derives them (the
    root key never leaves Secrets Manager but for it: docs/webhooks.md). A stack with no
    function to ask (the local one) has them derived here, from its root key, which is
    never printed."""
    found = _ask_function(cloud, {"operator": "secret", "tenant": tenant})
    if found is None or "secret" not in found:  # none, or one of a version before
        found = tenant_secrets(_store(cloud), lambda stage: _root(cloud, stage), tenant, now)
    return Secrets(
        found["secret"], found["previous_secret"], found["previous_until"], found["legacy_until"]
    )


def rotate(cloud: Cloud, tenant: str, overlap_seconds: float, now: float) -> Secrets:
    """A new secret for the tenant; the old one signs too for `overlap_seconds`, so its
    receivers can change over without missing a delivery."""
    _store(cloud).rotate(tenant, now + overlap_seconds)
    return secrets(cloud, tenant, now)


def rotate_root(cloud: Cloud, overlap_seconds: float, now: float) -> float:
    """A new root key: every tenant's secret changes, and for `overlap_seconds` each
    delivery is signed with the secret of the old root too (docs/webhooks.md: Rotating
    the root key). The overlap is recorded before the new key is put (by the webhook
    function, where there is one), so no function ever signs with the new root alone
    inside it. Until when the old root signs."""
    arn = _secret_arn(cloud)
    until = now + overlap_seconds
    store = _store(cloud)
    store.set_root_previous_until(until)
    try:
        if "rotated" not in (_ask_function(cloud, {"operator": "rotate-root"}) or {}):
            cloud.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=new_root())
    except Exception:
        store.set_root_previous_until(0)  # not rotated: no older root signs meanwhile
        raise
    return until


def _ask_function(cloud: Cloud, request: dict[str, Any]) -> dict[str, Any] | None:
    """The webhook function's answer to an operator's request (lambda:InvokeFunction on
    the output WebhookFunctionName); None when the stack has no such function to ask."""
    if not cloud.webhook_function:
        return None
    try:
        response = cloud.client("lambda").invoke(
            FunctionName=cloud.webhook_function, Payload=json.dumps(request).encode()
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None  # the local stack runs its functions in its own process
        raise
    answer = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError") or not isinstance(answer, dict) or "error" in answer:
        said = answer.get("error") or answer.get("errorMessage") if isinstance(answer, dict) else ""
        raise CliError(
            f"the webhook function could not answer: {str(said)[:300]}", ExitCode.ENVIRONMENT
        )
    return answer


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
            f"version, without its body): see `lyrics-to-song webhook log {row.job_id}`",
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
