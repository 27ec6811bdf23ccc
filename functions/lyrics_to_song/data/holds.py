"""Held jobs on the tasks table, each waiting in its tenant's line (line.py): a new job
(HELD), or an ended job whose resubmission waits (it keeps its ending meanwhile). Rows an
earlier version held wait in the due index's HELD shard for their reminders. Nothing is
reserved, paid or counted for them (docs/producers.md)."""

from __future__ import annotations

from collections.abc import Iterable

from .caps import day_of
from .endings import ending_fields
from .items import Fields, Item, to_attr, update_clause
from .line import LineReads
from .rows import RESUBMITTABLE, Hold, JobState, Row
from .spend import Tally
from .table_base import HELD_SHARD, OPEN_SHARD

HOLD_FIELDS = "held_cap, held_reason, held_until, held_since, held_token"
LINE_AND_HOLD_FIELDS = ("line_tenant", "line_at", *HOLD_FIELDS.split(", "))


class HoldWrites(LineReads):
    """The tasks table's writes and reads of held jobs."""

    def held(self, tenants: Iterable[str]) -> list[Row]:
        """Every job held: in the lines of `tenants` (those with jobs waiting), and from
        the due index's HELD shard the resubmissions held and the jobs an earlier version
        held; read whole."""
        waiting = [row for tenant in tenants for row in self.waiting(tenant)]
        seen = {row.job_id for row in waiting}
        rows = [r for r in self._shard_rows(HELD_SHARD) if r.job_id not in seen]
        return waiting + [row for row in rows if row.hold is not None]

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
        request_id: str | None = None,
        task_token: bool = False,
    ) -> bool:
        """Write (or refresh) the HELD row of a new job that waits in its tenant's line:
        what it asks for and why it waits. Nothing is reserved, paid or counted; its
        first wait stays its `created_at` and its place (`line_at`). With a `task_token`
        it sits in the due index's HELD shard too, where the heartbeats find it. False
        when the job has a row in another state (a redelivery found it started
        meanwhile), or a held one asking for another request."""
        fields: Fields = {
            "state": JobState.HELD.value,
            "source": source,
            "source_name": source_name,
            "request_json": request_json,
            "model": model,
            "tenant": tenant,
            "callback_url": callback_url,
            "request_id": request_id,
            "held_cap": hold.cap,
            "held_reason": hold.reason,
            "held_token": hold.token,
            "line_tenant": tenant,
            "held_since": hold.since,
        }
        removed = ["held_until"]
        if task_token:
            fields = {**fields, "open_shard": HELD_SHARD}
        else:
            removed += ["open_shard", "due_at"]
        return self._set_hold(
            job_id,
            fields,
            hold.since,
            condition="attribute_not_exists(job_id)"
            " OR (#state = :held AND request_json = :request_json)",
            values={":held": to_attr(JobState.HELD.value), ":request_json": to_attr(request_json)},
            remove=", ".join(removed),
            line=True,
        )

    def cancel(
        self,
        row: Row,
        *,
        reason: str,
        now: float,
        announce_by: float,
        state: JobState = JobState.CANCELLED,
    ) -> Row | None:
        """End a job that waits (HELD), unpaid: CANCELLED (or `state`: FAILED for one
        whose request no longer reads), out of its line, due for its notice, which
        whoever ended it sends before `announce_by` (else a poll run does). None when it
        no longer waits (started, ended or cancelled meanwhile)."""
        fields: Fields = {
            **ending_fields(state, now, reason, None, held_until=announce_by),
            "open_shard": OPEN_SHARD,
            **dict.fromkeys(LINE_AND_HOLD_FIELDS),
        }
        tally = Tally(day_of(now), row.tenant, row.model, job_id=row.job_id, ended=state)
        return self._update(
            row.job_id,
            fields,
            condition="#state = :held",
            extra_values={":held": to_attr(JobState.HELD.value)},
            tallies=[tally],
        )

    def back_in_line(self, job_id: str, attempt: str, held: Row) -> bool:
        """Put a job started from its line back in it, at its place, its row exactly as
        `held` was (a new job HELD, or an ended job whose resubmission waited): the API
        surely did not take it (busy, unreachable, an account problem)."""
        assert held.line_at is not None
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=held.item,
                ConditionExpression="#state = :submitting AND attempt = :attempt",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":submitting": to_attr(JobState.SUBMITTING.value),
                    ":attempt": to_attr(attempt),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def hold_resubmit(self, job_id: str, hold: Hold, tenant: str) -> bool:
        """Put the owner's resubmission of an ended, notified job in its tenant's line
        (line.py): the row keeps its ending, and does not expire meanwhile; `restart`
        takes it out. False when the job may not be resubmitted."""
        resubmittable = {
            f":ended_{state.value.lower()}": to_attr(state.value) for state in RESUBMITTABLE
        }
        fields: Fields = {
            "held_cap": hold.cap,
            "held_reason": hold.reason,
            "held_token": hold.token,
            "line_tenant": tenant,
            "held_since": hold.since,
        }
        return self._set_hold(
            job_id,
            fields,
            hold.since,
            condition=f"#state IN ({', '.join(resubmittable)}) AND notified = :yes",
            values={":yes": to_attr(True), **resubmittable},
            remove="expires_at, held_until, open_shard, due_at",
            line=True,
        )

    def leave_line(self, row: Row) -> bool:
        """Take a resubmission out of its tenant's line, its job left with the ending it
        had (its request no longer reads). False when it is no longer there."""
        clause = f"REMOVE {', '.join(LINE_AND_HOLD_FIELDS)}"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(row.job_id),
                UpdateExpression=clause,
                ConditionExpression="#state = :was AND line_at = :at",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":was": to_attr(row.state.value),
                    ":at": to_attr(row.line_at or 0.0),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _set_hold(
        self,
        job_id: str,
        fields: Fields,
        since: float,
        *,
        condition: str,
        values: Item,
        remove: str | None = None,
        line: bool = False,
    ) -> bool:
        """SET `fields` (None ones left out), and `held_since` (with `state`, `created_at`
        too; with `line`, `line_at` and, for the heartbeats, `due_at`) unless the row has
        them already; REMOVE `remove`."""
        clause, names, more = update_clause(
            {k: v for k, v in fields.items() if v is not None and k != "held_since"}
        )
        firsts = ["held_since"] + (["created_at"] if "state" in fields else [])
        if line:
            firsts += ["line_at"] + (["due_at"] if "open_shard" in fields else [])
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
