"""The tasks table: one row per job, and every change of its state a named, conditional write.

    (no row) ──hold──► HELD (a cap refused it: nothing reserved or paid) ──start──┐
    (no row) ──start──► SUBMITTING ──submitted──► PENDING ──end──► COMPLETED | FAILED | TIMED_OUT
        │                   │  └──settle──► FAILED | UNKNOWN            ▲  (reschedule,
        └──reject──► FAILED └──release──► (no row, or as it was)       │   record_check ...)
    ended, notified ──restart──► SUBMITTING (the owner's resubmission)  │
    ended, notified ──hold_resubmit──► (its resubmission waits for a cap) ──restart──►
    ended ──mark_notified──► leaves the due index, expires (TTL)        claim (a poll run's lease)
    ended ──webhook_queued──► webhook pending ──webhook_attempted──► delivered | refused | given up

Rows that still need work (a task to poll, a submission to settle, a notification to
send) carry `open_shard` and `due_at`; those two keys make up the sparse index
`open-by-due`, so a poll reads only due rows and never scans the table. Held rows carry
the shard `HELD` instead, so the held jobs are read without a scan either.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Cap
from .caps import Reservation, day_of
from .items import (
    AddAttribute,
    AppendEntry,
    Fields,
    Item,
    Value,
    item_of,
    key_text,
    number,
    to_attr,
    transact,
    update_clause,
    updated,
)
from .rows import (
    DEFAULT_TENANT,
    RESUBMITTABLE,
    Hold,
    JobState,
    Price,
    Row,
    Song,
    Webhook,
    WebhookState,
)
from .spend import Tally

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DUE_INDEX = "open-by-due"
OPEN_SHARD = "OPEN"
# Held jobs (and held resubmissions) sit in the same index under a shard of their own,
# keyed by when they are tried again: a poll never reads them, `held()` reads only them.
HELD_SHARD = "HELD"


@dataclass(frozen=True)
class Started:
    """The row is written with its reservation: this attempt may pay for the job."""

    attempt: str
    day: str  # whose daily cap it counts against
    tenant: str | None = None  # whose own daily cap it counts against too, if any


@dataclass(frozen=True)
class AlreadyKnown:
    """The job has a row already (or may not be restarted): nothing more may be paid."""


@dataclass(frozen=True)
class CapReached:
    """A spending cap refused the reservation: nothing was written."""

    cap: Cap


StartResult = Started | AlreadyKnown | CapReached


@dataclass(frozen=True)
class WebhookAttempt:
    """What one attempt to deliver a webhook came to."""

    state: WebhookState  # PENDING: it failed and is tried again about `next_at`
    answer: str
    at: float
    next_at: float | None = None
    seconds: float = 0.0  # how long the POST took


# A submission the API took is charged at the price recorded with it; one whose outcome
# is unknown may have been (docs/producers.md).
_CHARGED: Fields = {
    "spent_credits": AddAttribute("price_credits"),
    "spent_usd": AddAttribute("price_usd"),
}
_MAYBE_CHARGED: Fields = {
    "maybe_credits": AddAttribute("price_credits"),
    "maybe_usd": AddAttribute("price_usd"),
}


def _end_tallies(row: Row, state: JobState, now: float) -> list[Tally]:
    """What the end of a task counts: the ending, today; the charge of its submission
    if the API took it (it has a task), on the day it was submitted; or the doubt of a
    submission cut short (UNKNOWN)."""
    maybe = row.price if state is JobState.UNKNOWN else None
    ending = Tally(day_of(now), row.tenant, row.model, maybe=maybe, job_id=row.job_id, ended=state)
    if not (row.task_id and row.price):
        return [ending]
    charge_day = day_of(row.submitted_at or now)
    if charge_day == ending.day:
        return [dataclasses.replace(ending, charged=row.price)]
    return [ending, Tally(charge_day, row.tenant, row.model, charged=row.price)]


_HOLD_FIELDS = "held_cap, held_reason, held_until, held_since, held_token"


def _hold_fields(hold: Hold) -> Fields:
    return {
        "open_shard": HELD_SHARD,
        "due_at": hold.until,
        "held_cap": hold.cap,
        "held_reason": hold.reason,
        "held_until": hold.until,
        "held_since": hold.since,
        "held_token": hold.token,
    }


def _price_fields(price: Price | None) -> dict[str, Value]:
    return {"price_credits": price.credits, "price_usd": price.usd} if price else {}


def _ending(
    state: JobState, now: float, error: str | None, song: Song | None, *, held_until: float
) -> dict[str, Value]:
    """What every end of a job writes. It stays in the due index until its notification
    is out, held by whoever ended it until `held_until`: only if that one dies before
    announcing it does a poll run announce it then (never both at once)."""
    return {
        "state": state.value,
        "finished_at": now,
        "error": error,
        "song_key": song.key if song else None,
        "song_bytes": song.size if song else None,
        "duration_seconds": song.duration_seconds if song else None,
        "sample_rate": song.sample_rate if song else None,
        "bitrate": song.bitrate if song else None,
        "notified": False,
        "previous_state": None,  # a resubmission, if this was one, is over
        "due_at": held_until,
    }


class TaskTable:
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

    # --- reading ---------------------------------------------------------------------
    def get(self, job_id: str) -> Row | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(job_id), ConsistentRead=True
        ).get("Item")
        return Row.from_item(item) if item else None

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
        keys = [self._key(job_id) for job_id in sorted(job_ids)]
        running: set[str] = set()
        for start in range(0, len(keys), 100):
            response = self.client.batch_get_item(
                RequestItems={
                    self.table_name: {
                        "Keys": keys[start : start + 100],
                        "ProjectionExpression": "job_id, #state",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ConsistentRead": True,
                    }
                }
            )
            for item in response["Responses"].get(self.table_name, []):
                if not JobState(key_text(item, "state")).terminal:
                    running.add(key_text(item, "job_id"))
            unread = response.get("UnprocessedKeys", {}).get(self.table_name)
            if unread:
                running.update(key_text(key, "job_id") for key in unread["Keys"])
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

    def held(self) -> list[Row]:
        """Every job a cap holds (HELD, or its resubmission held), from the index's HELD
        shard; a few reads, whatever the table holds."""
        keys: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "open_shard = :held",
            "ExpressionAttributeValues": {":held": to_attr(HELD_SHARD)},
        }
        for page in self.client.get_paginator("query").paginate(**kwargs):
            keys += [self._key(key_text(item, "job_id")) for item in page.get("Items", [])]
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
        return [row for row in rows if row.hold is not None]

    # --- submitting ------------------------------------------------------------------
    def start(
        self,
        job_id: str,
        *,
        source: str,
        source_name: str,
        request_json: str,
        model: str,
        now: float,
        lease_seconds: float,
        reservation: Reservation | None,
        tenant: str = DEFAULT_TENANT,
        price: Price | None = None,
        callback_url: str | None = None,
        created_at: float | None = None,
    ) -> StartResult:
        """Write the SUBMITTING row, with its reservation, before any money is spent.

        AlreadyKnown when the job already has a row (a redelivery or a duplicate event)
        other than a HELD one, which this replaces (`created_at`: when it was first held).
        The row is due when its lease ends, so a submission cut short by a crash is
        settled by the poll function. Without a reservation the row is written alone,
        outside the caps: for tools that seed rows, never for a submission.
        """
        attempt = uuid.uuid4().hex
        item = item_of(
            {
                "job_id": job_id,
                "state": JobState.SUBMITTING.value,
                "source": source,
                "source_name": source_name,
                "request_json": request_json,
                "model": model,
                "attempt": attempt,
                "created_at": now if created_at is None else created_at,
                "open_shard": OPEN_SHARD,
                "due_at": now + lease_seconds,
                "tenant": tenant,
                "callback_url": callback_url,
                **_price_fields(price),
            }
        )
        put: dict[str, Any] = {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(job_id) OR #state = :held",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":held": to_attr(JobState.HELD.value)},
            }
        }
        if reservation is None:
            return self._start_alone(put, attempt, now)
        return self._start(put, attempt, reservation)

    def _start_alone(self, put: dict[str, Any], attempt: str, now: float) -> StartResult:
        try:
            self.client.put_item(**put["Put"])
        except self.client.exceptions.ConditionalCheckFailedException:
            return AlreadyKnown()
        return Started(attempt, day_of(now))

    def restart(
        self,
        job_id: str,
        *,
        now: float,
        lease_seconds: float,
        reservation: Reservation,
        max_resubmits: int,
        price: Price | None = None,
    ) -> StartResult:
        """Take an ended, notified job back to SUBMITTING for the owner's explicit resubmit.

        AlreadyKnown when the job is not in a state that may be resubmitted (running,
        completed, its last notification not out yet, or resubmitted `max_resubmits`
        times already).
        """
        attempt = uuid.uuid4().hex
        resubmittable = {
            f":ended_{state.value.lower()}": to_attr(state.value) for state in RESUBMITTABLE
        }
        priced = ", price_credits = :price_credits, price_usd = :price_usd" if price else ""
        prices = (
            {":price_credits": to_attr(price.credits), ":price_usd": to_attr(price.usd)}
            if price
            else {}
        )
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(job_id),
                "UpdateExpression": (
                    "SET previous_state = #state, #state = :submitting, attempt = :attempt,"
                    " open_shard = :open, due_at = :lease, polls = :zero, bad_bodies = :zero,"
                    " resubmits = if_not_exists(resubmits, :zero) + :one, notified = :no"
                    f"{priced}"
                    " REMOVE task_id, #error, finished_at, submitted_at, song_key, song_bytes,"
                    " duration_seconds, sample_rate, bitrate, api_status, expires_at,"
                    f" download_failures, {_HOLD_FIELDS}"
                ),
                "ConditionExpression": (
                    f"#state IN ({', '.join(resubmittable)}) AND notified = :yes"
                    " AND attribute_exists(request_json)"
                    " AND (attribute_not_exists(resubmits) OR resubmits < :most)"
                ),
                "ExpressionAttributeNames": {"#state": "state", "#error": "error"},
                "ExpressionAttributeValues": {
                    ":submitting": to_attr(JobState.SUBMITTING.value),
                    ":attempt": to_attr(attempt),
                    ":open": to_attr(OPEN_SHARD),
                    ":lease": to_attr(now + lease_seconds),
                    ":zero": to_attr(0),
                    ":one": to_attr(1),
                    ":no": to_attr(False),
                    ":yes": to_attr(True),
                    ":most": to_attr(max_resubmits),
                    **resubmittable,
                    **prices,
                },
            }
        }
        return self._start(update, attempt, reservation)

    def hold(
        self,
        job_id: str,
        hold: Hold,
        *,
        source: str,
        source_name: str,
        request_json: str,
        model: str,
        tenant: str,
        callback_url: str | None,
    ) -> bool:
        """Write (or refresh) the HELD row of a new job a cap refused: what it asks for,
        why it waits and till when. Nothing is reserved, paid or counted; its first
        refusal stays its `created_at`. False when the job has a row in another state
        (a redelivery found it started meanwhile)."""
        fields: Fields = {
            "state": JobState.HELD.value,
            "source": source,
            "source_name": source_name,
            "request_json": request_json,
            "model": model,
            "tenant": tenant,
            "callback_url": callback_url,
            **_hold_fields(hold),
        }
        return self._set_hold(
            job_id,
            fields,
            hold.since,
            condition="attribute_not_exists(job_id) OR #state = :held",
            values={":held": to_attr(JobState.HELD.value)},
        )

    def hold_resubmit(self, job_id: str, hold: Hold) -> bool:
        """Record that the owner's resubmission of an ended, notified job waits for a cap
        (the row does not expire meanwhile); `restart` clears it. False when the job may
        not be resubmitted."""
        resubmittable = {
            f":ended_{state.value.lower()}": to_attr(state.value) for state in RESUBMITTABLE
        }
        return self._set_hold(
            job_id,
            _hold_fields(hold),
            hold.since,
            condition=f"#state IN ({', '.join(resubmittable)}) AND notified = :yes",
            values={":yes": to_attr(True), **resubmittable},
            remove="expires_at",
        )

    def _set_hold(
        self,
        job_id: str,
        fields: Fields,
        since: float,
        *,
        condition: str,
        values: Item,
        remove: str | None = None,
    ) -> bool:
        """SET `fields` (None ones left out), and `held_since` (with `state`, `created_at`
        too) unless the row has them already; REMOVE `remove`."""
        clause, names, more = update_clause(
            {k: v for k, v in fields.items() if v is not None and k != "held_since"}
        )
        firsts = ["held_since"] + (["created_at"] if "state" in fields else [])
        clause += "".join(f", {name} = if_not_exists({name}, :since)" for name in firsts)
        clause += f" REMOVE {remove}" if remove else ""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression=clause,
                ConditionExpression=condition,
                ExpressionAttributeNames={**names, "#state": "state"},
                ExpressionAttributeValues={**more, **values, ":since": to_attr(since)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _start(self, write: dict[str, Any], attempt: str, reservation: Reservation) -> StartResult:
        refused = transact(self.client, [write, *reservation.writes()])
        if refused is None:
            caps = reservation.tenant_caps
            return Started(attempt, reservation.day, caps.tenant if caps else None)
        if refused == 0:  # the row's own condition wins over the caps'
            return AlreadyKnown()
        return CapReached(reservation.caps[refused - 1])

    def release(self, job_id: str, attempt: str) -> bool:
        """Undo a submission the API surely refused, so a redelivery may try again.

        A first submission's row is deleted; a resubmission's row goes back to the state
        it had, as it was before the resubmit message came.
        """
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                ConditionExpression="#state = :submitting AND attempt = :attempt"
                " AND attribute_not_exists(previous_state)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":submitting": to_attr(JobState.SUBMITTING.value),
                    ":attempt": to_attr(attempt),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            row = self.get(job_id)
            if row is None or row.previous_state is None:
                return False
            fields: Fields = {
                "state": row.previous_state.value,
                "previous_state": None,
                "resubmits": row.resubmits - 1,  # the ending it goes back to keeps its number
                "notified": True,
                "open_shard": None,
                "due_at": None,
            }
            return self._update_submitting(job_id, attempt, fields) is not None
        return True

    def submitted(
        self,
        job_id: str,
        attempt: str,
        *,
        task_id: str,
        now: float,
        first_due: float,
    ) -> bool:
        """The API took the job, and charged for it: from now on the poll function
        follows its task. The spend counters count the charge when the task ends (`end`),
        on the day it was submitted: one transaction fewer on the way in."""
        fields: Fields = {
            "state": JobState.PENDING.value,
            "task_id": task_id,
            "submitted_at": now,
            "previous_state": None,
            "due_at": first_due,
            **_CHARGED,
        }
        return self._update_submitting(job_id, attempt, fields) is not None

    def settle(
        self,
        job_id: str,
        attempt: str,
        state: JobState,
        *,
        error: str,
        now: float,
        lease_seconds: float,
        tenant: str = DEFAULT_TENANT,
        model: str | None = None,
        price: Price | None = None,
    ) -> Row | None:
        """End a submission that cannot go on (refused, or outcome unknown); the submit
        function announces it, and holds it for `lease_seconds` to do so.

        Returns the ended row, or None when this attempt no longer holds it.
        """
        ending: Fields = {
            **_ending(state, now, error, None, held_until=now + lease_seconds),
            **(_MAYBE_CHARGED if state is JobState.UNKNOWN else {}),
        }
        maybe = price if state is JobState.UNKNOWN else None
        tally = Tally(day_of(now), tenant, model, maybe=maybe, job_id=job_id, ended=state)
        return self._update_submitting(job_id, attempt, ending, [tally])

    def reject(
        self,
        job_id: str,
        *,
        source: str,
        source_name: str,
        error: str,
        now: float,
        lease_seconds: float,
        tenant: str = DEFAULT_TENANT,
        callback_url: str | None = None,
    ) -> Row | None:
        """A job whose input is unusable: FAILED from the start; the submit function
        announces it (to `callback_url` too, when the request named a usable one), and
        holds it for `lease_seconds` to do so.

        None when the job already has a row.
        """
        item = item_of(
            {
                "job_id": job_id,
                "source": source,
                "source_name": source_name,
                "created_at": now,
                "open_shard": OPEN_SHARD,
                "tenant": tenant,
                "callback_url": callback_url,
                **_ending(JobState.FAILED, now, error, None, held_until=now + lease_seconds),
            }
        )
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(job_id)",
        }
        if self.spending_table is not None:
            tally = Tally(day_of(now), tenant, None, ended=JobState.FAILED)
            if transact(self.client, [{"Put": put}, *tally.writes(self.spending_table)]) == 0:
                return None
            return Row.from_item(item)
        try:
            self.client.put_item(**put)
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return Row.from_item(item)

    # --- following a task (a poll run holds the row by its lease) ---------------------
    def claim(self, job_id: str, seen_due_at: float, lease_until: float) -> Row | None:
        """Take a due row for this run by moving its due time past the lease.

        Fails (None) when another run took it first or it changed since it was read.
        """
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression="SET due_at = :lease",
                ConditionExpression="due_at = :seen",
                ExpressionAttributeValues={
                    ":lease": to_attr(lease_until),
                    ":seen": to_attr(seen_due_at),
                },
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return Row.from_item(response["Attributes"])

    def reschedule(self, row: Row, due_at: float) -> bool:
        """Look at a held row again at `due_at` (trouble on the way; nothing learned)."""
        return self._update_held(row, {"due_at": due_at}) is not None

    def record_check(self, row: Row, due_at: float, api_status: str) -> bool:
        """A status check found the song still being made: count it, look again at `due_at`."""
        fields: Fields = {
            "due_at": due_at,
            "polls": row.polls + 1,
            "bad_bodies": 0,
            "api_status": api_status,
        }
        return self._update_held(row, fields) is not None

    def record_unreadable(self, row: Row, due_at: float) -> bool:
        """A status answer could not be read: count it in a row, look again at `due_at`."""
        return (
            self._update_held(row, {"due_at": due_at, "bad_bodies": row.bad_bodies + 1}) is not None
        )

    def record_download_failure(self, row: Row, due_at: float) -> bool:
        """A download attempt failed: count it, try again at `due_at`."""
        fields: Fields = {"due_at": due_at, "download_failures": row.download_failures + 1}
        return self._update_held(row, fields) is not None

    def end(
        self,
        row: Row,
        state: JobState,
        *,
        now: float,
        error: str | None = None,
        song: Song | None = None,
    ) -> Row | None:
        """Record a held row's terminal state, still held by this run's lease for its
        announcement; None when the lease was lost meanwhile."""
        assert row.due_at is not None
        unknown = state is JobState.UNKNOWN
        ending: Fields = {
            **_ending(state, now, error, song, held_until=row.due_at),
            # Only a submission cut short ends UNKNOWN here: it may have been charged.
            **(_MAYBE_CHARGED if unknown else {}),
        }
        return self._update_held(row, ending, _end_tallies(row, state, now))

    def mark_notified(self, job_id: str, expires_at: float) -> bool:
        """The last write of a job: it leaves the index and expires later (TTL)."""
        fields: Fields = {
            "notified": True,
            "open_shard": None,
            "due_at": None,
            "expires_at": int(expires_at),
        }
        return self._update(job_id, fields, condition="attribute_exists(job_id)") is not None

    # --- webhooks (webhooks/queue.py) --------------------------------------------------
    def webhook_queued(self, job_id: str, delivery_id: str, now: float, body: str) -> bool:
        """Record a new webhook as pending, with the body it sends; False when this
        delivery was recorded before (a notice sent again after a crash), which is left
        as it is."""
        fields: Fields = {
            "webhook_id": delivery_id,
            "webhook_body": body,
            "webhook_state": WebhookState.PENDING.value,
            "webhook_queued_at": now,
            "webhook_attempts": 0,
            "webhook_answer": None,
            "webhook_ended_at": None,
            "webhook_next_at": None,
        }
        return (
            self._update(
                job_id,
                fields,
                condition="attribute_exists(job_id)"
                " AND (attribute_not_exists(webhook_id) OR webhook_id <> :delivery)",
                extra_values={":delivery": to_attr(delivery_id)},
            )
            is not None
        )

    def webhook_attempted(self, job_id: str, seen: Webhook, attempt: WebhookAttempt) -> Row | None:
        """Record one attempt of a pending webhook, as `seen` before it: None when another
        attempt was recorded meanwhile, or the webhook is no longer that one or pending."""
        fields: Fields = {
            "webhook_state": attempt.state.value,
            "webhook_attempts": seen.attempts + 1,
            "webhook_answer": attempt.answer,
            "webhook_ended_at": attempt.at if attempt.state.ended else None,
            "webhook_next_at": attempt.next_at,
            "webhook_log": AppendEntry(
                {
                    "delivery": seen.delivery_id,
                    "at": attempt.at,
                    "answer": attempt.answer,
                    "seconds": attempt.seconds,
                }
            ),
        }
        return self._update(
            job_id,
            fields,
            condition="webhook_id = :delivery AND webhook_state = :pending"
            " AND webhook_attempts = :seen",
            extra_values={
                ":delivery": to_attr(seen.delivery_id),
                ":pending": to_attr(WebhookState.PENDING.value),
                ":seen": to_attr(seen.attempts),
            },
        )

    def webhook_resent(self, job_id: str, delivery_id: str, now: float) -> Row | None:
        """Make an ended webhook pending again, for the operator's resend: the same
        delivery id and body, a new retry window from `now`; its attempts keep counting.
        None when the row holds no such ended webhook (pending, or another delivery)."""
        ended = {f":ended{i}": to_attr(s.value) for i, s in enumerate(WebhookState) if s.ended}
        fields: Fields = {
            "webhook_state": WebhookState.PENDING.value,
            "webhook_queued_at": now,
            "webhook_ended_at": None,
            "webhook_next_at": None,
        }
        return self._update(
            job_id,
            fields,
            condition=f"webhook_id = :delivery AND webhook_state IN ({', '.join(ended)})"
            " AND attribute_exists(webhook_body)",
            extra_values={":delivery": to_attr(delivery_id), **ended},
        )

    # --- plumbing --------------------------------------------------------------------
    @staticmethod
    def _key(job_id: str) -> Item:
        return item_of({"job_id": job_id})

    def _update_submitting(
        self, job_id: str, attempt: str, fields: Fields, tallies: list[Tally] | None = None
    ) -> Row | None:
        """Change a SUBMITTING row, only if it is still the one this attempt wrote."""
        return self._update(
            job_id,
            fields,
            condition="#state = :expected AND attempt = :attempt",
            extra_values={
                ":expected": to_attr(JobState.SUBMITTING.value),
                ":attempt": to_attr(attempt),
            },
            tallies=tallies,
        )

    def _update_held(
        self, row: Row, fields: Fields, tallies: list[Tally] | None = None
    ) -> Row | None:
        """Change a row this run holds (its due_at is still our lease)."""
        assert row.due_at is not None
        return self._update(
            row.job_id,
            fields,
            condition="due_at = :held",
            extra_values={":held": to_attr(row.due_at)},
            tallies=tallies,
            held=row,
        )

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
