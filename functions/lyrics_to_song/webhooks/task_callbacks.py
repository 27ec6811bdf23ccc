"""Answering a Step Functions task that waits for a song (docs/step-functions.md).

When a job whose request carried a `task_token` ends, the answer it owes is kept on its
row and a message goes on the webhooks queue, as a webhook's does; the webhook function
then calls SendTaskSuccess (with the notice, and the song's bucket and key) or
SendTaskFailure (`Song.Failed`, `Song.TimedOut`, `Song.Unknown`, the reason as cause).
Throttling and Step Functions' own errors are tried again; a token Step Functions no
longer takes (InvalidToken, TaskTimedOut, TaskDoesNotExist) ends it, recorded, untried.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..data.rows import JobState, Row
from ..observability import count, logger
from .queue import notice_id

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from ..data.task_table import TaskTable

TASK_MESSAGE_KIND = "task"
# Step Functions' answers that no retry can change: the token is used, or gone; or this
# function may not answer that state machine (its role, fixed until a redeploy: trying
# again hourly for days would change nothing).
FINAL_ERRORS = (
    "InvalidToken",
    "TaskTimedOut",
    "TaskDoesNotExist",
    "InvalidOutput",
    "AccessDeniedException",
    "AccessDenied",
)
ERROR_NAMES = {
    JobState.FAILED: "Song.Failed",
    JobState.TIMED_OUT: "Song.TimedOut",
    JobState.UNKNOWN: "Song.Unknown",
    JobState.CANCELLED: "Song.Cancelled",
}
MAX_CAUSE_CHARS = 32768  # SendTaskFailure's limit


@dataclass(frozen=True)
class TaskMessage:
    """One answer owed, on the webhooks queue: what it is, and the row holds the rest."""

    job_id: str
    notice_id: str

    def to_json(self) -> str:
        return json.dumps(
            {"kind": TASK_MESSAGE_KIND, "job_id": self.job_id, "notice_id": self.notice_id}
        )

    @classmethod
    def read(cls, fields: dict[str, Any]) -> TaskMessage | None:
        """The message, if it is one (webhooks' messages have no `kind`)."""
        if fields.get("kind") != TASK_MESSAGE_KIND:
            return None
        return cls(str(fields["job_id"]), str(fields["notice_id"]))


def task_of(row: Row) -> tuple[str, str] | None:
    """The job's task token and state machine, if its request named them."""
    if not row.request_json:
        return None
    request = json.loads(row.request_json)
    token, machine = request.get("task_token"), request.get("state_machine")
    return (str(token), str(machine)) if token and machine else None


def output_of(row: Row, body: dict[str, Any], songs_bucket: str) -> str:
    """What SendTaskSuccess carries: the notice, and where the song is for the next state."""
    found = {
        **body,
        "song_bucket": songs_bucket if row.song_key else None,
        "song_key": row.song_key,
    }
    return json.dumps(found, ensure_ascii=False)


def queue_task_answer(
    table: TaskTable, sqs: SQSClient, queue_url: str, row: Row, *, output: str
) -> bool:
    """Record the answer owed for the row's ending and put it on the queue (again, after
    a crash before the row was closed, unless it was already given)."""
    notice = notice_id(row)
    seen = row.task
    if seen is not None and seen.notice_id == notice and seen.state != "pending":
        return False
    table.task_queued(row.job_id, notice, output)
    sqs.send_message(QueueUrl=queue_url, MessageBody=TaskMessage(row.job_id, notice).to_json())
    return True


def answer(
    table: TaskTable, states: Callable[[], Any], message: TaskMessage, retry_seconds: float
) -> float | None:
    """One attempt to answer the task; the seconds until the next, or None when done."""
    logger.thread_safe_append_keys(job_id=message.job_id, notice_id=message.notice_id)
    row = table.get(message.job_id)
    seen = row.task if row else None
    task = task_of(row) if row else None
    if row is None or seen is None or task is None:
        return None
    if seen.notice_id != message.notice_id or seen.state != "pending":
        return None
    token, _ = task
    try:
        if row.state is JobState.COMPLETED:
            states().send_task_success(taskToken=token, output=seen.output or "{}")
        else:
            states().send_task_failure(
                taskToken=token,
                error=ERROR_NAMES.get(row.state, "Song.Failed"),
                cause=(row.error or row.state.value)[:MAX_CAUSE_CHARS],
            )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        text = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"[:300]
        if code in FINAL_ERRORS:
            logger.warning(
                "Step Functions no longer takes this task's answer", extra={"answer": text}
            )
            count("TaskAnswersRefused")
            table.task_attempted(row.job_id, seen, "refused", text)
            return None
        logger.warning(
            "Step Functions did not take the answer: tried again", extra={"answer": text}
        )
        table.task_attempted(row.job_id, seen, "pending", text)
        return _later(retry_seconds, seen.attempts)
    except BotoCoreError as exc:
        table.task_attempted(row.job_id, seen, "pending", f"no answer: {exc}"[:300])
        return _later(retry_seconds, seen.attempts)
    table.task_attempted(row.job_id, seen, "sent", "sent")
    count("TaskAnswersSent")
    logger.info("Step Functions task answered", extra={"state": row.state.value})
    return None


def _later(first: float, attempts: int) -> float:
    """The wait before the next attempt: `first`, doubled each time, at most an hour."""
    return float(min(3600.0, first * 2 ** min(attempts, 8)))
