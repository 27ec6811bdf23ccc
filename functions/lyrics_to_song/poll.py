"""The poll run: sweeps over the due rows, and the watch between them.

A sweep reads the due rows, takes each with a lease and follows several at once (what
happens to one task is in `follow`). A run keeps watching for most of its minute: after
a sweep it sleeps until the next open task is due and sweeps again, and it returns at
once when nothing is open (docs/how-it-works.md: When songs are checked).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from .admission import admit
from .check_timing import CheckPolicy
from .follow import Pacing, PollReport, after_error, process_row
from .observability import count, logger
from .services import Services

PAGE_SIZE = 500  # keys only: a page of the index is small
MAX_TASKS_PER_RUN = 5000  # a larger backlog is worked off over several runs
# Stop taking tasks when less than this is left of the invocation: one task's worst case
# (status call, then a download streamed into S3).
RESERVE_MS = 60_000
# Between two sweeps a run sleeps at least this long, so rows due in the past (taken by
# another run a moment ago, or not yet gone from the eventually consistent index) never
# make it spin.
MIN_PAUSE_SECONDS = 1.0
# ... and at most this long while anything is open: a row another run holds looks due
# only when that run's lease ends, minutes away, though that run may return first.
MAX_NAP_SECONDS = 5.0


def watch(
    services: Services,
    remaining_ms: Callable[[], int],
    *,
    woken: bool = False,
    fixed_policy: CheckPolicy | None = None,
) -> PollReport:
    """Sweep, then sleep until the next open task is due, until POLL_WATCH_SECONDS pass.

    Stops at once when nothing is open, when time runs short, or on an account problem
    (every task would meet the same refusal until the owner fixes it). A run `woken` by a
    submission does nothing while another run watches.
    """
    settings = services.settings
    total = PollReport()
    started = services.clock()
    if woken and services.poll_watch.until() > started:
        return total
    slot_end = started + settings.poll_watch_seconds
    held = settings.poll_watch_seconds > 0  # this run says it watches, until slot_end
    if held:
        services.poll_watch.hold(slot_end)
    pacing = Pacing(services, fixed_policy)
    try:
        if not woken:  # each scheduled run: a day turned, a place freed by a crash, ...
            total.admitted += _admit(services, remaining_ms, recheck=True)
        while True:
            sweep = poll_due(services, remaining_ms, pacing=pacing)
            total.add(sweep)
            total.sweeps += 1
            if sweep.stopped_early or sweep.account_problem:
                return total
            if sweep.ended:  # their places are free: the next waiting jobs start now
                total.admitted += _admit(services, remaining_ms)
            wake = _next_wake(services, sweep)
            if wake is None and held:
                # Nothing open: say so before leaving, then look once more, for a job
                # submitted while it was seen to be watched.
                services.poll_watch.release(slot_end, services.clock())
                wake = _next_wake(services, sweep)
                held = wake is not None
                if held:
                    services.poll_watch.hold(slot_end)
            now = services.clock()
            if wake is None or wake >= slot_end:
                return total
            if remaining_ms() - (wake - now) * 1000 < RESERVE_MS:
                return total
            services.sleep(wake - now)
    finally:
        if held:
            services.poll_watch.release(slot_end, services.clock())


def _admit(services: Services, remaining_ms: Callable[[], int], *, recheck: bool = False) -> int:
    """Start waiting jobs on the free places (admission.py); how many started. Never
    stops the run: what is not started now is the next admission's."""
    if remaining_ms() < RESERVE_MS:
        return 0
    try:
        return admit(services, recheck=recheck).started
    except Exception:
        logger.exception("admission failed; the next one starts the waiting jobs")
        count("AdmissionErrors")
        return 0


def _next_wake(services: Services, sweep: PollReport) -> float | None:
    """When to sweep again: at the next open row's due time (looking in again at least
    every MAX_NAP_SECONDS), or later when this window's status checks are spent or the
    API pushed back. None: nothing is open."""
    due = services.table.next_due()
    if due is None:
        return None
    now = services.clock()
    wake = min(max(due, now + MIN_PAUSE_SECONDS), now + MAX_NAP_SECONDS)
    if sweep.budget_spent or sweep.api_pushed_back:
        wake = max(wake, services.status_budget.next_window(now))
    return wake


def poll_due(
    services: Services,
    remaining_ms: Callable[[], int],
    reserve_ms: int = RESERVE_MS,
    pacing: Pacing | None = None,
) -> PollReport:
    """One sweep over the rows due now, until done or out of time.

    The due keys are read first (the index holds keys only, so a page is thousands of
    them), then up to `POLL_CONCURRENCY` tasks are followed at once. Before each new
    task the remaining time is checked: when it runs short, the rest waits for the
    next run. So does the rest once the API pushes back, rather than hearing the same
    refusal once per task, and once this window's status checks are spent.
    """
    report = PollReport()
    pacing = pacing or Pacing(services)
    workers = services.settings.poll_concurrency
    running: set[Future[PollReport]] = set()

    def collect(done: set[Future[PollReport]]) -> None:
        for future in done:
            report.add(future.result())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        for job_id, due_at in _due_keys(services):
            while len(running) >= workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                collect(done)
            if remaining_ms() < reserve_ms:
                report.stopped_early = True
                logger.warning("little time left: the other due tasks wait for the next run")
                break
            if report.api_pushed_back:
                logger.warning(
                    "the API is pushing back (rate limit, unavailable or account): "
                    "the other due tasks wait for the next run"
                )
                break
            if report.budget_spent:
                break  # the rest stay due: taken, earliest first, once the window opens
            report.due += 1
            running.add(pool.submit(_take, services, job_id, due_at, pacing))
        collect(wait(running).done)
    return report


def _due_keys(services: Services) -> list[tuple[str, float]]:
    """The rows due now, earliest first, at most MAX_TASKS_PER_RUN."""
    now = services.clock()
    keys: list[tuple[str, float]] = []
    start_key: dict[str, Any] | None = None
    while len(keys) < MAX_TASKS_PER_RUN:
        page, start_key = services.table.due(now, PAGE_SIZE, start_key)
        keys.extend(page)
        if not start_key:
            break
    return keys[:MAX_TASKS_PER_RUN]


def _take(services: Services, job_id: str, due_at: float, pacing: Pacing) -> PollReport:
    """Claim one due row and follow it (in a worker thread); returns what happened."""
    report = PollReport()
    lease_until = services.clock() + services.settings.poll_lease_seconds
    row = services.table.claim(job_id, due_at, lease_until)
    if row is None:
        report.taken_by_other_run += 1
        return report
    logger.thread_safe_append_keys(job_id=row.job_id, task_id=row.task_id)
    try:
        process_row(services, row, report, pacing, was_due=due_at)
    except Exception as exc:
        # One task's trouble must not stop the others; this one counts it as a bad
        # answer (bounded by its age and MAX_BAD_BODIES), else keeps its lease and is
        # taken again when the lease ends.
        logger.exception("unexpected error while following a task")
        count("PollErrors")
        report.errors += 1
        try:
            after_error(services, row, exc, report)
        except Exception:
            logger.exception("could not record the error on the row; retried later")
    finally:
        logger.thread_safe_clear_keys()
    return report
