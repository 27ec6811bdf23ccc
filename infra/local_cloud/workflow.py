"""The example Step Functions workflow (examples/step-functions/) on moto's server, run
by moto's ASL interpreter: `make demo WORKFLOW=1` asks for its song that way."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from .stack import Stack

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "examples"
    / "step-functions"
    / "song-for-a-video.asl.json"
)


def run_state_machines(moto_url: str) -> None:
    """Tell moto's server to execute state machines (by default it only records them).

    Its interpreter calls the services (the task's SendMessage) at localhost:MOTO_PORT:
    set here for a server in this process; `python -m moto.server -p` sets its own."""
    os.environ["MOTO_PORT"] = str(httpx.URL(moto_url).port)
    config = {"stepfunctions": {"execute_state_machine": True}}
    httpx.post(f"{moto_url}/moto-api/config", json=config, timeout=10).raise_for_status()


def example_workflow(moto_url: str, stack: Stack) -> str:
    """The example's state machine on the local stack's jobs queue; its ARN."""
    run_state_machines(moto_url)
    name = f"{stack.name}-soundtrack"
    definition = EXAMPLE.read_text().replace("${JobsQueueUrl}", stack.jobs_queue_url)
    created = stack.client("stepfunctions").create_state_machine(
        name=name, definition=definition, roleArn="arn:aws:iam::123456789012:role/workflow"
    )
    return str(created["stateMachineArn"])


def execution_end(stack: Stack, execution: str, timeout: float) -> dict[str, Any]:
    """The execution once it is no longer running (or as it is at `timeout`)."""
    sfn = stack.client("stepfunctions")
    ends = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if found["status"] != "RUNNING" or time.monotonic() >= ends:
            return found
        time.sleep(0.1)


def song_of(found: dict[str, Any]) -> dict[str, Any]:
    """What the example's last state hands on: the song's bucket, key and job id."""
    return dict(json.loads(found.get("output") or "{}"))
