"""Heartbeats for the Step Functions tasks waiting for songs (docs/step-functions.md:
Heartbeats).

Every few minutes (the webhook function's `Heartbeats` schedule) each job with a task
token that is under way (held by a cap, being submitted, being made) gets a
SendTaskHeartbeat, as long as its next step is not overdue by more than the stale limit:
when the stack stops keeping up with a job (no poll run checks it, a held job's retry
never comes), its heartbeats stop and a workflow with `HeartbeatSeconds` learns of it
then, not at its `TimeoutSeconds`. A hold is the stack's own pacing, so it beats on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..observability import count, logger
from .task_callbacks import FINAL_ERRORS, task_of

if TYPE_CHECKING:
    from ..data.task_table import TaskTable

# No heartbeat is started with less of the invocation left than this.
SPARE_SECONDS = 5.0


@dataclass
class Beats:
    """What one pass did."""

    sent: int = 0
    gone: int = 0  # tokens Step Functions no longer takes: the workflow gave up
    failed: int = 0  # throttled or unreachable: the next pass sends again
    skipped: int = 0  # no time left in this invocation


def send_heartbeats(
    table: TaskTable,
    states: Callable[[], Any],
    *,
    due_since: float,
    time_left: Callable[[], float],
) -> Beats:
    """One heartbeat to each task whose job is under way on time (its next step due at
    `due_since` or later)."""
    beats = Beats()
    for row in table.under_way(due_since):
        task = task_of(row)
        if task is None:
            continue
        if time_left() < SPARE_SECONDS:
            beats.skipped += 1
            continue
        try:
            states().send_task_heartbeat(taskToken=task[0])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in FINAL_ERRORS:
                beats.gone += 1
            else:
                beats.failed += 1
                logger.warning("heartbeat not taken", extra={"job_id": row.job_id, "code": code})
        except BotoCoreError as exc:
            beats.failed += 1
            logger.warning("heartbeat not sent", extra={"job_id": row.job_id, "error": repr(exc)})
        else:
            beats.sent += 1
    for name, value in asdict(beats).items():
        if value:
            count(f"TaskHeartbeats{name.capitalize()}", value)
    logger.info("heartbeats sent", extra=asdict(beats))
    return beats
