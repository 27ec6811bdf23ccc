"""Helpers shared by the test suites: a clock the tests move, event builders, seeded rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from lyrics_to_song.data.caps import Budget
from lyrics_to_song.data.rows import DEFAULT_TENANT, Price
from lyrics_to_song.data.task_table import Started, TaskTable


@dataclass
class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def s3_notification(
    bucket: str, key: str, etag: str = "etag-1", size: int | None = 100
) -> dict[str, Any]:
    """An ObjectCreated notification as S3 sends it (the key URL-encoded, spaces as '+')."""
    obj: dict[str, Any] = {"key": quote_plus(key), "eTag": etag, "sequencer": "0A1B"}
    if size is not None:
        obj["size"] = size
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": obj},
            }
        ]
    }


def song_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": "bright indie pop, female vocals",
        "lyrics": "[Verse]\nHello morning light\n[Chorus]\nWe are alright",
    }
    body.update(overrides)
    return body


def sqs_event(*bodies: Any) -> dict[str, Any]:
    """An SQS batch as the event source mapping delivers it."""
    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append(
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"rh-{i}",
                "body": text,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def seed_row(
    table: TaskTable,
    budget: Budget | None,
    job_id: str,
    *,
    now: float,
    lease_seconds: float = 60,
    task_id: str | None = None,
    first_due: float | None = None,
    source: str | None = None,
    tenant: str = DEFAULT_TENANT,
    price: Price | None = None,
) -> Started:
    """A job's row as the submit function writes it: SUBMITTING, or PENDING with `task_id`
    (submitted at `now`, first due at `first_due`); without a budget, outside the caps."""
    started = table.start(
        job_id,
        source=source or f"sqs:{job_id}",
        source_name=(source or job_id).rsplit("/", 1)[-1],
        request_json="{}",
        model="minimax-music",
        now=now,
        lease_seconds=lease_seconds,
        reservation=budget.reserve(job_id, now) if budget else None,
        tenant=tenant,
        price=price,
    )
    assert isinstance(started, Started), started
    if task_id is not None:
        due = now + 20 if first_due is None else first_due
        assert table.submitted(job_id, started.attempt, task_id=task_id, now=now, first_due=due)
    return started
