"""Throughput: 500 songs through the local stack, from upload to notification."""

from __future__ import annotations

import time

from local_cloud.runtime import LocalLambda
from local_cloud.stack import provision
from local_cloud.watch import read_notifications, subscribe_queue

from .common import Result, emulator_process, moto_process, open_caps, sized

SONGS = sized(500, 50, 3)
COMPLETION_SECONDS = 2.0


def run() -> list[Result]:
    with (
        moto_process() as moto_url,
        emulator_process("--delay", str(COMPLETION_SECONDS)) as emulator,
    ):
        stack = provision(moto_url, stack_name="bench-throughput")
        stack.store_api_key(emulator.api_key)
        s3 = stack.client("s3")
        watch = subscribe_queue(stack, "bench-watch")
        runtime = LocalLambda(
            stack,
            {
                "MUSIC_API_BASE_URL": emulator.url,
                "FIRST_POLL_DELAY_SECONDS": "1",
                "POLL_BACKOFF_SECONDS": "1",
                "TYPICAL_SONG_SECONDS": "2-4",
                "POLL_WATCH_SECONDS": "0",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # The machinery's throughput, not the spending policy's: room for all of
                # them at once (with the default 20 in flight, the API's own limit, 20 songs
                # per song length is the most any setup gets).
                **open_caps(SONGS),
                "STATUS_CHECKS_PER_MINUTE": "6000",
            },
        )
        runtime.deliver_jobs()  # the s3:TestEvent

        started = time.perf_counter()
        for i in range(SONGS):
            s3.put_object(
                Bucket=stack.lyrics_bucket,
                Key=f"batch/song-{i:04d}.txt",
                Body=f"[Verse]\nsong {i}".encode(),
            )
        statuses: dict[str, int] = {}
        deadline = started + 900
        while sum(statuses.values()) < SONGS and time.perf_counter() < deadline:
            while runtime.deliver_jobs(retry_delay_seconds=0).received:
                pass
            runtime.run_schedule()
            for note in read_notifications(stack, watch):
                statuses[note["status"]] = statuses.get(note["status"], 0) + 1
        elapsed = time.perf_counter() - started
    done = statuses.get("COMPLETED", 0)
    return [
        Result(
            f"throughput, {SONGS} songs through the local stack (upload to notification)",
            f"{elapsed:.0f} s, {done / elapsed * 60:.0f} songs/min",
            f"songs finish {COMPLETION_SECONDS:.0f} s after submission",
            "-",
            f"{SONGS} songs, one notification each",
            done == SONGS and sum(statuses.values()) == SONGS,
        )
    ]
