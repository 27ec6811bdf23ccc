"""Following a task on the tasks table: a poll run's lease on a row, each check it
makes, and the end it writes (every write conditional on the lease it holds)."""

from __future__ import annotations

from .endings import MAYBE_CHARGED, end_tallies, ending_fields
from .items import Fields, to_attr
from .rows import JobState, Row, Song
from .spend import Tally
from .table_base import TableBase


class FollowWrites(TableBase):
    """The tasks table's writes while a task is followed."""

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
        announcement; None when the lease was lost meanwhile, or the row has ended since it
        was read (an ending keeps the lease as its due time, so the lease alone would let
        a second end through: one that failed to announce, then ended again by the error
        path, would be counted twice)."""
        assert row.due_at is not None
        unknown = state is JobState.UNKNOWN
        ending: Fields = {
            **ending_fields(state, now, error, song, held_until=row.due_at),
            # Only a submission cut short ends UNKNOWN here: it may have been charged.
            **(MAYBE_CHARGED if unknown else {}),
        }
        return self._update(
            row.job_id,
            ending,
            condition="due_at = :held AND #state = :was",
            extra_values={":held": to_attr(row.due_at), ":was": to_attr(row.state.value)},
            tallies=end_tallies(row, state, now),
            held=row,
        )

    def mark_notified(self, job_id: str, expires_at: float) -> bool:
        """The last write of a job: it leaves the index and expires later (TTL)."""
        fields: Fields = {
            "notified": True,
            "open_shard": None,
            "due_at": None,
            "expires_at": int(expires_at),
        }
        return self._update(job_id, fields, condition="attribute_exists(job_id)") is not None

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
