"""What an end-to-end test drives: the local stack, the emulator and the real handlers."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from mutagen.mp3 import MP3

from local_cloud.emulator import MusicApiEmulator
from local_cloud.runtime import LocalLambda
from local_cloud.stack import Stack
from local_cloud.watch import read_notifications


@dataclass
class Pipeline:
    stack: Stack
    runtime: LocalLambda
    emulator: MusicApiEmulator
    watch_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def upload(self, key: str, body: bytes, **kwargs: Any) -> None:
        self.stack.client("s3").put_object(
            Bucket=self.stack.lyrics_bucket, Key=key, Body=body, **kwargs
        )

    def enqueue(self, body: Any, *, queue_url: str | None = None) -> None:
        """A message on the jobs queue (or `queue_url`)."""
        text = body if isinstance(body, str) else json.dumps(body)
        url = queue_url or self.stack.jobs_queue_url
        self.stack.client("sqs").send_message(QueueUrl=url, MessageBody=text)

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification seen so far."""
        self.seen.extend(read_notifications(self.stack, self.watch_url))
        return self.seen

    def run(self, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Drive the event sources until `expected` notifications arrived, then a little more."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.runtime.deliver_jobs(retry_delay_seconds=0)
            self.runtime.deliver_wakes()
            self.runtime.run_schedule()
            if len(self.notifications()) >= expected:
                break
            time.sleep(0.2)
        # A few more turns: anything extra (a second notification, a second call) shows up.
        for _ in range(3):
            self.runtime.deliver_jobs(retry_delay_seconds=0)
            self.runtime.deliver_wakes()
            self.runtime.run_schedule()
        return self.notifications()

    def song(self, note: dict[str, Any]) -> bytes:
        bucket, _, key = note["song"]["s3_uri"].removeprefix("s3://").partition("/")
        body: bytes = self.stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def rows(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.stack.client("dynamodb").scan(
            TableName=self.stack.tasks_table
        )["Items"]
        return items


def mp3_info(data: bytes) -> Any:
    return MP3(io.BytesIO(data)).info  # type: ignore[no-untyped-call]
