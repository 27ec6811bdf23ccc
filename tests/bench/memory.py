"""Memory: saving a 20 MB and a 200 MB song, streamed, against reading it whole.

Each measurement runs in a fresh interpreter (so memory freed by one cannot hide the
next), after a warm-up song of 9 MB has gone the same way.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable

from local_cloud.stack import provision
from lyrics_to_song.poll import poll_due
from lyrics_to_song.services import Services
from lyrics_to_song.task_rows import JobState

from .common import (
    QUICK,
    Result,
    download_whole,
    emulator_process,
    moto_process,
    peak_rss_growth,
    seed_pending,
    services_for,
)

MB = 1024 * 1024
SIZES = (20 * MB,) if QUICK else (20 * MB, 200 * MB)
WARM_UP = 9 * MB
LIMIT = 64 * MB


def streamed_save(services: Services, job_id: str) -> str:
    """The poll function's way (the whole cycle); returns the song's key."""
    poll_due(services, lambda: 10**9)
    row = services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.COMPLETED
    assert row.song_key is not None
    return row.song_key


def whole_save(services: Services, job_id: str) -> str:
    """The baseline: the whole song in memory, then one PUT."""
    _, data = download_whole(services, job_id)
    key = f"whole/{job_id}.mp3"
    services.s3.put_object(Bucket=services.settings.audio_bucket_name, Key=key, Body=data)
    return key


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


def _save_one(
    moto_url: str, size: int, save: Callable[[Services, str], str], name: str
) -> dict[str, object]:
    with emulator_process("--delay", "0", "--audio-size", str(size)) as emulator:
        stack = provision(moto_url, stack_name=name)
        services = services_for(stack, emulator.url, emulator.api_key)
        (job_id,) = seed_pending(services, emulator, 1, name)
        if save is whole_save:  # the poll function must not take it
            services.table.client.update_item(
                TableName=services.table.table_name,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="REMOVE open_shard, due_at",
            )
        with peak_rss_growth() as growth:
            key = save(services, job_id)
        row = services.table.get(job_id)
        assert row is not None
        expected = sha256_of_download(services, f"{emulator.url}/files/{row.task_id}.mp3")
        return {"growth": growth[0], "identical": sha256_of_object(services, key) == expected}


def probe(mode: str, size: int, moto_url: str) -> None:
    """One measurement in this (fresh) interpreter; prints it as JSON."""
    save = streamed_save if mode == "streamed" else whole_save
    _save_one(moto_url, WARM_UP, save, f"warm-{mode}-{size}")
    print(json.dumps(_save_one(moto_url, size, save, f"{mode}-{size}")))


def _measure(mode: str, size: int, moto_url: str) -> tuple[int, bool]:
    """(peak growth in bytes, bytes identical) of one save in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.memory", mode, str(size), moto_url],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["growth"]), bool(result["identical"])


def run() -> list[Result]:
    results = []
    with moto_process() as moto_url:
        for size in SIZES:
            grew, identical = _measure("streamed", size, moto_url)
            grew_whole, identical_whole = _measure("whole", size, moto_url)
            identical = identical and identical_whole
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
    return results


if __name__ == "__main__":
    import os

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    probe(sys.argv[1], int(sys.argv[2]), sys.argv[3])
