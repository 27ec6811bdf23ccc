"""The tasks table: one row per job, every state change a conditional write.

Rows that still need work (a task to poll, a submission to settle, a notification to
send) carry `open_shard` and `due_at`; those two keys make up the sparse index
`open-by-due`, so a poll reads only due rows and never scans the table.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DUE_INDEX = "open-by-due"
CONFLICT_ATTEMPTS = 5
OPEN_SHARD = "OPEN"

# Plain attributes to set on a row; None removes the attribute.
Fields = dict[str, str | float | int | bool | None]


class TransactionRefused(Exception):
    """A write made with other items (`also`) was refused because of those items.

    `failed` holds their positions in `also`.
    """

    def __init__(self, failed: list[int]) -> None:
        super().__init__(f"refused by transaction item(s) {failed}")
        self.failed = failed


class JobState(StrEnum):
    SUBMITTING = "SUBMITTING"  # the row is written; the API call is under way
    PENDING = "PENDING"  # the API took it; the poll function follows it
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UNKNOWN = "UNKNOWN"  # the submission may or may not have reached the API

    @property
    def terminal(self) -> bool:
        return self not in (JobState.SUBMITTING, JobState.PENDING)


# Ended without a song: the states an owner may resubmit from (README: Resubmitting a job).
RESUBMITTABLE = (JobState.UNKNOWN, JobState.FAILED, JobState.TIMED_OUT)


@dataclass(frozen=True)
class Row:
    """A task row as the functions use it."""

    job_id: str
    state: JobState
    source: str
    source_name: str
    created_at: float
    due_at: float | None = None
    request_json: str | None = None
    model: str | None = None
    task_id: str | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    polls: int = 0
    bad_bodies: int = 0
    error: str | None = None
    song_key: str | None = None
    song_bytes: int | None = None
    duration_seconds: float | None = None
    notified: bool = False
    attempt: str | None = None
    previous_state: JobState | None = None
    resubmits: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Row:
        def s(name: str) -> str | None:
            value = item.get(name)
            return value["S"] if value and "S" in value else None

        def n(name: str) -> float | None:
            value = item.get(name)
            return float(value["N"]) if value and "N" in value else None

        return cls(
            job_id=item["job_id"]["S"],
            state=JobState(item["state"]["S"]),
            source=s("source") or "",
            source_name=s("source_name") or "",
            created_at=n("created_at") or 0.0,
            due_at=n("due_at"),
            request_json=s("request_json"),
            model=s("model"),
            task_id=s("task_id"),
            submitted_at=n("submitted_at"),
            finished_at=n("finished_at"),
            polls=int(n("polls") or 0),
            bad_bodies=int(n("bad_bodies") or 0),
            error=s("error"),
            song_key=s("song_key"),
            song_bytes=int(b) if (b := n("song_bytes")) is not None else None,
            duration_seconds=n("duration_seconds"),
            notified=bool(item.get("notified", {}).get("BOOL", False)),
            attempt=s("attempt"),
            previous_state=JobState(p) if (p := s("previous_state")) else None,
            resubmits=int(n("resubmits") or 0),
        )


def _n(value: float) -> dict[str, str]:
    return {"N": str(value) if isinstance(value, int) else f"{value:.3f}"}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _values(
    fields: Fields,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET/REMOVE clauses for plain fields; None removes the attribute."""
    sets: list[str] = []
    removes: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        elif isinstance(value, bool):
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = {"BOOL": value}
        elif isinstance(value, int | float):
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = _n(value)
        else:
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = _s(value)
    clause = ("SET " + ", ".join(sets) if sets else "") + (
        " REMOVE " + ", ".join(removes) if removes else ""
    )
    return clause.strip(), names, values


class TaskTable:
    """Data access for the tasks table; takes its client, holds no other state."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def get(self, job_id: str) -> Row | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"job_id": _s(job_id)}, ConsistentRead=True
        ).get("Item")
        return Row.from_item(item) if item else None

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _write_with(self, write: dict[str, Any], also: list[dict[str, Any]]) -> bool:
        """One conditional write (`{"Put": ...}` or `{"Update": ...}`) and `also`, all or none.

        False when the write's own condition failed (it wins over the others);
        TransactionRefused when only items of `also` did. A transaction that met another
        one on the same item (every submission updates the caps' two items) is tried
        again a few times, after a short random wait.
        """
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self.client.transact_write_items(TransactItems=[write, *also])  # type: ignore[list-item]
            except self.client.exceptions.TransactionCanceledException as exc:
                codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                if failed:
                    if failed[0] == 0:
                        return False
                    raise TransactionRefused([i - 1 for i in failed]) from None
                if "TransactionConflict" not in codes or attempt == CONFLICT_ATTEMPTS:
                    raise  # throttling or a lasting conflict: the message is retried later
                time.sleep(random.uniform(0.02, 0.1) * attempt)  # noqa: S311 - jitter
            else:
                return True
        raise AssertionError("unreachable")  # pragma: no cover

    def in_flight(self, job_ids: set[str]) -> set[str]:
        """Those of the jobs whose rows say they are still being submitted or made.

        A job whose row could not be read is counted as in flight (the safe side).
        """
        keys = [{"job_id": _s(job_id)} for job_id in sorted(job_ids)]
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
                if not JobState(item["state"]["S"]).terminal:
                    running.add(item["job_id"]["S"])
            unread = response.get("UnprocessedKeys", {}).get(self.table_name)
            if unread:
                running.update(key["job_id"]["S"] for key in unread["Keys"])
        return running

    def start_submission(
        self,
        job_id: str,
        *,
        source: str,
        source_name: str,
        request_json: str,
        model: str,
        now: float,
        lease_seconds: float,
        also: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """Write the SUBMITTING row before any money is spent.

        Returns the attempt token, or None when the job already has a row (a redelivery or
        a duplicate event): then nothing more may be paid for it. The row is due when its
        lease ends, so a submission cut short by a crash is settled by the poll function.
        `also` (the spending caps' items) is written in the same transaction.
        """
        attempt = uuid.uuid4().hex
        item = {
            "job_id": _s(job_id),
            "state": _s(JobState.SUBMITTING.value),
            "source": _s(source),
            "source_name": _s(source_name),
            "request_json": _s(request_json),
            "model": _s(model),
            "attempt": _s(attempt),
            "created_at": _n(now),
            "open_shard": _s(OPEN_SHARD),
            "due_at": _n(now + lease_seconds),
        }
        put = {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(job_id)",
            }
        }
        created = self._write_with(put, also) if also else self._put_new(item)
        return attempt if created else None

    def release_submission(self, job_id: str, attempt: str) -> bool:
        """Undo a submission the API surely refused, so a redelivery may try again.

        A first submission's row is deleted; a resubmission's row goes back to the state
        it had, as it was before the resubmit message came.
        """
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"job_id": _s(job_id)},
                ConditionExpression="#state = :submitting AND attempt = :attempt"
                " AND attribute_not_exists(previous_state)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":submitting": _s(JobState.SUBMITTING.value),
                    ":attempt": _s(attempt),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            row = self.get(job_id)
            if row is None or row.previous_state is None:
                return False
            return self._update_submitting(
                job_id,
                attempt,
                {
                    "state": row.previous_state.value,
                    "previous_state": None,
                    "notified": True,
                    "open_shard": None,
                    "due_at": None,
                },
            )
        return True

    def start_resubmission(
        self,
        job_id: str,
        now: float,
        lease_seconds: float,
        also: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """Take an ended, notified job back to SUBMITTING for the owner's explicit resubmit.

        Returns the new attempt token, or None when the job is not in a state that may be
        resubmitted (running, completed, or its last notification not out yet). `also` is
        written in the same transaction.
        """
        attempt = uuid.uuid4().hex
        resubmittable = {
            f":ended_{state.value.lower()}": _s(state.value) for state in RESUBMITTABLE
        }
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"job_id": _s(job_id)},
            "UpdateExpression": (
                "SET previous_state = #state, #state = :submitting, attempt = :attempt,"
                " open_shard = :open, due_at = :lease, polls = :zero, bad_bodies = :zero,"
                " resubmits = if_not_exists(resubmits, :zero) + :one, notified = :no"
                " REMOVE task_id, #error, finished_at, submitted_at, song_key, song_bytes,"
                " duration_seconds, api_status, expires_at"
            ),
            "ConditionExpression": (
                f"#state IN ({', '.join(resubmittable)}) AND notified = :yes"
                " AND attribute_exists(request_json)"
            ),
            "ExpressionAttributeNames": {"#state": "state", "#error": "error"},
            "ExpressionAttributeValues": {
                ":submitting": _s(JobState.SUBMITTING.value),
                ":attempt": _s(attempt),
                ":open": _s(OPEN_SHARD),
                ":lease": _n(now + lease_seconds),
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":no": {"BOOL": False},
                ":yes": {"BOOL": True},
                **resubmittable,
            },
        }
        if also:
            return attempt if self._write_with({"Update": update}, also) else None
        try:
            self.client.update_item(**update)
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return attempt

    def mark_pending(
        self, job_id: str, attempt: str, task_id: str, now: float, first_due: float
    ) -> bool:
        """The API took the job: from now on the poll function follows its task."""
        fields: Fields = {
            "state": JobState.PENDING.value,
            "task_id": task_id,
            "submitted_at": now,
            "previous_state": None,
            "due_at": first_due,
        }
        return self._update_submitting(job_id, attempt, fields)

    def settle_submission(
        self, job_id: str, attempt: str, state: JobState, *, error: str, now: float
    ) -> bool:
        """End a submission that cannot go on (refused, or outcome unknown).

        The row stays due until its notification has gone out.
        """
        fields: Fields = {
            "state": state.value,
            "error": error,
            "finished_at": now,
            "notified": False,
            "previous_state": None,
            "due_at": now,
        }
        return self._update_submitting(job_id, attempt, fields)

    def _update_submitting(self, job_id: str, attempt: str, fields: Fields) -> bool:
        """Change a SUBMITTING row, only if it is still the one this attempt wrote."""
        return self._update(
            job_id,
            fields,
            condition="#state = :expected AND attempt = :attempt",
            extra_values={":expected": _s(JobState.SUBMITTING.value), ":attempt": _s(attempt)},
        )

    def record_rejected(
        self, job_id: str, *, source: str, source_name: str, error: str, now: float
    ) -> bool:
        """A job whose input is unusable: FAILED from the start, due now for its notification."""
        return self._put_new(
            {
                "job_id": _s(job_id),
                "state": _s(JobState.FAILED.value),
                "source": _s(source),
                "source_name": _s(source_name),
                "error": _s(error),
                "created_at": _n(now),
                "finished_at": _n(now),
                "notified": {"BOOL": False},
                "open_shard": _s(OPEN_SHARD),
                "due_at": _n(now),
            }
        )

    def due(
        self, now: float, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, float]], dict[str, Any] | None]:
        """One page of (job_id, due_at) from the sparse index, earliest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DUE_INDEX,
            "KeyConditionExpression": "open_shard = :open AND due_at <= :now",
            "ExpressionAttributeValues": {":open": _s(OPEN_SHARD), ":now": _n(now)},
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        page = self.client.query(**kwargs)
        rows = [(i["job_id"]["S"], float(i["due_at"]["N"])) for i in page.get("Items", [])]
        return rows, page.get("LastEvaluatedKey")

    def claim(self, job_id: str, seen_due_at: float, lease_until: float) -> Row | None:
        """Take a due row for this run by moving its due time past the lease.

        Fails (None) when another run took it first or it changed since it was read.
        """
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": _s(job_id)},
                UpdateExpression="SET due_at = :lease",
                ConditionExpression="due_at = :seen",
                ExpressionAttributeValues={":lease": _n(lease_until), ":seen": _n(seen_due_at)},
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return Row.from_item(response["Attributes"])

    def update_claimed(self, row: Row, fields: Fields) -> bool:
        """Change a row this run holds (its due_at is still our lease)."""
        assert row.due_at is not None
        return self._update(
            row.job_id,
            fields,
            condition="due_at = :held",
            extra_values={":held": _n(row.due_at)},
        )

    def mark_notified(self, job_id: str, expires_at: float) -> bool:
        """The last write of a job: it leaves the index and expires later (TTL)."""
        return self._update(
            job_id,
            {"notified": True, "open_shard": None, "due_at": None, "expires_at": int(expires_at)},
            condition="attribute_exists(job_id)",
        )

    def _update(
        self,
        job_id: str,
        fields: Fields,
        *,
        condition: str,
        extra_values: dict[str, Any] | None = None,
    ) -> bool:
        clause, names, values = _values(fields)
        if "#state" in condition:
            names["#state"] = "state"
        values.update(extra_values or {})
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"job_id": _s(job_id)},
            "UpdateExpression": clause,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
