"""The poll cycle: read the due rows, take each with a lease, follow several at once.

What happens to one task is in `follow`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from .follow import PollReport, process_row
from .observability import count, logger
from .services import Services

PAGE_SIZE = 500  # keys only: a page of the index is small
MAX_TASKS_PER_RUN = 5000  # a larger backlog is worked off over several runs
# Stop taking tasks when less than this is left of the invocation: one task's worst case
# (status call, then a download streamed into S3).
RESERVE_MS = 60_000


def poll_due(
    services: Services, remaining_ms: Callable[[], int], reserve_ms: int = RESERVE_MS
) -> PollReport:
    """One poll cycle over the rows due now, until done or out of time.

    The due keys are read first (the index holds keys only, so a page is thousands of
    them), then up to `POLL_CONCURRENCY` tasks are followed at once. Before each new
    task the remaining time is checked: when it runs short, the rest waits for the
    next run. So does the rest once the API pushes back, rather than hearing the same
    refusal once per task.
    """
    report = PollReport()
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
            report.due += 1
            running.add(pool.submit(_take, services, job_id, due_at))
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


def _take(services: Services, job_id: str, due_at: float) -> PollReport:
    """Claim one due row and follow it (in a worker thread); returns what happened."""
    report = PollReport()
    lease_until = services.clock() + services.settings.poll_lease_seconds
    row = services.table.claim(job_id, due_at, lease_until)
    if row is None:
        report.taken_by_other_run += 1
        return report
    logger.thread_safe_append_keys(job_id=row.job_id, task_id=row.task_id)
    try:
        process_row(services, row, report)
    except Exception:
        # One task's trouble must not stop the others; this one keeps its lease and
        # is taken again when the lease ends.
        logger.exception("unexpected error while following a task; retried later")
        count("PollErrors")
        report.errors += 1
    finally:
        logger.thread_safe_clear_keys()
    return report
