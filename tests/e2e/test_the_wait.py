"""In real time on the local stack: a song is announced seconds after the API finishes it,
with the poll function started as the schedule and a submission's wake would start it."""

from __future__ import annotations

import threading
import time

import pytest

from local_cloud.emulator import MusicApiEmulator
from tests.e2e.local_pipeline import Pipeline
from tests.support import song_request

pytestmark = pytest.mark.e2e
SONG_SECONDS = 3.0


@pytest.fixture
def emulator() -> MusicApiEmulator:
    return MusicApiEmulator(completion_delay=SONG_SECONDS, audio_seconds=1.0)


@pytest.mark.parametrize(
    "function_env",
    # The template's watch (58 s), with a likely window that fits the emulator's songs.
    [{"POLL_WATCH_SECONDS": "58", "TYPICAL_SONG_SECONDS": "2-6"}],
)
def test_a_song_is_announced_within_seconds_of_being_ready(pipeline: Pipeline) -> None:
    runtime, emulator = pipeline.runtime, pipeline.emulator
    tick = threading.Thread(target=runtime.run_schedule)  # the minute's scheduled run
    tick.start()  # nothing is open yet: it returns at once
    tick.join(timeout=10)
    assert not tick.is_alive(), "an idle run returns at once"

    pipeline.enqueue(song_request(request_id="soon"))
    assert runtime.deliver_jobs().received == 1  # submitted; nobody watches: a wake is sent
    woken = threading.Thread(target=runtime.deliver_wakes)  # the wake queue's event source
    woken.start()
    notes: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while not notes and time.monotonic() < deadline:
        notes = pipeline.notifications()
        time.sleep(0.05)
    announced = time.monotonic()  # the emulator's clock
    (task,) = emulator.tasks.values()
    (note,) = notes
    assert note["status"] == "COMPLETED"
    assert 0 <= announced - task.ready_at < 3.0, "announced within a few seconds of ready"
    woken.join(timeout=10)
    assert not woken.is_alive(), "with nothing open any more, the woken run returned"
    checks = len(emulator.status_calls)
    assert checks <= 3, f"{checks} status checks for a 3 s song"
