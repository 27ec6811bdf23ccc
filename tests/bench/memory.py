"""Memory: saving a 20 MB and a 200 MB song, streamed, against reading it whole.

Then as many 200 MB songs at once as a poll run follows (`POLL_CONCURRENCY`), against
the function's memory in template.yaml. Each measurement runs in a fresh interpreter
(so memory freed by one cannot hide the next), after a warm-up song of 9 MB has gone
the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable

from local_cloud.stack import provision
from local_cloud.template import load_template
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.poll import poll_due
from lyrics_to_song.services import Services

from .common import (
    Result,
    download_whole,
    emulator_process,
    moto_process,
    peak_memory,
    seed_pending,
    services_for,
    sized,
)

MB = 1024 * 1024
# The largest song the stack takes by default (MaxSongBytes): a larger one is refused.
LARGEST = int(load_template()["Parameters"]["MaxSongBytes"]["Default"])
SIZES = tuple(sorted({sized(20 * MB, 20 * MB, MB), sized(LARGEST, 20 * MB, MB)}))
TOGETHER_SIZE = SIZES[-1]
WARM_UP = sized(9 * MB, 9 * MB, MB)
LIMIT = 64 * MB


def function_memory() -> int:
    """The functions' MemorySize in template.yaml, in bytes."""
    return int(load_template()["Globals"]["Function"]["MemorySize"]) * MB


def streamed_save(services: Services, job_ids: list[str]) -> list[str]:
    """The poll function's way (one whole cycle); returns the songs' keys."""
    poll_due(services, lambda: 10**9)
    keys = []
    for job_id in job_ids:
        row = services.table.get(job_id)
        assert row is not None
        assert row.state is JobState.COMPLETED
        assert row.song_key is not None
        keys.append(row.song_key)
    return keys


def whole_save(services: Services, job_ids: list[str]) -> list[str]:
    """The baseline: each whole song in memory, then one PUT."""
    keys = []
    for job_id in job_ids:
        _, data = download_whole(services, job_id)
        key = f"whole/{job_id}.mp3"
        services.s3.put_object(Bucket=services.settings.audio_bucket_name, Key=key, Body=data)
        keys.append(key)
    return keys


def sha256_of_object(services: Services, key: str) -> str:
    body = services.s3.get_object(Bucket=services.settings.audio_bucket_name, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(MB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_of_download(services: Services, url: str) -> str:
    digest = hashlib.sha256()
    with services.api.http.stream("GET", url) as response:
        for chunk in response.iter_bytes(MB):
            digest.update(chunk)
    return digest.hexdigest()


def _save(
    moto_url: str,
    size: int,
    songs: int,
    save: Callable[[Services, list[str]], list[str]],
    name: str,
) -> dict[str, object]:
    with emulator_process("--delay", "0", "--audio-size", str(size)) as emulator:
        stack = provision(moto_url, stack_name=name)
        services = services_for(stack, emulator.url, emulator.api_key)
        songs = songs or services.settings.poll_concurrency  # 0: as many as a run takes at once
        # The baseline's rows are left out of the due index: no poll run takes them.
        job_ids = seed_pending(services, emulator, songs, name, due=save is streamed_save)
        with peak_memory() as peak:
            keys = save(services, job_ids)
        identical = True
        for job_id, key in zip(job_ids, keys, strict=True):
            row = services.table.get(job_id)
            assert row is not None
            expected = sha256_of_download(services, f"{emulator.url}/files/{row.task_id}.mp3")
            identical = identical and sha256_of_object(services, key) == expected
        return {
            "songs": songs,
            "growth": peak.growth,
            "resident": peak.resident,
            "identical": identical,
        }


def probe(mode: str, size: int, songs: int, moto_url: str) -> None:
    """One measurement in this (fresh) interpreter; prints it as JSON."""
    save = streamed_save if mode == "streamed" else whole_save
    _save(moto_url, WARM_UP, 1, save, f"warm-{mode}-{size}-{songs}")
    print(json.dumps(_save(moto_url, size, songs, save, f"{mode}-{size}-{songs}")))


def _measure(mode: str, size: int, moto_url: str, songs: int = 1) -> dict[str, int]:
    """Songs saved, peak growth and resident memory (bytes), bytes equal (0/1): one run
    of `save` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.memory", mode, str(size), str(songs), moto_url],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: int(v) for k, v in result.items()}


def run() -> list[Result]:
    results = []
    with moto_process() as moto_url:
        for size in SIZES:
            streamed = _measure("streamed", size, moto_url)
            whole = _measure("whole", size, moto_url)
            identical = bool(streamed["identical"] and whole["identical"])
            grew, grew_whole = streamed["growth"], whole["growth"]
            results.append(
                Result(
                    f"memory, saving a {size // MB} MB song",
                    f"+{grew / MB:.0f} MB peak, bytes in S3 "
                    + ("identical" if identical else "DIFFERENT"),
                    f"read whole: +{grew_whole / MB:.0f} MB",
                    f"{grew_whole / max(grew, 1):.1f}x less",
                    "<= 64 MB, identical",
                    grew <= LIMIT and identical,
                )
            )
        together = _measure("streamed", TOGETHER_SIZE, moto_url, songs=0)
        limit = function_memory()
        results.append(
            Result(
                f"memory, {together['songs']} songs of {TOGETHER_SIZE // MB} MB saved at once "
                "(one poll run, default POLL_CONCURRENCY)",
                f"{together['resident'] / MB:.0f} MB resident at peak "
                f"(+{together['growth'] / MB:.0f} MB), bytes in S3 "
                + ("identical" if together["identical"] else "DIFFERENT"),
                f"function memory {limit // MB} MB",
                f"{together['resident'] / limit:.0%} of it",
                "fits, identical",
                together["resident"] <= limit and bool(together["identical"]),
            )
        )
    return results


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
