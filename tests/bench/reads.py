"""Reads: one poll cycle over 10,000 finished and 100 due tasks, against a table scan."""

from __future__ import annotations

from typing import Any

from moto import mock_aws

from local_cloud.stack import provision
from lyrics_to_song.poll import poll_due

from .common import Result, emulator_process, seed_pending, services_for, sized

FINISHED = sized(10_000, 1000, 50)
DUE = sized(100, 100, 5)
LIMIT = DUE + 10  # one page of due rows and a few more


def seed_finished(client: Any, table: str, count: int) -> None:
    """Ended, notified rows: what a busy table is mostly made of. They carry no index keys."""
    for start in range(0, count, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "job_id": {"S": f"done-{i:06d}"},
                                "state": {"S": "COMPLETED"},
                                "source": {"S": "sqs:x"},
                                "source_name": {"S": "x"},
                                "task_id": {"S": f"t{i}"},
                                "created_at": {"N": "1"},
                                "notified": {"BOOL": True},
                                "expires_at": {"N": "2000000000"},
                            }
                        }
                    }
                    for i in range(start, min(start + 25, count))
                ]
            }
        )


def run() -> list[Result]:
    read = {"items": 0, "calls": 0}

    def count_reads(parsed: dict[str, Any], **_: Any) -> None:
        read["calls"] += 1
        read["items"] += parsed.get("ScannedCount", 1 if parsed.get("Item") else 0)

    with mock_aws(), emulator_process("--delay", "0") as emulator:
        stack = provision(None, stack_name="bench-reads")
        services = services_for(stack, emulator.url, emulator.api_key)
        seed_finished(services.table.client, services.table.table_name, FINISHED)
        seed_pending(services, emulator, DUE, "due")
        events = services.table.client.meta.events
        for operation in ("Query", "Scan", "GetItem"):
            events.register(f"after-call.dynamodb.{operation}", count_reads)
        report = poll_due(services, lambda: 10**9)
        assert report.completed == DUE
        fast = dict(read)
        read.update(items=0, calls=0)
        pages = services.table.client.get_paginator("scan").paginate(  # the naive way
            TableName=services.table.table_name,
            FilterExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":pending": {"S": "PENDING"}},
        )
        for _ in pages:
            pass
        naive = dict(read)
    return [
        Result(
            f"reads, one poll cycle, {FINISHED:,} finished + {DUE} due tasks",
            f"{fast['items']} items read ({fast['calls']} calls)",
            f"scan: {naive['items']:,} items",
            f"{naive['items'] / max(fast['items'], 1):.0f}x fewer",
            f"<= {LIMIT} items",
            fast["items"] <= LIMIT,
        )
    ]
