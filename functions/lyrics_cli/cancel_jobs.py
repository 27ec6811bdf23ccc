"""`lyrics-to-song cancel`: end jobs that wait in their tenant's line, unpaid; their
notices go out from the next poll run (docs/producers.md: Cancelling a job)."""

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
    """Cancel one waiting job: the ended row. A CliError (exit 1) says why not."""
    if row.state is not JobState.HELD:
        raise CliError(why_not(row), ExitCode.ENDED_BADLY)
    now = time.time()
    done = _table(cloud).cancel(row, reason=cancelled_reason(WHO), now=now, announce_by=now)
    if done is None:
        fresh = _table(cloud).get(row.job_id)
        raise CliError(why_not(fresh or row), ExitCode.ENDED_BADLY)
    return done


def cancel_tenants_waiting(cloud: Cloud, tenant: str) -> list[str]:
    """Cancel every job of the tenant that waits (in its line, or held by an earlier
    version); the ids of those cancelled (one that started meanwhile is left)."""
    table = _table(cloud)
    waiting = [r for r in table.held([tenant]) if r.tenant == tenant and r.state is JobState.HELD]
    now = time.time()
    reason = cancelled_reason(WHO)
    return [
        row.job_id
        for row in waiting
        if table.cancel(row, reason=reason, now=now, announce_by=now) is not None
    ]
