"""`lyrics-to-song spend`: what was spent, by whom, and what is left today, from the
counters the functions keep (a few reads per day of the span, never a table scan), and
the jobs held by a cap now (read from the index's HELD shard)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from lyrics_to_song.data.caps import Budget, TenantCaps, TenantStore, day_of
from lyrics_to_song.data.line import WaitingTenants
from lyrics_to_song.data.monthly import credits_in, month_of
from lyrics_to_song.data.rows import DEFAULT_TENANT
from lyrics_to_song.data.spend import Counts, SpendLedger
from lyrics_to_song.data.task_table import TaskTable

from .stack_target import CliError, Cloud, ExitCode, spending_table_of
from .tenant_settings import check_job_tenant

GROUPINGS = ("tenant", "model", "state")
MAX_DAYS = 400
_MONTH = re.compile(r"\d{4}-\d{2}")  # fullmatch


@dataclass(frozen=True)
class CapLeft:
    """A daily cap: the stack's (`tenant` None) or a tenant's own."""

    tenant: str | None
    cap: int
    used: int
    # What the stack has left, which bounds a tenant's: `spend` never promises more.
    bound: int | None = None

    @property
    def left(self) -> int:
        left = max(0, self.cap - self.used)
        return left if self.bound is None else min(left, self.bound)


@dataclass
class SpendReport:
    first: str
    last: str
    by: str
    groups: dict[str, Counts]
    total: Counts = field(default_factory=Counts)
    maybe_jobs: list[tuple[str, str, str]] = field(default_factory=list)  # job, tenant, day
    today: list[CapLeft] = field(default_factory=list)
    this_month: list[CapLeft] = field(default_factory=list)  # tenants' budgets, in credits
    held: dict[str, int] = field(default_factory=dict)  # jobs a cap holds now, per tenant


def span(month: str | None, since: str | None, today: date) -> list[str]:
    """The UTC days asked for: a month, the days since a date, or this month so far."""
    if month is not None:
        try:
            first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC).date()
        except ValueError:
            first = None
        if first is None or not _MONTH.fullmatch(month):
            raise CliError(f"--month must be YYYY-MM, got {month!r}", ExitCode.USAGE)
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        last = min(following - timedelta(days=1), today)
    elif since is not None:
        try:
            first = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC).date()
        except ValueError:
            raise CliError(f"--since must be YYYY-MM-DD, got {since!r}", ExitCode.USAGE) from None
        last = today
    else:
        first, last = today.replace(day=1), today
    if first > today:
        raise CliError(f"{first} is in the future (today is {today}, UTC)", ExitCode.USAGE)
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise CliError(
            f"at most {MAX_DAYS} days at once; {first} is {days} days ago", ExitCode.USAGE
        )
    return [(first + timedelta(days=n)).isoformat() for n in range(days)]


def report(
    cloud: Cloud, days: list[str], *, tenant: str | None, by: str, now: float
) -> SpendReport:
    table = spending_table_of(cloud, "see what was spent")
    tenant = check_job_tenant(tenant) if tenant is not None else None
    caps = TenantStore(cloud.dynamodb, table)
    spent = SpendLedger(cloud.dynamodb, table).days(days, tenant)
    own: list[TenantCaps | None] = [caps.get(tenant)] if tenant is not None else [*caps.all()]
    if tenant is not None and not spent and own == [None]:
        raise CliError(
            f"tenant {tenant!r} has no caps and spent nothing from {days[0]} to {days[-1]}",
            ExitCode.USAGE,
        )
    found = SpendReport(days[0], days[-1], by, {})
    for day_spend in spent:
        for model, counts in day_spend.by_model.items():
            found.total.add(counts)
            if by == "tenant":
                found.groups.setdefault(day_spend.tenant, Counts()).add(counts)
            elif by == "model":
                found.groups.setdefault(model, Counts()).add(counts)
        found.maybe_jobs += [
            (job, day_spend.tenant, day_spend.day) for job in sorted(day_spend.maybe_jobs)
        ]
    if by == "state":
        for state, number in sorted(found.total.ended.items()):
            found.groups[state] = Counts(ended={state: number})
    found.today = _caps_left(cloud, caps.table_name, own, tenant, day_of(now))
    month = month_of(now)
    found.this_month = [
        CapLeft(
            c.tenant,
            c.monthly_credits,
            credits_in(cloud.dynamodb, caps.table_name, month, c.tenant),
        )
        for c in own
        if c is not None and c.monthly_credits is not None
    ]
    waiting = WaitingTenants(cloud.dynamodb, caps.table_name).read()
    held = TaskTable(cloud.dynamodb, cloud.tasks_table).held(waiting)
    found.held = dict(
        sorted(Counter(row.tenant for row in held if tenant in (None, row.tenant)).items())
    )
    return found


def _caps_left(
    cloud: Cloud, table: str, own: list[TenantCaps | None], tenant: str | None, today: str
) -> list[CapLeft]:
    """What is left of today's caps: the stack's, and each of `own` (the tenants' caps
    read for the report), a tenant's never more than the stack's."""
    budget = Budget(cloud.dynamodb, table, per_day=0, in_flight=0)
    left: list[CapLeft] = []
    stack: CapLeft | None = None
    if cloud.max_songs_per_day:
        stack = CapLeft(None, int(float(cloud.max_songs_per_day)), budget.submitted_on(today))
        if tenant is None:
            left.append(stack)
    if (
        tenant is not None
        and own == [None]
        and cloud.tenant_defaults is not None
        and tenant != DEFAULT_TENANT
    ):
        own = [TenantCaps(tenant, *cloud.tenant_defaults, own=False)]
    bound = stack.left if stack else None
    left += [
        CapLeft(c.tenant, c.per_day, budget.submitted_on(today, c.tenant), bound) for c in own if c
    ]
    return left
