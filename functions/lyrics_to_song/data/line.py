"""The line of held jobs: each tenant's waiting jobs, first in first out, and which
tenants have any (docs/how-it-works.md: The line).

A new job a cap (or its tenant's pause, or the jobs before it) holds back joins its
tenant's line: its HELD row carries `line_tenant` and `line_at` (when it first waited),
the two keys of the sparse index `line-by-tenant`, so a tenant's next jobs are one query
away and a line of any length costs nothing while it waits. Which tenants wait is one
item of the spending table, `line`, read with the tenant's terms at each submission
(the same request) and by every admission.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .items import item_of, key_text, number, to_attr
from .rows import Row
from .table_base import TableBase

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LINE_INDEX = "line-by-tenant"
LINE_KEY = item_of({"counter": "line"})  # in the spending table
STAMP_PREFIX = "w:"
IDLE_PREFIX = "i:"
# The index is eventually consistent: a row just written shows in it within a second or
# so. A tenant marked more recently than this is not forgotten on an empty look.
SETTLE_SECONDS = 10.0


class LineReads(TableBase):
    """Reading the tenants' lines from the tasks table (the writes are holds.py's)."""

    def heads(self, tenant: str, limit: int) -> list[Row]:
        """The first `limit` jobs of the tenant's line, in order (rows read whole)."""
        page = self.client.query(
            TableName=self.table_name,
            IndexName=LINE_INDEX,
            KeyConditionExpression="line_tenant = :tenant",
            ExpressionAttributeValues={":tenant": to_attr(tenant)},
            ScanIndexForward=True,
            Limit=limit,
        )
        rows = self._rows([key_text(item, "job_id") for item in page.get("Items", [])])
        return sorted((r for r in rows if r.line_at is not None), key=_place)

    def waiting(self, tenant: str) -> list[Row]:
        """The tenant's whole line, in order."""
        rows = self._rows(self._line_ids(tenant))
        return sorted((r for r in rows if r.line_at is not None), key=_place)

    def ahead(self, tenant: str, line_at: float, limit: int | None = None) -> int:
        """How many of the tenant's jobs wait before one that joined at `line_at` (counted
        up to `limit`, if given)."""
        return self._count(tenant, "line_at < :at", line_at, limit)

    def line_length(self, tenant: str, limit: int | None = None) -> int:
        """How many jobs the tenant has waiting (up to `limit`, if given)."""
        return self._count(tenant, None, None, limit)

    def _count(self, tenant: str, before: str | None, at: float | None, limit: int | None) -> int:
        condition = "line_tenant = :tenant" + (f" AND {before}" if before else "")
        values = {":tenant": to_attr(tenant)}
        if at is not None:
            values[":at"] = to_attr(at)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": LINE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "Select": "COUNT",
        }
        total = 0
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - total
            page = self.client.query(**kwargs)
            total += int(page.get("Count", 0))
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and total >= limit):
                return total
            kwargs["ExclusiveStartKey"] = start

    def _line_ids(self, tenant: str) -> list[str]:
        ids: list[str] = []
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=LINE_INDEX,
            KeyConditionExpression="line_tenant = :tenant",
            ExpressionAttributeValues={":tenant": to_attr(tenant)},
        )
        for page in pages:
            ids += [key_text(item, "job_id") for item in page.get("Items", [])]
        return ids


def _place(row: Row) -> tuple[float, str]:
    return (row.line_at or 0.0, row.job_id)


@dataclass(frozen=True)
class LineMarks:
    """The `line` item as read: the tenants marked as waiting (with their stamps), and
    those an admission forgot (with when), which each scheduled run looks at again."""

    waiting: dict[str, str]
    idle: dict[str, float]


class WaitingTenants:
    """The `line` item of the spending table: which tenants have jobs waiting, one
    attribute each (`w:<tenant>`, the stamp of its latest join), and which had some
    (`i:<tenant>`, when it was forgotten).

    A join stamps its tenant (when, and a nonce) after its row is written; an admission
    that finds a tenant's line empty forgets the tenant only if the stamp is still the
    one it read before it looked, and older than SETTLE_SECONDS, so a job that joined
    meanwhile, or one the index does not show yet, is never left unseen. A forgotten
    tenant stays known as idle, so that a line a crash left unmarked (a job put back in
    line by a function that died before marking its tenant) is found again."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def marks(self) -> LineMarks:
        item = self.client.get_item(
            TableName=self.table_name, Key=LINE_KEY, ConsistentRead=True
        ).get("Item", {})
        idle = {
            name.removeprefix(IDLE_PREFIX): number(item, name) or 0.0
            for name in item
            if name.startswith(IDLE_PREFIX)
        }
        return LineMarks(stamps_in(item), idle)

    def read(self) -> dict[str, str]:
        """The tenants marked as waiting, with their stamps."""
        return self.marks().waiting

    def mark(self, tenant: str, now: float) -> str:
        """Mark the tenant as waiting; its new stamp."""
        stamp = f"{now:.3f}/{uuid.uuid4().hex}"
        self.client.update_item(
            TableName=self.table_name,
            Key=LINE_KEY,
            UpdateExpression="SET #tenant = :stamp REMOVE #idle",
            ExpressionAttributeNames={
                "#tenant": STAMP_PREFIX + tenant,
                "#idle": IDLE_PREFIX + tenant,
            },
            ExpressionAttributeValues={":stamp": to_attr(stamp)},
        )
        return stamp

    def clear(self, tenant: str, stamp: str, now: float) -> bool:
        """Forget the tenant, unless a job joined its line since `stamp` was read, or
        lately enough that the index may not show it yet."""
        if now - stamped_at(stamp) < SETTLE_SECONDS:
            return False
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=LINE_KEY,
                UpdateExpression="REMOVE #tenant SET #idle = :now",
                ConditionExpression="#tenant = :stamp",
                ExpressionAttributeNames={
                    "#tenant": STAMP_PREFIX + tenant,
                    "#idle": IDLE_PREFIX + tenant,
                },
                ExpressionAttributeValues={":stamp": to_attr(stamp), ":now": to_attr(now)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def drop_idle(self, tenant: str, since: float) -> None:
        """No longer look at a forgotten tenant (unless it was marked meanwhile)."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=LINE_KEY,
                UpdateExpression="REMOVE #idle",
                ConditionExpression="#idle = :since",
                ExpressionAttributeNames={"#idle": IDLE_PREFIX + tenant},
                ExpressionAttributeValues={":since": to_attr(since)},
            )


def stamped_at(stamp: str) -> float:
    """When a stamp was made (0 for one without a time)."""
    when, _, _ = stamp.partition("/")
    try:
        return float(when)
    except ValueError:
        return 0.0


def stamps_in(item: dict[str, Any]) -> dict[str, str]:
    """The waiting tenants of a `line` item, with their stamps."""
    return {
        name.removeprefix(STAMP_PREFIX): value.get("S", "")
        for name, value in item.items()
        if name.startswith(STAMP_PREFIX)
    }
