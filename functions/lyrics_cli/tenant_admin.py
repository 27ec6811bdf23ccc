"""`lyrics-to-song tenants`: the stack's tenants, added, paused, resumed and removed by
its operator; and the check every command makes of a tenant it is given
(docs/producers.md: A tenant's life)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lyrics_to_song.data.rows import DEFAULT_TENANT, JobState, Row
from lyrics_to_song.data.senders import SenderStore
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.data.tenant_registry import Tenant, TenantRegistry
from lyrics_to_song.data.webhook_keys import WebhookKeyStore
from lyrics_to_song.sources import held_retry
from lyrics_to_song.tenants import is_tenant

from .stack_target import CliError, Cloud, ExitCode, spending_table_of

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef
from .tenant_settings import check_job_tenant, start_waiting


@dataclass(frozen=True)
class TenantView:
    """A tenant and what hangs on it: the senders bound to it, its jobs under way."""

    tenant: Tenant
    senders: list[str]
    under_way: int


def registry(cloud: Cloud) -> TenantRegistry:
    return TenantRegistry(cloud.dynamodb, spending_table_of(cloud, "manage tenants"))


def require(cloud: Cloud, name: str, *, removed_ok: bool = False) -> str:
    """A tenant the stack has (or, with `removed_ok`, had), or a usage error that names
    the ones it has and the likeliest meant."""
    name = check_job_tenant(name)
    found = registry(cloud).get(name)
    if found is not None and (found.known or removed_ok):
        return name
    known = [t.name for t in registry(cloud).all() if t.known]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise CliError(
        f"no tenant {name!r} in stack {cloud.stack_name!r}: {hint}its tenants are "
        f"{', '.join(known)} (add one with `lyrics-to-song tenants add {name}`)",
        ExitCode.USAGE,
    )


def add(cloud: Cloud, name: str, now: float) -> None:
    name = check_job_tenant(name)
    if not registry(cloud).add(name, now):
        raise CliError(f"tenant {name!r} exists already", ExitCode.USAGE)


def pause(cloud: Cloud, name: str, now: float) -> None:
    registry(cloud).pause(require(cloud, name), now)


def resume(cloud: Cloud, name: str) -> int:
    """Resume a tenant, and start its waiting jobs at once (as many as the caps allow,
    in their turn): how many wait. Jobs an earlier version held are sent the reminder
    their rows wait for."""
    registry(cloud).resume(require(cloud, name))
    start_waiting(cloud, f"tenant {name} resumed")
    rows = _under_way(cloud, name)
    legacy = [
        (row.job_id, row.hold.token)
        for row in rows
        if row.state is JobState.HELD and row.hold is not None and row.line_at is None
    ]
    for start in range(0, len(legacy), 10):  # SQS takes 10 messages a call
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "MessageBody": held_retry(job_id, token)}
            for n, (job_id, token) in enumerate(legacy[start : start + 10])
        ]
        cloud.sqs.send_message_batch(QueueUrl=cloud.jobs_queue_url, Entries=entries)
    return sum(1 for row in rows if row.state is JobState.HELD or row.line_at is not None)


def remove(cloud: Cloud, name: str, now: float) -> list[str]:
    """Remove a tenant that has no job under way (refused otherwise: pause it and let
    them end, or wait): its name is refused from now on, its senders are unbound, its
    webhook secret signs nothing more. Its ended jobs stay, as they were. The senders
    it had."""
    name = require(cloud, name)
    if name == DEFAULT_TENANT:
        raise CliError("the tenant 'default' always exists: it cannot be removed", ExitCode.USAGE)
    busy = _under_way(cloud, name)
    if busy:
        raise CliError(
            f"tenant {name!r} has {len(busy)} job(s) under way (held, being submitted or being "
            f"made, {busy[0].job_id} the first): pause it, let them end, then remove it",
            ExitCode.USAGE,
        )
    senders = _senders(cloud)
    registry(cloud).remove(name, now)
    unbound = sorted(who for who, tenants in senders.all().items() if name in tenants)
    for who in unbound:
        senders.unbind(who, name)
    return unbound


def import_known(cloud: Cloud, now: float, overlap_seconds: float = 72 * 3600) -> list[str]:
    """Register every tenant a stack of an earlier version knew by name alone: named by
    caps, a callback or a secret (its item), a sender's binding or a job's row; and let
    the secret `default`'s receivers held before (the root key) sign its webhooks beside
    its new one for `overlap_seconds`. Run once on upgrade (docs/deploy.md); again is
    harmless. The names registered now."""
    WebhookKeyStore(cloud.dynamodb, spending_table_of(cloud, "manage tenants")).keep_legacy(
        now + overlap_seconds
    )
    tenants = registry(cloud)
    items = tenants.all()
    named = {t.name for t in items if t.known}
    named |= {t for bound in _senders(cloud).all().values() for t in bound}
    named |= {row.tenant for row in TaskTable(cloud.dynamodb, cloud.tasks_table).rows()}
    before = {t.name for t in items if t.registered_at is not None}
    return sorted(
        name
        for name in named - before - {DEFAULT_TENANT}
        if is_tenant(name) and tenants.adopt(name, now)
    )


def act(
    cloud: Cloud, action: str, name: str | None, now: float, overlap_hours: float = 72.0
) -> tuple[str, str | None]:
    """Carry out `tenants ACTION [NAME]`: what to say first, and the tenant to show after
    (None: every one)."""
    if name is None:  # list, import
        if action == "import":
            adopted = import_known(cloud, now, overlap_hours * 3600)
            return (
                f"registered {len(adopted)} tenant(s): {', '.join(adopted) or 'none new'}\n",
                None,
            )
        return "", None
    said = ""
    if action == "add":
        add(cloud, name, now)
    elif action == "pause":
        pause(cloud, name, now)
        said = f"tenant {name} paused: its new jobs are held, unpaid, until it is resumed\n"
    elif action == "resume":
        waiting = resume(cloud, name)
        said = f"tenant {name} resumed: its {waiting} waiting job(s) start as places free\n"
    elif action == "remove":
        unbound = remove(cloud, name, now)
        said = f"tenant {name} removed; senders unbound: {', '.join(unbound) or 'none'}\n"
    return said, name


def views(cloud: Cloud, name: str | None = None) -> list[TenantView]:
    """Every tenant (or one) with its senders and its jobs under way."""
    if name is not None:
        name = require(cloud, name, removed_ok=True)
    tenants = [t for t in registry(cloud).all() if name in (None, t.name)]
    bindings = _senders(cloud).all()
    busy = TaskTable(cloud.dynamodb, cloud.tasks_table).under_way(0)
    return [
        TenantView(
            tenant,
            sorted(who for who, bound in bindings.items() if tenant.name in bound),
            sum(1 for row in busy if row.tenant == tenant.name),
        )
        for tenant in tenants
    ]


def _under_way(cloud: Cloud, name: str) -> list[Row]:
    """The tenant's jobs held (in its line, or by an earlier version), being submitted
    or being made."""
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    waiting = table.waiting(name)
    seen = {row.job_id for row in waiting}
    rows = [r for r in table.under_way(0) if r.tenant == name and r.job_id not in seen]
    return waiting + rows


def _senders(cloud: Cloud) -> SenderStore:
    return SenderStore(cloud.dynamodb, spending_table_of(cloud, "manage tenants"))
