"""What an integration test works with: moto in-process, provisioned from template.yaml."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from local_cloud.emulator import MusicApiEmulator
from local_cloud.stack import Stack
from local_cloud.watch import read_envelopes
from lyrics_to_song.data.rows import Row
from lyrics_to_song.follow import PollReport
from lyrics_to_song.intake import handle_message
from lyrics_to_song.payment import Outcome
from lyrics_to_song.poll import poll_due, watch
from lyrics_to_song.services import Services
from lyrics_to_song.sources import QueuedRequest, is_s3_notification
from tests.support import FakeClock, s3_notification, song_request

# Remaining milliseconds of a fresh poll invocation: time never runs short.
FRESH_INVOCATION_MS = 900_000
# The SenderId of the tests' producer (an IAM user's unique id), and the tenants it is
# bound to (TenantPolicy=bound, the template's default); naming none, it sends as default.
PRODUCER = "AIDATESTPRODUCER0001"
PRODUCER_TENANTS = ("default", "team-a", "team-b", "team-c", "shop")


@dataclass
class Cloud:
    stack: Stack
    services: Services
    emulator: MusicApiEmulator
    clock: FakeClock
    watch_url: str
    events_url: str

    def notifications(self) -> list[dict[str, Any]]:
        """Everything the topic has published since the last call."""
        found = []
        for envelope in read_envelopes(self.stack, self.watch_url):
            body: dict[str, Any] = json.loads(envelope["Message"])
            attributes = envelope["MessageAttributes"]
            body["_status_attribute"] = attributes["status"]["Value"]
            body["_notice_attribute"] = attributes["notice_id"]["Value"]
            body["_tenant_attribute"] = attributes["tenant"]["Value"]
            found.append(body)
        return found

    def events(self) -> list[dict[str, Any]]:
        """The EventBridge events a rule on the default bus received since the last call."""
        sqs = self.stack.client("sqs")
        found: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=self.events_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.events_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def submit(self, **overrides: object) -> str:
        """Submit a song request (`overrides` on the test one) and return its job id."""
        body = song_request(**overrides)
        handle_message(self.services, json.dumps(body), "m1", PRODUCER)
        return QueuedRequest(body, "m1").job.job_id

    def send(
        self,
        message: object,
        message_id: str = "m1",
        sender: str | None = PRODUCER,
        *,
        from_bucket: bool | None = None,
    ) -> list[Outcome]:
        """One message as the submit function takes it from `sender`: on the jobs queue,
        or an S3 notification on the lyric files queue, where the bucket sends it (unless
        `from_bucket` says otherwise)."""
        body = message if isinstance(message, str) else json.dumps(message)
        if from_bucket is None:
            from_bucket = isinstance(message, dict) and is_s3_notification(message)
        return handle_message(self.services, body, message_id, sender, from_bucket=from_bucket)

    def poll(self, workers: int | None = None) -> PollReport:
        """One poll run with time to spare; with `workers`, that POLL_CONCURRENCY."""
        services = self.services
        if workers is not None:
            settings = dataclasses.replace(services.settings, poll_concurrency=workers)
            services = dataclasses.replace(services, settings=settings)
        return poll_due(services, lambda: FRESH_INVOCATION_MS)

    def watch(self, *, woken: bool = False, timeout_seconds: float = 240) -> PollReport:
        """One poll invocation as the schedule (or a wake) starts it, on the test's clock:
        its sleeps move the clock, its remaining time runs down with it."""
        services = dataclasses.replace(self.services, sleep=self.clock.advance)
        ends = self.clock.now + timeout_seconds
        return watch(services, lambda: int((ends - self.clock.now) * 1000), woken=woken)

    def rows(self) -> list[Row]:
        items = self.stack.client("dynamodb").scan(TableName=self.stack.tasks_table)["Items"]
        return [Row.from_item(item) for item in items]

    def only_row(self) -> Row:
        (row,) = self.rows()
        return row

    def rewrite_request(self, job_id: str, request_json: str) -> None:
        """Replace a row's request, as if a setting had changed since it came (or an
        earlier version had written it)."""
        table = self.services.table
        table.client.update_item(
            TableName=table.table_name,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET request_json = :other",
            ExpressionAttributeValues={":other": {"S": request_json}},
        )

    def put_lyrics(self, key: str, body: bytes, **kwargs: Any) -> dict[str, Any]:
        """Upload a lyric file; return the S3 notification the bucket would send."""
        s3 = self.stack.client("s3")
        s3.put_object(Bucket=self.stack.lyrics_bucket, Key=key, Body=body, **kwargs)
        head = s3.head_object(Bucket=self.stack.lyrics_bucket, Key=key)
        return s3_notification(self.stack.lyrics_bucket, key, head["ETag"].strip('"'), len(body))
