"""Heartbeats: one pass over 10,000 jobs waiting in line and 20 being made, each of
those 20 with a Step Functions task; items read and heartbeats sent.

The baseline is the same pass over the same jobs held as the previous version held them
(in the due index's HELD shard, each waiting for its reminder), which it read whole.
"""

from __future__ import annotations

import json
from typing import Any

from moto import mock_aws

from local_cloud.stack import provision
from lyrics_to_song.data.items import item_of
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.webhooks.task_heartbeats import send_heartbeats
from tests.support import FakeClock

from .backlog import _Counting
from .common import Result, sized

HELD = sized(10_000, 2_000, 100)
OPEN = 20
MAX_READ = 50
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:bench"


class _States:
    """Step Functions, as far as the pass uses it."""

    def __init__(self) -> None:
        self.beats = 0

    def send_task_heartbeat(self, **_: Any) -> None:
        self.beats += 1


def _rows(now: float, *, previous: bool) -> list[dict[str, Any]]:
    """The waiting jobs (as this version or the previous one holds them), then the open
    ones with a task."""
    held = []
    for n in range(HELD):
        row: dict[str, Any] = {
            "job_id": f"job-held-{n}",
            "state": "HELD",
            "source": f"sqs:w{n}",
            "source_name": f"w{n}",
            "created_at": now,
            "tenant": "default",
            "request_json": json.dumps({"lyrics": "la", "prompt": "p"}),
            "held_cap": "daily",
            "held_reason": "the stack is at its daily cap",
            "held_since": now,
            "held_token": f"t{n}",
        }
        if previous:
            row |= {"open_shard": "HELD", "due_at": now + 900, "held_until": now + 900}
        else:
            row |= {"line_tenant": "default", "line_at": now + n / 1000}
        held.append(row)
    task = json.dumps({"lyrics": "la", "task_token": "T" * 40, "state_machine": MACHINE})
    running = [
        {
            "job_id": f"job-open-{n}",
            "state": "PENDING",
            "source": f"sqs:o{n}",
            "source_name": f"o{n}",
            "created_at": now,
            "tenant": "default",
            "request_json": task,
            "task_id": f"task-{n}",
            "open_shard": "OPEN",
            "due_at": now + 10,
        }
        for n in range(OPEN)
    ]
    return held + running


def _pass(previous: bool) -> tuple[int, int]:
    """Items read and heartbeats sent by one pass."""
    with mock_aws():
        stack = provision(None, stack_name="bench-beats")
        client = stack.client("dynamodb")
        clock = FakeClock()
        rows = _rows(clock.now, previous=previous)
        for start in range(0, len(rows), 25):
            client.batch_write_item(
                RequestItems={
                    stack.tasks_table: [
                        {"PutRequest": {"Item": item_of(row)}} for row in rows[start : start + 25]
                    ]
                }
            )
        counting = _Counting(client)
        states = _States()
        beats = send_heartbeats(
            TaskTable(counting, stack.tasks_table),  # type: ignore[arg-type]
            lambda: states,
            due_since=clock.now - 420,
            time_left=lambda: 60.0,
        )
        assert beats.sent == states.beats
        return counting.reads, states.beats


def run() -> list[Result]:
    read, sent = _pass(previous=False)
    read_before, sent_before = _pass(previous=True)
    return [
        Result(
            f"heartbeats: one pass, {HELD:,} jobs waiting in line and {OPEN} being made "
            "with a task",
            f"{read} items read, {sent} of {OPEN} heartbeats sent",
            f"held as before (HELD shard): {read_before:,} read, {sent_before} sent",
            f"{read / read_before:.4f}x the reads",
            f"<= {MAX_READ} read, all {OPEN} sent",
            read <= MAX_READ and sent == OPEN,
        )
    ]
