"""The pace of status checks, kept in the spending table beside the caps.

- `status#<window>` counts the status checks of one 4-second window (`calls`), for
  every poll run at once: a check is made only if its window has room, so the API never
  hears more than STATUS_CHECKS_PER_MINUTE of them from this stack in any 60 seconds,
  and many songs in flight spread their checks over the minute instead of bursting. A 429
  fills the next windows halfway (once each): the pace drops for a while.
- `poll-watch` says until when a poll run is watching (`until`), so that a submission
  wakes a run only when nobody watches;
- `song-times#<model>` holds the seconds from submission to song of that model's recent
  songs (`recent`, a map of at most SONG_TIMES_KEPT slots; a job always writes the same
  slot, so writing a song twice counts it once).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .caps import counter_key
from .items import number, to_attr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW_SECONDS = 4
# Any 60 s, aligned or not, touches at most this many windows: each gets that share, so
# no 60 s ever holds more than the budget.
WINDOWS_IN_ANY_MINUTE = 60 // WINDOW_SECONDS + 1
# After a 429, this long at half the pace.
SLOW_DOWN_SECONDS = 120
WINDOW_ITEM_TTL_SECONDS = 3600
SONG_TIMES_KEPT = 50


@dataclass(frozen=True)
class StatusBudget:
    """STATUS_CHECKS_PER_MINUTE, shared by every task and every poll run."""

    client: DynamoDBClient
    table_name: str
    per_minute: int

    @property
    def per_window(self) -> int:
        return max(1, self.per_minute // WINDOWS_IN_ANY_MINUTE)

    @staticmethod
    def window_of(now: float) -> int:
        return math.floor(now / WINDOW_SECONDS)

    @staticmethod
    def next_window(now: float) -> float:
        """When the window after the current one opens."""
        return (math.floor(now / WINDOW_SECONDS) + 1) * WINDOW_SECONDS

    def take(self, now: float) -> bool:
        """Room for one status check now; False when this window's share is spent."""
        window = self.window_of(now)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=counter_key(f"status#{window}"),
                UpdateExpression="ADD calls :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(calls) OR calls < :cap",
                ExpressionAttributeValues={
                    ":one": to_attr(1),
                    ":cap": to_attr(self.per_window),
                    ":expires": to_attr(window * WINDOW_SECONDS + WINDOW_ITEM_TTL_SECONDS),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def slow_down(self, now: float) -> None:
        """The API said 429: take half of each coming window's share for a while.

        A window is halved once, however many 429s come: the pace drops, it never stops.
        """
        half = max(1, self.per_window // 2)
        first = self.window_of(now)
        for window in range(first, first + SLOW_DOWN_SECONDS // WINDOW_SECONDS):
            with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=counter_key(f"status#{window}"),
                    UpdateExpression="ADD calls :half SET slowed = :yes, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(slowed)",
                    ExpressionAttributeValues={
                        ":half": to_attr(half),
                        ":yes": to_attr(True),
                        ":expires": to_attr(window * WINDOW_SECONDS + WINDOW_ITEM_TTL_SECONDS),
                    },
                )


@dataclass(frozen=True)
class SongTimes:
    """How long each model's recent songs took, from submission to saved song."""

    client: DynamoDBClient
    table_name: str

    def recent(self, model: str) -> list[float]:
        item = self.client.get_item(
            TableName=self.table_name,
            Key=counter_key(f"song-times#{model}"),
            ConsistentRead=False,
        ).get("Item", {})
        slots = item.get("recent", {}).get("M", {})
        return [float(value["N"]) for value in slots.values() if "N" in value]

    def record(self, model: str, job_id: str, seconds: float) -> None:
        """Keep one song's time in the job's slot (the map is made by the model's first song)."""
        slot = int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % SONG_TIMES_KEPT
        key = counter_key(f"song-times#{model}")
        set_slot = {
            "TableName": self.table_name,
            "Key": key,
            "UpdateExpression": "SET recent.#slot = :seconds",
            "ExpressionAttributeNames": {"#slot": str(slot)},
            "ExpressionAttributeValues": {":seconds": to_attr(float(seconds))},
        }
        try:
            self.client.update_item(**set_slot)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET recent = if_not_exists(recent, :empty)",
                ExpressionAttributeValues={":empty": {"M": {}}},
            )
            self.client.update_item(**set_slot)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PollWatch:
    """Until when a poll run is watching (`poll-watch`, `until`): a submission made while
    nobody watches wakes a run instead of waiting for the next scheduled one."""

    client: DynamoDBClient
    table_name: str

    def until(self) -> float:
        """The end of the longest watch under way; 0 when nobody has watched yet."""
        item = self.client.get_item(
            TableName=self.table_name, Key=counter_key("poll-watch"), ConsistentRead=True
        ).get("Item", {})
        return number(item, "until") or 0.0

    def hold(self, until: float) -> None:
        """Say a run watches until then (a longer watch already under way stays)."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=counter_key("poll-watch"),
                UpdateExpression="SET #until = :until",
                ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":until": to_attr(until)},
            )

    def release(self, held: float, now: float) -> None:
        """A run that held the watch until `held` stops early: nobody watches any more."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=counter_key("poll-watch"),
                UpdateExpression="SET #until = :now",
                ConditionExpression="#until = :held",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": to_attr(now), ":held": to_attr(held)},
            )
