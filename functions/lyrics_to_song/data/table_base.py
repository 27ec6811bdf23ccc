"""What every part of the tasks table's access shares: its client and name, a row's key,
reading a row, and the conditional update every named write is made of."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .items import Fields, Item, item_of, key_text, to_attr, transact, update_clause, updated
from .rows import Row
from .spend import Tally

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DUE_INDEX = "open-by-due"
OPEN_SHARD = "OPEN"
# Held jobs (and held resubmissions) sit in the same index under a shard of their own,
# keyed by when they are tried again: a poll never reads them, `held()` reads only them.
HELD_SHARD = "HELD"


class TableBase:
    """Data access for the tasks table; takes its client, holds no other state.

    With `spending_table`, every charge and every ending is also counted there, in the
    transaction of the row's own change (spend.py); without it (tools, some tests),
    rows change alone.
    """

    def __init__(
        self, client: DynamoDBClient, table_name: str, spending_table: str | None = None
    ) -> None:
        self.client = client
        self.spending_table = spending_table
        self.table_name = table_name

    def get(self, job_id: str) -> Row | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(job_id), ConsistentRead=True
        ).get("Item")
        return Row.from_item(item) if item else None

    def _shard_rows(self, shard: str, due_since: float | None = None) -> list[Row]:
        """The rows of one shard of the due index (from `due_since` on, if given): a few
        index pages, then the rows a hundred at a time."""
        condition = "open_shard = :shard"
        values = {":shard": to_attr(shard)}
        if due_since is not None:
            condition += " AND due_at >= :since"
            values[":since"] = to_attr(due_since)
        ids: list[str] = []
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=DUE_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        for page in pages:
            ids += [key_text(item, "job_id") for item in page.get("Items", [])]
        return self._rows(ids)

    def _rows(self, job_ids: list[str]) -> list[Row]:
        """The rows of these jobs (those that exist), read a hundred at a time."""
        keys = [self._key(job_id) for job_id in job_ids]
        rows: list[Row] = []
        while keys:
            batch, keys = keys[:100], keys[100:]
            response = self.client.batch_get_item(
                RequestItems={self.table_name: {"Keys": batch, "ConsistentRead": True}}
            )
            rows += [Row.from_item(i) for i in response["Responses"].get(self.table_name, [])]
            unread = response.get("UnprocessedKeys", {}).get(self.table_name)
            if unread:
                keys += unread["Keys"]
        return rows

    @staticmethod
    def _key(job_id: str) -> Item:
        return item_of({"job_id": job_id})

    def _update(
        self,
        job_id: str,
        fields: Fields,
        *,
        condition: str,
        extra_values: dict[str, Any] | None = None,
        tallies: list[Tally] | None = None,
        held: Row | None = None,
    ) -> Row | None:
        """A conditional update (counted with `tallies` when the table counts); the row
        as it is after it, or None if the condition failed.

        A counted update is a transaction, which returns no values: the row after it is
        worked out from `held` (a row this run holds: only its holder changes it, but for
        the webhook of an earlier ending, which an ending does not read), else read back."""
        clause, names, values = update_clause(fields)
        if "#state" in condition:
            names["#state"] = "state"
        values.update(extra_values or {})
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._key(job_id),
            "UpdateExpression": clause,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            update["ExpressionAttributeValues"] = values
        if tallies and self.spending_table is not None:
            counted = [write for tally in tallies for write in tally.writes(self.spending_table)]
            if transact(self.client, [{"Update": update}, *counted]) == 0:
                return None
            if held is not None and held.item:
                return Row.from_item(updated(held.item, fields))
            return self.get(job_id)
        try:
            response = self.client.update_item(**update, ReturnValues="ALL_NEW")
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return Row.from_item(response["Attributes"])
