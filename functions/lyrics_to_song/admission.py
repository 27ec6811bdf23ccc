"""Admission: which waiting jobs start when places are free (docs/how-it-works.md: The
line).

Held jobs wait in their tenants' lines (data/line.py) and cost nothing meanwhile. An
admission hands out the stack's free places, one at a time, to the waiting tenant with
the fewest songs in flight (the earliest head of line first among equals), each taking
the head of its line: so a tenant with one job waits for one free place, never behind
another tenant's thousands, and each tenant's jobs start in the order they came.

It runs wherever a place may have freed: in the poll run after songs end and once each
scheduled run (a day or month turning, a crash anywhere), in the submit function after a
job joins a line, and on `{"admit": ...}` (the command line sends it when a cap is
raised or a tenant resumed). Runs at once are safe: every start takes its place in the
caps' transaction, and a job is started by one of them only.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .announce import ended
from .data.caps import TenantTerms
from .data.rows import JobState, Row
from .data.task_table import AlreadyKnown, CapReached, Started
from .errors import Cap, InvalidRequest
from .observability import count, logger
from .payment import Outcome, pay, restart_writer, row_writer
from .places import live_holders
from .services import Services
from .song_request import SongRequest, parse_request
from .sources import Job

STACK_CAPS = (Cap.DAILY, Cap.IN_FLIGHT)
MAX_PAYING_AT_ONCE = 10
MAX_ROUNDS = 5  # of one admission, while the API refuses requests outright
# The safety net of each scheduled run looks at up to this many forgotten tenants'
# lines, and stops looking at one whose line it found empty a day after it was forgotten.
MAX_IDLE_LOOKS = 100
IDLE_KEPT_SECONDS = 86_400.0


@dataclass
class Admitted:
    """What one admission did."""

    free: int = 0  # places free when it began
    started: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class _Tenant:
    """A waiting tenant as one admission sees it."""

    name: str
    stamp: str
    terms: TenantTerms
    in_flight: int
    heads: list[Row] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)  # taken from its heads in this admission
    done: bool = False

    def turn(self) -> tuple[int, float]:
        head = self.heads[0].line_at if self.heads else None
        return (self.in_flight, head if head is not None else float("inf"))


def admit(services: Services, *, if_room: bool = False, recheck: bool = False) -> Admitted:
    """Start as many waiting jobs as places are free, fairly; pay for them at once.

    `if_room`: look no further when the in-flight set is full (a job that just joined
    its line: a place held by an ended job is freed by the run that ends it).
    `recheck` (each scheduled poll run): look at the forgotten tenants' lines too.

    The places of jobs the API refused outright are free again at once: they are handed
    out in a further round (up to MAX_ROUNDS), rather than stand idle until the next
    admission. A job the API could not take for now goes back in line and is not
    offered again before the next admission, so a busy API is not pressed."""
    report = Admitted()
    for round_number in range(MAX_ROUNDS):
        done = _admit_once(services, if_room=if_room, recheck=recheck and round_number == 0)
        report.free = report.free or done.free
        report.started += done.started
        report.outcomes += done.outcomes
        if Outcome.REJECTED not in done.outcomes:
            break
    return report


def _admit_once(services: Services, *, if_room: bool, recheck: bool) -> Admitted:
    """One round: the places free now, handed out and paid for."""
    report = Admitted()
    marks = services.line.marks()
    stamps = dict(marks.waiting)
    if recheck:  # (a tenant both marked and idle: an earlier version's mark)
        idle = {name: since for name, since in marks.idle.items() if name not in stamps}
        stamps.update(_unmarked_lines(services, idle))
    if not stamps:
        return report
    if if_room and len(services.budget.holders()) >= services.budget.in_flight:
        return report
    live = live_holders(services)
    report.free = services.budget.in_flight - len(live)
    if report.free <= 0:
        return report
    counts = Counter(live.values())
    tenants = [
        _Tenant(name, stamp, terms, counts.get(name, 0))
        for name, stamp in sorted(stamps.items())
        if not (terms := services.budget.terms_of(name)).paused
    ]
    for tenant in tenants:
        _look(services, tenant, report.free)
    chosen = _hand_out(services, [t for t in tenants if not t.done], report.free, live)
    report.started = len(chosen)
    if chosen:
        count("JobsAdmitted", len(chosen))
        logger.info("admitted waiting jobs", extra={"started": len(chosen), "free": report.free})
        report.outcomes = _pay_all(services, chosen)
    return report


def _unmarked_lines(services: Services, idle: dict[str, float]) -> dict[str, str]:
    """The safety net: forgotten tenants whose lines are not empty (a function died
    between putting a job back in line and marking its tenant), marked again, with
    their stamps. Up to MAX_IDLE_LOOKS of them, one counting query each; one found empty
    IDLE_KEPT_SECONDS after it was forgotten is no longer looked at."""
    found: dict[str, str] = {}
    now = services.clock()
    names = sorted(idle)
    for tenant in random.sample(names, min(MAX_IDLE_LOOKS, len(names))):
        if services.table.line_length(tenant, limit=1):
            logger.warning(
                "a tenant's waiting jobs were unseen: marked again", extra={"tenant": tenant}
            )
            count("UnseenLinesFound")
            found[tenant] = services.line.mark(tenant, now)
        elif now - idle[tenant] > IDLE_KEPT_SECONDS:
            services.line.drop_idle(tenant, idle[tenant])
    return found


def _hand_out(
    services: Services, waiting: list[_Tenant], free: int, live: dict[str, str]
) -> list[_Started]:
    """The free places, one at a time, each to the waiting tenant whose turn it is."""
    chosen: list[_Started] = []
    while waiting and len(chosen) < free:
        tenant = min(waiting, key=_Tenant.turn)
        head = tenant.heads.pop(0)
        tenant.passed.add(head.job_id)
        outcome = _start(services, head, tenant.terms)
        if isinstance(outcome, _Started):
            chosen.append(outcome)
            tenant.in_flight += 1
            live[outcome.job.job_id] = tenant.name  # in flight now: its place is not freed
        elif isinstance(outcome, _Refused):
            if outcome.cap in STACK_CAPS:
                break  # no place for anyone: the stack's day, or a place taken meanwhile
            tenant.heads.insert(0, outcome.row)
            # Its own cap: its places held by ended jobs are freed and it goes on;
            # else its jobs wait for its songs to end (or its day, its month).
            freed = outcome.cap is Cap.TENANT_IN_FLIGHT
            tenant.done = not (freed and _free_tenant_places(services, tenant.name, live))
        if not tenant.heads and not tenant.done:
            _look(services, tenant, free - len(chosen))
        waiting = [t for t in waiting if not t.done]
    return chosen


def _free_tenant_places(services: Services, tenant: str, live: dict[str, str]) -> bool:
    """Free the tenant's places held by jobs that ended; True if any was."""
    ended = services.budget.holders(tenant) - set(live)
    services.budget.drop(ended, tenant)
    return bool(ended)


def _look(services: Services, tenant: _Tenant, room: int) -> None:
    """Read the next heads of the tenant's line (past those this admission took: the
    index may show a started job a moment longer). A line the index shows empty is
    forgotten; one whose heads another admission started between the index's answer and
    the rows' read is left to that admission."""
    if room <= 0:
        tenant.done = True
        return
    found = services.table.heads(tenant.name, room + len(tenant.passed))
    tenant.heads = [row for row in found if row.job_id not in tenant.passed][:room]
    if tenant.heads:
        return
    tenant.done = True
    if not found and services.table.line_length(tenant.name, limit=1) == 0:
        services.line.clear(tenant.name, tenant.stamp, services.clock())


@dataclass(frozen=True)
class _Started:
    row: Row  # as it was, in line
    job: Job
    request: SongRequest
    attempt: Started


@dataclass(frozen=True)
class _Refused:
    cap: Cap
    row: Row


def _start(services: Services, row: Row, terms: TenantTerms) -> _Started | _Refused | None:
    """Start one waiting job (its row replaced by a SUBMITTING one with its places), or
    say which cap refused. None: another run started or ended it first, or its request
    no longer reads (it leaves the line: docs/how-it-works.md, The line)."""
    job = Job(row.job_id, row.source, row.source_name, row.request_id)
    try:
        request = parse_request(json.loads(row.request_json or ""), services.settings.model)
    except (InvalidRequest, ValueError) as exc:
        _unreadable(services, row, str(exc))
        return None
    request = dataclasses.replace(request, tenant=row.tenant)
    if not row.resubmission_waits:
        write = row_writer(
            services,
            job,
            request,
            caps=terms.caps,
            callback_url=row.callback_url,
            created_at=row.created_at,
            request_json=row.request_json or "",
        )
    else:
        write = restart_writer(services, row.job_id, terms.caps)
    result = write(services.clock())
    if isinstance(result, AlreadyKnown):
        return None
    if isinstance(result, CapReached):
        return _Refused(result.cap, row)
    if row.resubmission_waits:
        count("SongsResubmitted")
    return _Started(row, job, request, result)


def _unreadable(services: Services, row: Row, why: str) -> None:
    """A waiting job whose request no longer reads (a setting changed since it came)
    leaves the line rather than block it: a new job ends FAILED, unpaid, and is
    announced; a resubmission is dropped, its job keeping the ending it had."""
    count("UnreadableWaitingJobs")
    logger.error(
        "a waiting job's request no longer reads: it leaves the line", extra={"error": why}
    )
    if row.resubmission_waits:
        services.table.leave_line(row)
        return
    now = services.clock()
    done = services.table.cancel(
        row,
        reason=f"its request no longer reads: {why}",
        now=now,
        announce_by=now + services.settings.submit_lease_seconds,
        state=JobState.FAILED,
    )
    if done is not None:
        ended(services, done)


def _pay_all(services: Services, chosen: list[_Started]) -> list[Outcome]:
    """One API call for each started job, several at once."""

    def one(started: _Started) -> Outcome:
        logger.thread_safe_append_keys(job_id=started.job.job_id)
        try:
            return pay(services, started.job, started.attempt, started.request, started.row)
        finally:
            logger.thread_safe_remove_keys(["job_id"])

    workers = min(MAX_PAYING_AT_ONCE, len(chosen))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="admit") as pool:
        return list(pool.map(one, chosen))
