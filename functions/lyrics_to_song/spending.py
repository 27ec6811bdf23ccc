"""Spending caps: songs submitted per UTC day, and songs in flight at once.

Both live in the spending table and are taken in the same transaction that writes a
job's SUBMITTING row, so a row exists exactly when its share of both caps was taken:

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


class OverBudget(Exception):
    """A cap is reached: the job must wait in the queue, unpaid, for `retry_after` s."""

    def __init__(self, cap: Cap, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.cap = cap
        self.retry_after = retry_after


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Budget:
    """Data access for the spending table, with the two limits it enforces."""

    client: DynamoDBClient
    table_name: str
    per_day: int
    in_flight: int
    in_flight_retry_seconds: int = 60  # songs take 30-90 s

    def reservation(self, job_id: str, now: float) -> list[dict[str, Any]]:
        """The transaction items that take one song of today's cap and one place in flight.

        A job already holding a place (a resubmission) keeps it rather than taking another.
        """
        expires = datetime.fromtimestamp(now, UTC) + timedelta(days=DAY_ITEM_TTL_DAYS)
        return [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"counter": {"S": DAY_PREFIX + day_of(now)}},
                    "UpdateExpression": "ADD submitted :one SET expires_at = :expires",
                    "ConditionExpression": "attribute_not_exists(submitted) OR submitted < :cap",
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":cap": {"N": str(self.per_day)},
                        ":expires": {"N": str(int(expires.timestamp()))},
                    },
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"counter": {"S": IN_FLIGHT_KEY}},
                    "UpdateExpression": "ADD holders :job",
                    "ConditionExpression": "attribute_not_exists(holders)"
                    " OR size(holders) < :cap OR contains(holders, :job_id)",
                    "ExpressionAttributeValues": {
                        ":job": {"SS": [job_id]},
                        ":job_id": {"S": job_id},
                        ":cap": {"N": str(self.in_flight)},
                    },
                }
            },
        ]

    def refused(self, failed: list[int], now: float) -> OverBudget:
        """Which cap refused a reservation (by the failed items' positions), as an error."""
        if 0 in failed:
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
                Key={"counter": {"S": DAY_PREFIX + day}},
                UpdateExpression="ADD submitted :minus_one",
                ConditionExpression="submitted > :zero",
                ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
            )

    def submitted_on(self, day: str) -> int:
        item = self.client.get_item(
            TableName=self.table_name, Key={"counter": {"S": DAY_PREFIX + day}}, ConsistentRead=True
        ).get("Item", {})
        return int(item.get("submitted", {}).get("N", "0"))

    def holders(self) -> set[str]:
        item = self.client.get_item(
            TableName=self.table_name, Key={"counter": {"S": IN_FLIGHT_KEY}}, ConsistentRead=True
        ).get("Item", {})
        return set(item.get("holders", {}).get("SS", []))

    def drop(self, job_ids: set[str]) -> None:
        """Free the places of jobs that have ended."""
        if job_ids:
            self.client.update_item(
                TableName=self.table_name,
                Key={"counter": {"S": IN_FLIGHT_KEY}},
                UpdateExpression="DELETE holders :jobs",
                ExpressionAttributeValues={":jobs": {"SS": sorted(job_ids)}},
            )
