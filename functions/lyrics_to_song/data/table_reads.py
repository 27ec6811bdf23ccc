"""The tasks table's reads: every row (a scan, for tools), the states of some jobs, and
the sparse index `open-by-due` (a poll's due rows, the jobs under way)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .items import key_text, number, text, to_attr
from .rows import DEFAULT_TENANT, JobState, Row
from .table_base import DUE_INDEX, HELD_SHARD, OPEN_SHARD, TableBase

# A job holds a place while its song is asked for or made (a HELD one holds none).
IN_FLIGHT = (JobState.SUBMITTING, JobState.PENDING)


class TableReads(TableBase):
    """Reading the tasks table; the writes are beside it (task_table.py)."""

    def rows(self, state: JobState | None = None) -> Iterator[Row]:
        """Every row (a scan), optionally of one state."""
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        if state is not None:
            kwargs |= {
                "FilterExpression": "#state = :state",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":state": to_attr(state.value)},
            }
        for page in self.client.get_paginator("scan").paginate(**kwargs):
            yield from (Row.from_item(item) for item in page.get("Items", []))

    def in_flight(self, job_ids: set[str]) -> set[str]:
        """Those of the jobs whose rows say they are still being submitted or made.

        A job whose row could not be read is counted as in flight (the safe side).
        """
        return set(self.in_flight_tenants(job_ids))

    def in_flight_tenants(self, job_ids: set[str]) -> dict[str, str]:
        """Those of the jobs still being submitted or made, with their tenants (a job
        whose row could not be read counts as in flight, its tenant unknown: "")."""
        keys = [self._key(job_id) for job_id in sorted(job_ids)]
        running: dict[str, str] = {}
        for start in range(0, len(keys), 100):
            response = self.client.batch_get_item(
                RequestItems={
                    self.table_name: {
                        "Keys": keys[start : start + 100],
                        "ProjectionExpression": "job_id, #state, tenant",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ConsistentRead": True,
                    }
                }
            )
            for item in response["Responses"].get(self.table_name, []):
                if JobState(key_text(item, "state")) in IN_FLIGHT:
                    running[key_text(item, "job_id")] = text(item, "tenant") or DEFAULT_TENANT
            unread = response.get("UnprocessedKeys", {}).get(self.table_name)
            if unread:
                running.update((key_text(key, "job_id"), "") for key in unread["Keys"])
        return running

    def due(
        self, now: float, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, float]], dict[str, Any] | None]:
        """One page of (job_id, due_at) from the sparse index, earliest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "open_shard = :open AND due_at <= :now",
            "ExpressionAttributeValues": {":open": to_attr(OPEN_SHARD), ":now": to_attr(now)},
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        page = self.client.query(**kwargs)
        items = page.get("Items", [])
        rows = [(key_text(i, "job_id"), number(i, "due_at") or 0.0) for i in items]
        return rows, page.get("LastEvaluatedKey")

    def next_due(self) -> float | None:
        """When the earliest open row is due (maybe past); None when no row is open."""
        page = self.client.query(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression="open_shard = :open",
            ExpressionAttributeValues={":open": to_attr(OPEN_SHARD)},
            ScanIndexForward=True,
            Limit=1,
        )
        return number(page["Items"][0], "due_at") if page.get("Items") else None

    def under_way(self, due_since: float) -> list[Row]:
        """The jobs being submitted or made whose next check is due at `due_since` or
        later (the stack is keeping up with them), and those held in the due index's
        HELD shard: the waiting jobs with a Step Functions task (a wait in line is the
        stack's own pacing: always on time), and those an earlier version held, on time
        while their next try is. Not the lines' other jobs:
        a backlog of any length adds nothing to read here."""
        held = [
            row
            for row in self._shard_rows(HELD_SHARD)
            if row.state is JobState.HELD
            if row.line_at is not None or (row.due_at or 0.0) >= due_since
        ]
        running = [r for r in self._shard_rows(OPEN_SHARD, due_since) if r.state in IN_FLIGHT]
        return held + running
