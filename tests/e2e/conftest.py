"""The local stack over real loopback HTTP: moto's server, the emulator, the real handlers."""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local_cloud.emulator import MusicApiEmulator, RunningEmulator
from local_cloud.runtime import LocalLambda
from local_cloud.stack import MotoServer, Stack, provision

_stack_numbers = itertools.count()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@dataclass
class Pipeline:
    stack: Stack
    runtime: LocalLambda
    emulator: MusicApiEmulator
    watch_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def upload(self, key: str, body: bytes, **kwargs: Any) -> None:
        self.stack.client("s3").put_object(Bucket=self.stack.lyrics_bucket, Key=key, Body=body, **kwargs)

    def enqueue(self, body: Any) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.stack.client("sqs").send_message(QueueUrl=self.stack.jobs_queue_url, MessageBody=text)

    def notifications(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        for message in sqs.receive_message(QueueUrl=self.watch_url, MaxNumberOfMessages=10).get("Messages", []):
            envelope = json.loads(message["Body"])
            self.seen.append(json.loads(envelope["Message"]))
            sqs.delete_message(QueueUrl=self.watch_url, ReceiptHandle=message["ReceiptHandle"])
        return self.seen

    def run(self, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Drive the event sources until `expected` notifications arrived, then a little more."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.runtime.deliver_jobs(retry_delay_seconds=0)
            self.runtime.run_schedule()
            if len(self.notifications()) >= expected:
                break
            time.sleep(0.2)
        # A few more turns: anything extra (a second notification, a second call) shows up.
        for _ in range(3):
            self.runtime.deliver_jobs(retry_delay_seconds=0)
            self.runtime.run_schedule()
        return self.notifications()

    def song(self, note: dict[str, Any]) -> bytes:
        bucket, _, key = note["song"]["s3_uri"].removeprefix("s3://").partition("/")
        body: bytes = self.stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def rows(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.stack.client("dynamodb").scan(TableName=self.stack.tasks_table)["Items"]
        return items


def mp3_info(data: bytes) -> Any:
    from mutagen.mp3 import MP3

    return MP3(io.BytesIO(data)).info  # type: ignore[no-untyped-call]


@pytest.fixture
def emulator() -> MusicApiEmulator:
    return MusicApiEmulator(completion_delay=0.5, audio_seconds=1.0)


@pytest.fixture
def function_env() -> dict[str, str]:
    """Overrides of the functions' environment for a test (on top of the template's)."""
    return {}


@pytest.fixture
def pipeline(
    moto_server: MotoServer, emulator: MusicApiEmulator, function_env: dict[str, str]
) -> Iterator[Pipeline]:
    with RunningEmulator(emulator) as running:
        stack = provision(moto_server.url, stack_name=f"e2e{next(_stack_numbers)}")
        stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=emulator.api_key)
        sqs = stack.client("sqs")
        watch_url = sqs.create_queue(QueueName=f"{stack.name}-watch")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=watch_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stack.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn)
        env = {
            "MUSIC_API_BASE_URL": running.url,
            "FIRST_POLL_DELAY_SECONDS": "0",
            "POLL_BACKOFF_SECONDS": "1",
            **function_env,
        }
        runtime = LocalLambda(stack, env)
        # The bucket's notification setup put an s3:TestEvent on the queue; deliver it first.
        assert runtime.deliver_jobs().received == 1
        yield Pipeline(stack, runtime, emulator, watch_url)
