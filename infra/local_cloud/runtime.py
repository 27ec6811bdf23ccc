"""Lambda, played locally: the real handlers, invoked with the events AWS would send.

- the SQS event sources: receive a batch from the jobs queue (or the poll-wake queue,
  or the webhooks queue), invoke the submit (or poll, or webhook) function, delete what
  succeeded, leave the reported failures for redelivery;
- the schedule: invoke the poll function with an EventBridge Scheduler event.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from .stack import FUNCTIONS, REGION, Stack, aws_environment

# How long serving waits for each invocation to wrap up once told to stop (a poll run
# sleeps at most 5 s between sweeps).
WRAP_UP_SECONDS = 30.0
# Powertools settings for local runs: no X-Ray daemon here.
LOCAL_POWERTOOLS = {"POWERTOOLS_TRACE_DISABLED": "true"}


class _SharedEnvironment:
    """Environment variables set for the blocks under way, put back after the last.

    Two blocks may run at once (overlapping invocations, on threads); each setting and
    restoring the variables on its own would leave the other's values behind.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved: dict[str, str | None] = {}

    @contextmanager
    def applied(self, values: Mapping[str, str]) -> Iterator[None]:
        with self._lock:
            for name in values:
                self._saved.setdefault(name, os.environ.get(name))
            os.environ.update(values)
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    for name, old in self._saved.items():
                        if old is None:
                            os.environ.pop(name, None)
                        else:
                            os.environ[name] = old
                    self._saved.clear()


# Set environment variables for a block and put the old ones back after the last block.
environment = _SharedEnvironment().applied


@dataclass
class LocalContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)
    stopping: threading.Event | None = None  # set: the local stack is shutting down

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        if self.stopping is not None and self.stopping.is_set():
            return 0  # wrap up as at a timeout, so that serving can end
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@dataclass
class BatchResult:
    received: int
    failed: list[str]
    response: Any


class LocalLambda:
    """Invokes the template's functions in this process with their template environment."""

    def __init__(self, stack: Stack, extra_env: Mapping[str, str] | None = None) -> None:
        if stack.endpoint_url is None:
            raise ValueError(
                "the local Lambda runtime needs moto's server (a stack with an endpoint)"
            )
        self.stack = stack
        self.endpoint_url: str = stack.endpoint_url
        self.extra_env = dict(extra_env or {})
        self.sqs = stack.client("sqs")
        self.stopping: threading.Event | None = None  # the contexts' signal to wrap up
        for logical_id in FUNCTIONS:
            self.cold_start(logical_id)

    def _environment(self, logical_id: str) -> dict[str, str]:
        return {
            **aws_environment(self.endpoint_url),
            **LOCAL_POWERTOOLS,
            **self.stack.environments[logical_id],
            **self.extra_env,
        }

    def cold_start(self, logical_id: str) -> None:
        """Forget the function's cached settings and clients, as a new Lambda instance would."""
        with environment(self._environment(logical_id)):
            module = import_module(self._handler(logical_id).__module__)
            level = os.environ.get("POWERTOOLS_LOG_LEVEL")
            if level:  # the module may have been imported before, under other settings
                logging.getLogger("lyrics-to-song").setLevel(level)
        cached = getattr(module, "services", None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()

    def _handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        module_name, func = self.stack.function_property(logical_id, "Handler").rsplit(".", 1)
        handler: Callable[[dict[str, Any], Any], Any] = getattr(import_module(module_name), func)
        return handler

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        env = self._environment(logical_id)
        context = LocalContext(
            self.stack.refs[logical_id],
            float(self.stack.function_property(logical_id, "Timeout")),
            stopping=self.stopping,
        )
        with environment(env):
            return self._handler(logical_id)(event, context)

    def deliver_jobs(self, retry_delay_seconds: int | None = None) -> BatchResult:
        """One poll of each of the submit function's event sources: the jobs queue, and
        the lyric files queue the bucket's notifications go to."""
        jobs = self.deliver("SubmitFunction", "Jobs", retry_delay_seconds)
        files = self.deliver("SubmitFunction", "LyricFiles", retry_delay_seconds)
        return BatchResult(
            jobs.received + files.received,
            jobs.failed + files.failed,
            [jobs.response, files.response],
        )

    def deliver_wakes(self) -> BatchResult:
        """One poll of the poll-wake queue's event source (a poll run woken by a submission)."""
        return self.deliver("PollFunction", "Wake")

    def deliver_webhooks(self) -> BatchResult:
        """One poll of each of the webhook function's queues (webhooks, and Step Functions
        answers); a failed attempt's message stays hidden for as long as the function said."""
        hooks = self.deliver("WebhookFunction", "Webhooks")
        answers = self.deliver("WebhookFunction", "TaskAnswers")
        return BatchResult(
            hooks.received + answers.received,
            hooks.failed + answers.failed,
            [hooks.response, answers.response],
        )

    def deliver(
        self, logical_id: str, event_name: str, retry_delay_seconds: int | None = None
    ) -> BatchResult:
        """One poll of a function's SQS event source; returns what was delivered and what
        failed.

        `retry_delay_seconds` shortens the wait before a failed record is seen again
        (the queue's visibility timeout applies when it is None, as on AWS).
        """
        source = self.stack.sqs_event(logical_id, event_name)
        queue = source["Queue"]["Fn::GetAtt"][0]
        queue_url = self.stack.refs[queue]
        messages = self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=int(source.get("BatchSize", 10)),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return BatchResult(0, [], None)
        queue_arn = self.stack.arns[queue]
        event = {"Records": [sqs_record(m, queue_arn) for m in messages]}
        try:
            response = self.invoke(logical_id, event)
        except Exception:
            # A crashed invocation deletes nothing: the whole batch comes back.
            failed = [m["MessageId"] for m in messages]
            response = None
        else:
            failed = [f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])]
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        if retry_delay_seconds is not None:
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=queue_url,
                        ReceiptHandle=m["ReceiptHandle"],
                        VisibilityTimeout=retry_delay_seconds,
                    )
        return BatchResult(len(messages), failed, response)

    def run_schedule(self) -> Any:
        """One tick of the poll function's schedule."""
        return self.invoke("PollFunction", scheduler_event(self.stack.refs["PollFunction"]))

    def run_heartbeats(self) -> Any:
        """One tick of the webhook function's Heartbeats schedule (Step Functions tasks)."""
        return self.invoke("WebhookFunction", scheduler_event(self.stack.refs["WebhookFunction"]))

    @property
    def answers_tasks(self) -> bool:
        """Whether the stack lists state machines: the Heartbeats schedule is on then."""
        return bool(self._environment("WebhookFunction").get("CALLBACK_STATE_MACHINES"))

    def serve(
        self,
        stop: threading.Event,
        *,
        schedule_seconds: float = 60.0,
        queue_seconds: float = 1.0,
        heartbeat_seconds: float = 300.0,
        on_error: Callable[[BaseException], None] = lambda exc: None,
    ) -> None:
        """Run the event sources as AWS does, until `stop` is set: the queues read every
        `queue_seconds`, the schedule every `schedule_seconds` (and, with state machines
        listed, the heartbeats every `heartbeat_seconds`), each invocation on a thread of
        its own (a poll run watches for most of its minute).

        Once `stop` is set the invocations see no time left, and serving ends when they
        have wrapped up: none is left running with the environment this sets.
        """
        self.stopping = stop
        running: list[threading.Thread] = []

        def invoke(call: Callable[[], Any]) -> None:
            def run() -> None:
                try:
                    call()
                except Exception as exc:  # a failed invocation; the next one goes on
                    on_error(exc)

            running[:] = [thread for thread in running if thread.is_alive()]
            running.append(threading.Thread(target=run, daemon=True))
            running[-1].start()

        next_tick = time.monotonic()
        next_beat = next_tick + heartbeat_seconds if self.answers_tasks else float("inf")
        # The variables every invocation shares stay set while serving: were they put
        # back each time no invocation runs, a thread reading the environment (botocore,
        # httpx) could meet one as it goes, and fail with a KeyError.
        with environment(aws_environment(self.endpoint_url)):
            while not stop.is_set():
                if time.monotonic() >= next_tick:
                    invoke(self.run_schedule)
                    next_tick += schedule_seconds
                if time.monotonic() >= next_beat:
                    invoke(self.run_heartbeats)
                    next_beat += heartbeat_seconds
                try:
                    self.deliver_jobs(retry_delay_seconds=2)
                    invoke(self.deliver_wakes)
                    invoke(self.deliver_webhooks)
                except Exception as exc:  # AWS unreachable for a moment: read again later
                    on_error(exc)
                stop.wait(queue_seconds)
            for thread in running:
                thread.join(timeout=WRAP_UP_SECONDS)


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to a function."""
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "dataType": value["DataType"],
                "stringListValues": [],
                "binaryListValues": [],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def scheduler_event(function_name: str) -> dict[str, Any]:
    """What EventBridge Scheduler sends a Lambda target by default."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:scheduler:{REGION}:123456789012:schedule/default/{function_name}"],
        "detail": "{}",
    }
