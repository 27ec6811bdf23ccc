"""Where a waiting job stands: its place in its tenant's line and overall, and when it
should start and be ready (docs/producers.md: Held jobs).

The estimate follows admission (docs/how-it-works.md: The line): the places free one
song time at a time, and each waiting tenant takes its turn, so before a tenant's n-th
job starts each other tenant starts at most n of its own. A tenant's own in-flight cap
paces its line too; a day's or a month's cap moves the start to the next day or month,
and a paused tenant's jobs start when it is resumed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lyrics_to_song.check_timing import LikelyWindow
from lyrics_to_song.data.caps import TenantStore
from lyrics_to_song.data.line import WaitingTenants
from lyrics_to_song.data.rows import DEFAULT_TENANT, Row
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.errors import Cap

from .stack_target import Cloud

DEFAULT_PLACES = 20  # MaxSongsInFlight's default, for a stack without the output


@dataclass(frozen=True)
class Place:
    """A waiting job's place, and its expected start and end (None: not foreseeable)."""

    tenant: str
    in_tenant: int  # 1 for the next of its tenant to start
    tenant_waiting: int
    overall: int  # about how many jobs start before it, it included
    paused: bool
    start: float | None
    ready: float | None
    later_day: bool = False  # it cannot start before another UTC day or month

    def text(self) -> str:
        where = (
            f"place {self.in_tenant} of {self.tenant_waiting} in tenant {self.tenant}'s line, "
            f"about {self.overall} overall"
        )
        if self.paused:
            return f"{where}; it starts when the tenant is resumed"
        if self.start is None or self.ready is None:
            return where
        return (
            f"{where}; expected to start about {_clock(self.start)} "
            f"and be ready about {_clock(self.ready)}"
        )

    def short(self) -> str:
        return f"place {self.in_tenant} of {self.tenant_waiting}, about {self.overall} overall"

    def as_dict(self) -> dict[str, Any]:
        return {
            "place_in_tenant": self.in_tenant,
            "tenant_waiting": self.tenant_waiting,
            "place_overall": self.overall,
            "paused": self.paused,
            "expected_start": _iso(self.start),
            "expected_ready": _iso(self.ready),
        }


def place_of(cloud: Cloud, row: Row, window: LikelyWindow, now: float) -> Place | None:
    """The job's place, if it (or its resubmission) waits in its tenant's line (reads a
    few index pages)."""
    if row.line_at is None:
        return None
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    in_tenant = table.ahead(row.tenant, row.line_at) + 1
    waiting = max(table.line_length(row.tenant), in_tenant)
    terms = None
    overall = in_tenant
    if cloud.spending_table:
        terms = TenantStore(cloud.dynamodb, cloud.spending_table).terms(row.tenant)
        tenants = WaitingTenants(cloud.dynamodb, cloud.spending_table).read()
        overall += sum(
            table.line_length(other, limit=in_tenant) for other in tenants if other != row.tenant
        )
    paused = terms is not None and terms.paused
    if paused:
        return Place(row.tenant, in_tenant, waiting, overall, True, None, None)
    places = int(float(cloud.max_songs_in_flight or DEFAULT_PLACES))
    own = terms.caps.in_flight if terms is not None and terms.caps is not None else None
    if own is None and cloud.tenant_defaults is not None and row.tenant != DEFAULT_TENANT:
        own = cloud.tenant_defaults[1]
    rounds = math.ceil(overall / max(places, 1))
    if own:
        rounds = max(rounds, math.ceil(in_tenant / own))
    song = (window.start + window.end) / 2
    not_before = _not_before(_holding_cap(table, row), now)
    start = not_before + (rounds - 0.5) * song
    place = Place(row.tenant, in_tenant, waiting, overall, False, start, start + song)
    return dataclasses.replace(place, later_day=not_before > now)


def _holding_cap(table: TaskTable, row: Row) -> str | None:
    """The cap that holds the job: its own, or for one behind its tenant's waiting jobs,
    the first one's."""
    cap = row.hold.cap if row.hold else None
    if cap == Cap.LINE.value:
        head = table.heads(row.tenant, 1)
        if head and head[0].hold is not None:
            return head[0].hold.cap
    return cap


def _not_before(cap: str | None, now: float) -> float:
    """When the cap that holds a job can first allow it: the next UTC day or month."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if cap in (Cap.DAILY.value, Cap.TENANT_DAILY.value):
        return (today + timedelta(days=1)).timestamp()
    if cap == Cap.TENANT_MONTHLY.value:
        return (today.replace(day=28) + timedelta(days=4)).replace(day=1).timestamp()
    return now


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
