"""Spending caps: songs submitted per UTC day, and songs in flight at once.

Both live in the spending table and are taken in the same transaction that writes a
job's SUBMITTING row (`Reservation`, handed to the task table), so a row exists exactly
when its share of both caps was taken:

- `day#YYYY-MM-DD` counts the submissions of that day (`submitted`), refunded when the
  API surely refused one (nothing was paid);
- `in-flight` holds the ids of the jobs started and not yet seen to end (`holders`,
  a string set). Nothing removes a holder when its job ends: when the set is full,
  the submit function reads the holders' rows and drops those that ended. The rows
  are the truth, so a crash anywhere cannot leak a place for good.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import OverBudget
from .items import Item, item_of, strings, to_attr, whole

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IN_FLIGHT_KEY = "in-flight"
DAY_PREFIX = "day#"
# Longest delay SQS allows on a message: a job over the daily cap looks again this often.
MAX_QUEUE_DELAY_SECONDS = 900
DAY_ITEM_TTL_DAYS = 3


class Cap(StrEnum):
    DAILY = "daily"
    IN_FLIGHT = "in-flight"


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def counter_key(name: str) -> Item:
    """The key of one item of the spending table."""
    return item_of({"counter": name})


@dataclass(frozen=True)
class Reservation:
    """One song of a day's cap and one place in flight, for one job.

    The task table writes it in the transaction that writes the job's row; a job
    already holding a place (a resubmission) keeps it rather than taking another.
    """

    job_id: str
    day: str
    table_name: str
    per_day: int
    in_flight: int
    expires_at: int

    # The caps in the order of `writes`.
    CAPS = (Cap.DAILY, Cap.IN_FLIGHT)

    def writes(self) -> list[dict[str, Any]]:
        return [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": counter_key(DAY_PREFIX + self.day),
                    "UpdateExpression": "ADD submitted :one SET expires_at = :expires",
                    "ConditionExpression": "attribute_not_exists(submitted) OR submitted < :cap",
                    "ExpressionAttributeValues": {
                        ":one": to_attr(1),
                        ":cap": to_attr(self.per_day),
                        ":expires": to_attr(self.expires_at),
                    },
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": counter_key(IN_FLIGHT_KEY),
                    "UpdateExpression": "ADD holders :job",
                    "ConditionExpression": "attribute_not_exists(holders)"
                    " OR size(holders) < :cap OR contains(holders, :job_id)",
                    "ExpressionAttributeValues": {
                        ":job": to_attr(frozenset([self.job_id])),
                        ":job_id": to_attr(self.job_id),
                        ":cap": to_attr(self.in_flight),
                    },
                }
            },
        ]


@dataclass(frozen=True)
class Budget:
    """Data access for the spending table, with the two limits it enforces."""

    client: DynamoDBClient
    table_name: str
    per_day: int
    in_flight: int
    in_flight_retry_seconds: int = 60  # songs take 30-90 s

    def reserve(self, job_id: str, now: float) -> Reservation:
        """What the job's row must take with it: a song of today's cap, a place in flight."""
        expires = datetime.fromtimestamp(now, UTC) + timedelta(days=DAY_ITEM_TTL_DAYS)
        return Reservation(
            job_id=job_id,
            day=day_of(now),
            table_name=self.table_name,
            per_day=self.per_day,
            in_flight=self.in_flight,
            expires_at=int(expires.timestamp()),
        )

    def over(self, cap: Cap, now: float) -> OverBudget:
        """The error that says a cap is reached, and how long the job waits."""
        if cap is Cap.DAILY:
            return OverBudget(
                Cap.DAILY,
                f"the daily cap of {self.per_day} songs is reached for {day_of(now)} (UTC)",
                MAX_QUEUE_DELAY_SECONDS,
            )
        return OverBudget(
            Cap.IN_FLIGHT,
            f"{self.in_flight} songs are in flight, the most allowed at once",
            self.in_flight_retry_seconds,
        )

    def refund(self, day: str) -> None:
        """Give back a song of that day's cap: the API surely refused it, nothing was paid."""
        # Nothing counted that day (the item expired): nothing to give back.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=counter_key(DAY_PREFIX + day),
                UpdateExpression="ADD submitted :minus_one",
                ConditionExpression="submitted > :zero",
                ExpressionAttributeValues={":minus_one": to_attr(-1), ":zero": to_attr(0)},
            )

    def _read(self, name: str) -> Item:
        return self.client.get_item(
            TableName=self.table_name, Key=counter_key(name), ConsistentRead=True
        ).get("Item", {})

    def submitted_on(self, day: str) -> int:
        return whole(self._read(DAY_PREFIX + day), "submitted") or 0

    def holders(self) -> set[str]:
        return strings(self._read(IN_FLIGHT_KEY), "holders")

    def drop(self, job_ids: set[str]) -> None:
        """Free the places of jobs that have ended."""
        if job_ids:
            self.client.update_item(
                TableName=self.table_name,
                Key=counter_key(IN_FLIGHT_KEY),
                UpdateExpression="DELETE holders :jobs",
                ExpressionAttributeValues={":jobs": to_attr(frozenset(job_ids))},
            )
