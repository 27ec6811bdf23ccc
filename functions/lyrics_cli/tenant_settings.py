"""A tenant's settings from the command line: its own caps (and what is used of them)
and its default callback_url, in the spending table (docs/producers.md)."""

from __future__ import annotations

from dataclasses import dataclass

from lyrics_to_song.data.caps import Budget, TenantCaps, TenantStore, day_of
from lyrics_to_song.data.monthly import credits_in, month_of
from lyrics_to_song.data.rows import DEFAULT_TENANT
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.errors import InvalidRequest
from lyrics_to_song.sources import admit_nudge
from lyrics_to_song.tenants import check_tenant

from .stack_target import CliError, Cloud, ExitCode, spending_table_of


@dataclass(frozen=True)
class CapsUse:
    """A tenant's own caps, and how much of them is used now."""

    caps: TenantCaps
    today: int  # songs counted against its daily cap today (UTC)
    in_flight: int  # its songs in flight now
    month_credits: int = 0  # credits counted against its monthly budget this month (UTC)


def _tenant_store(cloud: Cloud) -> TenantStore:
    table = spending_table_of(cloud, "manage tenants' caps and callbacks")
    return TenantStore(cloud.dynamodb, table)


def check_job_tenant(tenant: str) -> str:
    """A tenant name from the command line, or a usage error saying what one is."""
    try:
        return check_tenant(tenant, "--tenant")
    except InvalidRequest as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def set_caps(
    cloud: Cloud,
    tenant: str,
    *,
    per_day: int | None,
    in_flight: int | None,
    monthly_credits: int | None = None,
) -> TenantCaps:
    """Set a tenant's own caps; one not given keeps its value. The submit function
    reads them at each submission: no redeploy (docs/producers.md)."""
    store = _tenant_store(cloud)
    current = store.get(check_job_tenant(tenant))
    per_day = per_day if per_day is not None else current.per_day if current else None
    in_flight = in_flight if in_flight is not None else current.in_flight if current else None
    if monthly_credits is None and current is not None:
        monthly_credits = current.monthly_credits
    if per_day is None or in_flight is None:
        raise CliError(
            f"tenant {tenant!r} has no caps yet: give both --per-day and --in-flight",
            ExitCode.USAGE,
        )
    for flag, asked, stack_cap, unit in (
        ("--per-day", per_day, cloud.max_songs_per_day, "songs per UTC day (MaxSongsPerDay)"),
        ("--in-flight", in_flight, cloud.max_songs_in_flight, "songs at once (MaxSongsInFlight)"),
    ):
        if stack_cap and asked > int(float(stack_cap)):
            raise CliError(
                f"{flag} {asked} is above the stack's own cap, {int(float(stack_cap))} {unit}, "
                "which bounds every tenant: raise that first",
                ExitCode.USAGE,
            )
    caps = TenantCaps(tenant, per_day, in_flight, monthly_credits=monthly_credits)
    store.put(caps)
    start_waiting(cloud, f"caps of tenant {tenant} set")
    return caps


def unset_caps(cloud: Cloud, tenant: str) -> None:
    """Remove a tenant's own caps: it gets the defaults for tenants again."""
    _tenant_store(cloud).unset_caps(check_job_tenant(tenant))
    start_waiting(cloud, f"caps of tenant {tenant} unset")


def start_waiting(cloud: Cloud, why: str) -> None:
    """Ask the submit function to start the waiting jobs the caps now allow, at once
    rather than at the next scheduled look (docs/producers.md: Held jobs)."""
    cloud.sqs.send_message(QueueUrl=cloud.jobs_queue_url, MessageBody=admit_nudge(why))


def caps_in_use(cloud: Cloud, tenant: str | None, now: float) -> list[CapsUse]:
    """Every tenant's caps (or one's) with what is used of them now."""
    store = _tenant_store(cloud)
    if tenant is None:
        found = store.all()
    else:
        one = store.get(check_job_tenant(tenant))
        if one is None and cloud.tenant_defaults is not None and tenant != DEFAULT_TENANT:
            one = TenantCaps(tenant, *cloud.tenant_defaults, own=False)
        if one is None:
            raise CliError(
                f"tenant {tenant!r} has no caps of its own: set them with "
                f"`lyrics-to-song caps set --tenant {tenant} --per-day N --in-flight M`",
                ExitCode.USAGE,
            )
        found = [one]
    budget = Budget(cloud.dynamodb, store.table_name, per_day=0, in_flight=0)
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    today = day_of(now)
    return [
        CapsUse(
            caps,
            budget.submitted_on(today, caps.tenant),
            len(table.in_flight(budget.holders(caps.tenant))),
            credits_in(cloud.dynamodb, store.table_name, month_of(now), caps.tenant)
            if caps.monthly_credits is not None
            else 0,
        )
        for caps in found
    ]


def tenant_callback(cloud: Cloud, tenant: str) -> str | None:
    return _tenant_store(cloud).terms(tenant).callback_url


def set_tenant_callback(cloud: Cloud, tenant: str, url: str | None) -> None:
    """The tenant's default callback_url (None removes it); the submit function reads it
    at each submission."""
    _tenant_store(cloud).set_callback(tenant, url)
