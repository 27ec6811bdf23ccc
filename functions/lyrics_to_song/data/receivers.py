"""Receivers that do not answer, kept apart (docs/webhooks.md: A receiver that does not
answer).

A receiver (a callback URL's host and port) whose POST timed out or could not be
reached is marked down in the spending table (`receiver#<host:port>`: `down_until`,
`failures`) for a while that doubles with each failure in a row, from a minute to at
most 15 minutes. While it is down its webhooks wait on the queue without an attempt, so
it costs the webhook function one attempt's timeout a period, not one each; then one of
them alone (a probe, which takes the mark for its timeout) tries, and its answer opens
or closes the way for the others. Any answer at all (even a 500) counts as up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .items import item_of, number, to_attr, whole

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PREFIX = "receiver#"
FIRST_DOWN_SECONDS = 60.0
MAX_DOWN_SECONDS = 900.0
ITEM_DAYS = 7  # a receiver's mark is forgotten a week after its last failure


@dataclass(frozen=True)
class Health:
    """What is known of a receiver: up (no failures), or down until a time."""

    failures: int = 0
    down_until: float = 0.0


def down_for(failures: int) -> float:
    """How long a receiver stays down after this many failures in a row."""
    return float(min(MAX_DOWN_SECONDS, FIRST_DOWN_SECONDS * 2 ** min(max(failures - 1, 0), 10)))


@dataclass(frozen=True)
class Receivers:
    """The receivers' marks in the spending table."""

    client: DynamoDBClient
    table_name: str

    def health(self, receiver: str) -> Health:
        item = self.client.get_item(
            TableName=self.table_name, Key=_key(receiver), ConsistentRead=True
        ).get("Item", {})
        return Health(whole(item, "failures") or 0, number(item, "down_until") or 0.0)

    def take_probe(self, receiver: str, seen: Health, now: float, lease: float) -> bool:
        """Be the one attempt to a down receiver whose wait is over: True for one caller
        only (the mark moves to the end of its attempt, `lease` seconds on)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(receiver),
                UpdateExpression="SET down_until = :lease",
                ConditionExpression="down_until = :seen",
                ExpressionAttributeValues={
                    ":lease": to_attr(now + lease),
                    ":seen": to_attr(seen.down_until),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def failed(self, receiver: str, seen: Health, now: float) -> float:
        """Mark the receiver down after an attempt that got no answer; until when."""
        until = now + down_for(seen.failures + 1)
        self.client.update_item(
            TableName=self.table_name,
            Key=_key(receiver),
            UpdateExpression="SET down_until = :until, expires_at = :expires ADD failures :one",
            ExpressionAttributeValues={
                ":until": to_attr(until),
                ":expires": to_attr(int(now) + ITEM_DAYS * 86400),
                ":one": to_attr(1),
            },
        )
        return until

    def answered(self, receiver: str) -> None:
        """The receiver answered: it is up again."""
        self.client.delete_item(TableName=self.table_name, Key=_key(receiver))


def _key(receiver: str) -> dict[str, dict[str, str]]:
    return item_of({"counter": PREFIX + receiver})
