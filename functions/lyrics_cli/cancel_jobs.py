"""`lyrics-to-song cancel`: end jobs that wait in their tenant's line, unpaid (their
notices go out from the next poll run), and withdraw waiting resubmissions
(docs/producers.md: Cancelling a job)."""

from __future__ import annotations

import time

from lyrics_to_song.cancel import cancelled_reason
from lyrics_to_song.data.rows import JobState, Row
from lyrics_to_song.data.task_table import TaskTable

from .stack_target import CliError, Cloud, ExitCode, spending_table_of

WHO = "the stack's operator"


def _table(cloud: Cloud) -> TaskTable:
    return TaskTable(cloud.dynamodb, cloud.tasks_table, spending_table_of(cloud, "cancel jobs"))


def why_not(row: Row) -> str:
    """Why a job that does not wait cannot be cancelled."""
    if row.state in (JobState.SUBMITTING, JobState.PENDING):
        return (
            f"job {row.job_id} is {row.state.value}: the API has taken it (or is taking it) "
            "and it is paid; it cannot be cancelled, and its song is kept when it ends"
        )
    return f"job {row.job_id} has ended ({row.state.value}): there is nothing to cancel"


def cancel_one(cloud: Cloud, row: Row) -> Row:
    """Cancel one waiting job (the ended row), or withdraw a waiting resubmission (the
    row, with the ending it had). A CliError (exit 1) says why not."""
    if not row.waits:
        raise CliError(why_not(row), ExitCode.ENDED_BADLY)
    done = _cancel(_table(cloud), row, time.time())
    if done is None:
        fresh = _table(cloud).get(row.job_id)
        raise CliError(why_not(fresh or row), ExitCode.ENDED_BADLY)
    return done


def cancel_tenants_waiting(cloud: Cloud, tenant: str) -> list[str]:
    """Cancel every job of the tenant that waits (in its line, or held by an earlier
    version), and withdraw its waiting resubmissions; the ids of those cancelled or
    withdrawn (one that started meanwhile is left)."""
    table = _table(cloud)
    waiting = [r for r in table.held([tenant]) if r.tenant == tenant and r.waits]
    now = time.time()
    return [row.job_id for row in waiting if _cancel(table, row, now) is not None]


def _cancel(table: TaskTable, row: Row, now: float) -> Row | None:
    if row.resubmission_waits:  # its job keeps its ending
        return table.get(row.job_id) if table.leave_line(row) else None
    return table.cancel(row, reason=cancelled_reason(WHO), now=now, announce_by=now)
