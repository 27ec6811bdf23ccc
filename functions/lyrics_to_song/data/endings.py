"""What the end of a job writes on its row, and counts in the spending table."""

from __future__ import annotations

import dataclasses

from ..texts import kept_error
from .caps import day_of
from .items import AddAttribute, Fields, Value
from .rows import JobState, Row, Song
from .spend import Tally

# A submission the API took is charged at the price recorded with it; one whose outcome
# is unknown may have been (docs/producers.md).
CHARGED: Fields = {
    "spent_credits": AddAttribute("price_credits"),
    "spent_usd": AddAttribute("price_usd"),
}
MAYBE_CHARGED: Fields = {
    "maybe_credits": AddAttribute("price_credits"),
    "maybe_usd": AddAttribute("price_usd"),
}


def end_tallies(row: Row, state: JobState, now: float) -> list[Tally]:
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


def ending_fields(
    state: JobState, now: float, error: str | None, song: Song | None, *, held_until: float
) -> dict[str, Value]:
    """What every end of a job writes. It stays in the due index until its notification
    is out, held by whoever ended it until `held_until`: only if that one dies before
    announcing it does a poll run announce it then (never both at once)."""
    return {
        "state": state.value,
        "finished_at": now,
        "error": kept_error(error),
        "song_key": song.key if song else None,
        "song_bytes": song.size if song else None,
        "duration_seconds": song.duration_seconds if song else None,
        "sample_rate": song.sample_rate if song else None,
        "bitrate": song.bitrate if song else None,
        "notified": False,
        "previous_state": None,  # a resubmission, if this was one, is over
        "due_at": held_until,
    }
