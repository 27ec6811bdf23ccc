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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..observability import count, logger
from .task_callbacks import FINAL_ERRORS, task_of

if TYPE_CHECKING:
    from ..data.task_table import TaskTable

# No heartbeat is started with less of the invocation left than this.
SPARE_SECONDS = 5.0
# Heartbeats sent at once: a pass of thousands ends well within the function's minute.
BEATS_AT_ONCE = 16


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
    `due_since` or later), BEATS_AT_ONCE at a time, so that all go out within the pass."""
    tokens = [(row.job_id, task[0]) for row in table.under_way(due_since) if (task := task_of(row))]
    outcomes: list[str] = []
    if tokens:
        client = states()  # made once: boto3 clients are shared by threads, not made by them
        with ThreadPoolExecutor(max_workers=BEATS_AT_ONCE, thread_name_prefix="beat") as pool:
            outcomes = list(pool.map(lambda t: _beat(client, t[0], t[1], time_left), tokens))
    beats = Beats(**{name: outcomes.count(name) for name in asdict(Beats())})
    for name, value in asdict(beats).items():
        if value:
            count(f"TaskHeartbeats{name.capitalize()}", value)
    logger.info("heartbeats sent", extra=asdict(beats))
    return beats


def _beat(client: Any, job_id: str, token: str, time_left: Callable[[], float]) -> str:
    """One heartbeat; which of Beats' counts it adds to."""
    if time_left() < SPARE_SECONDS:
        return "skipped"
    try:
        client.send_task_heartbeat(taskToken=token)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in FINAL_ERRORS:
            return "gone"
        logger.warning("heartbeat not taken", extra={"job_id": job_id, "code": code})
        return "failed"
    except BotoCoreError as exc:
        logger.warning("heartbeat not sent", extra={"job_id": job_id, "error": repr(exc)})
        return "failed"
    return "sent"
