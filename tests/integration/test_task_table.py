"""The tasks table's counted writes tell the row they leave without reading it back."""

from __future__ import annotations

from typing import Any

import pytest

from lyrics_to_song.data.rows import JobState, Price, Song
from tests.integration.moto_cloud import Cloud
from tests.support import seed_row

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("state", "song", "error"),
    [
        (JobState.COMPLETED, Song("songs/a.mp3", 1234, 61.5, 44100, 256000), None),
        (JobState.FAILED, None, "the model refused the lyrics"),
        (JobState.UNKNOWN, None, "cut short"),
    ],
)
def test_an_ended_row_is_the_row_the_table_holds_and_costs_no_read(
    cloud: Cloud, state: JobState, song: Song | None, error: str | None
) -> None:
    table = cloud.services.table
    price = Price(30, 0.3)
    seed_row(table, None, "job-1", now=NOW, task_id="t1", tenant="team-a", price=price)
    held = table.claim("job-1", NOW + 20, NOW + 320)
    assert held is not None
    reads: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        reads.append(event_name)

    table.client.meta.events.register("before-call.dynamodb.GetItem", count)
    ended = table.end(held, state, now=NOW + 60, error=error, song=song)
    table.client.meta.events.unregister("before-call.dynamodb.GetItem", count)

    assert reads == [], "the row after the write was worked out, not read back"
    assert ended is not None
    assert ended == table.get("job-1")
    assert ended.state is state
    # The charge added on the way out, as DynamoDB added it.
    if state is JobState.UNKNOWN:
        assert ended.charge.maybe_credits == 30
