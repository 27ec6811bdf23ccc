"""The tasks table: one row per job, and every change of its state a named, conditional write.

    (no row) ──hold──► HELD (a cap refused it: nothing reserved or paid) ──start──┐
    (no row) ──start──► SUBMITTING ──submitted──► PENDING ──end──► COMPLETED | FAILED | TIMED_OUT
        │                   │  └──settle──► FAILED | UNKNOWN            ▲  (reschedule,
        └──reject──► FAILED └──release──► (no row, or as it was)       │   record_check ...)
    ended, notified ──restart──► SUBMITTING (the owner's resubmission)  │
    ended, notified ──hold_resubmit──► (its resubmission waits in line) ──restart──►
    ended ──mark_notified──► leaves the due index, expires (TTL)        claim (a poll run's lease)
    ended ──webhook_queued──► webhook pending ──webhook_attempted──► delivered | refused | given up

Rows that still need work (a task to poll, a submission to settle, a notification to
send) carry `open_shard` and `due_at`; those two keys make up the sparse index
`open-by-due`, so a poll reads only due rows and never scans the table. Held rows wait
in their tenants' lines (the index `line-by-tenant`: line.py); those with a Step
Functions task, and those an earlier version held, carry the shard `HELD` as well, so
the heartbeats read them without a scan either.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import Cap
from .caps import Reservation, day_of
from .endings import CHARGED, MAYBE_CHARGED, ending_fields
from .follow_rows import FollowWrites
from .holds import LINE_AND_HOLD_FIELDS, HoldWrites
from .items import (
    Fields,
    Value,
    item_of,
    to_attr,
    transact,
)
from .monthly import MonthlySpend
from .rows import (
    DEFAULT_TENANT,
    RESUBMITTABLE,
    JobState,
    Price,
    Row,
)
from .spend import Tally
from .table_base import OPEN_SHARD
from .table_reads import TableReads
from .webhook_rows import WebhookWrites


@dataclass(frozen=True)
class Started:
    """The row is written with its reservation: this attempt may pay for the job."""

    attempt: str
    day: str  # whose daily cap it counts against
    tenant: str | None = None  # whose own daily cap it counts against too, if any
    monthly: MonthlySpend | None = None  # what it took of its tenant's monthly budget


@dataclass(frozen=True)
class AlreadyKnown:
    """The job has a row already (or may not be restarted): nothing more may be paid."""


@dataclass(frozen=True)
class CapReached:
    """A spending cap refused the reservation: nothing was written."""

    cap: Cap


StartResult = Started | AlreadyKnown | CapReached


def _price_fields(price: Price | None) -> dict[str, Value]:
    return {"price_credits": price.credits, "price_usd": price.usd} if price else {}


class TaskTable(TableReads, FollowWrites, HoldWrites, WebhookWrites):
    """Data access for the tasks table: every change of a job's state (following a
    task's in follow_rows.py, held jobs' in holds.py, webhooks' in webhook_rows.py, the
    shared update in table_base.py) and its reads (table_reads.py)."""

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
        request_id: str | None = None,
    ) -> StartResult:
        """Write the SUBMITTING row, with its reservation, before any money is spent.

        AlreadyKnown when the job already has a row (a redelivery or a duplicate event)
        other than a HELD one asking for this very `request_json`, which this replaces
        (`created_at`: when it was first held): another request never takes a held row.
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
                "request_id": request_id,
                **_price_fields(price),
            }
        )
        put: dict[str, Any] = {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(job_id)"
                " OR (#state = :held AND request_json = :request_json)",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {
                    ":held": to_attr(JobState.HELD.value),
                    ":request_json": to_attr(request_json),
                },
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
                    f" download_failures, {', '.join(LINE_AND_HOLD_FIELDS)}"
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

    def _start(self, write: dict[str, Any], attempt: str, reservation: Reservation) -> StartResult:
        refused = transact(self.client, [write, *reservation.writes()])
        if refused is None:
            caps = reservation.tenant_caps
            tenant = caps.tenant if caps else None
            return Started(attempt, reservation.day, tenant, reservation.monthly)
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
            **CHARGED,
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
            **ending_fields(state, now, error, None, held_until=now + lease_seconds),
            **(MAYBE_CHARGED if state is JobState.UNKNOWN else {}),
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
        request_json: str | None = None,
        request_id: str | None = None,
    ) -> Row | None:
        """A job whose input is unusable: FAILED from the start (`request_json`: what of
        its request is kept, the Step Functions task waiting for it); the submit function
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
                "request_json": request_json,
                "request_id": request_id,
                **ending_fields(JobState.FAILED, now, error, None, held_until=now + lease_seconds),
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

    # --- plumbing --------------------------------------------------------------------
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
