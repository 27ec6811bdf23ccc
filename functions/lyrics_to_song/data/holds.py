"""Held jobs on the tasks table: a new job a cap refused (HELD), or an ended job whose
resubmission waits for a cap. Nothing is reserved, paid or counted for them; they sit
in the due index under a shard of their own (docs/producers.md)."""

from __future__ import annotations

from .items import Fields, Item, to_attr, update_clause
from .rows import RESUBMITTABLE, Hold, JobState, Row
from .table_base import HELD_SHARD, TableBase

HOLD_FIELDS = "held_cap, held_reason, held_until, held_since, held_token"


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


class HoldWrites(TableBase):
    """The tasks table's writes and reads of held jobs."""

    def held(self) -> list[Row]:
        """Every job a cap holds (HELD, or its resubmission held), from the index's HELD
        shard; a few reads, whatever the table holds."""
        rows = self._shard_rows(HELD_SHARD)
        return [row for row in rows if row.hold is not None]

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
    ) -> bool:
        """Write (or refresh) the HELD row of a new job a cap refused: what it asks for,
        why it waits and till when. Nothing is reserved, paid or counted; its first
        refusal stays its `created_at`. False when the job has a row in another state
        (a redelivery found it started meanwhile), or a held one asking for another
        request: only its own request refreshes a hold."""
        fields: Fields = {
            "state": JobState.HELD.value,
            "source": source,
            "source_name": source_name,
            "request_json": request_json,
            "model": model,
            "tenant": tenant,
            "callback_url": callback_url,
            "request_id": request_id,
            **_hold_fields(hold),
        }
        return self._set_hold(
            job_id,
            fields,
            hold.since,
            condition="attribute_not_exists(job_id)"
            " OR (#state = :held AND request_json = :request_json)",
            values={":held": to_attr(JobState.HELD.value), ":request_json": to_attr(request_json)},
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
