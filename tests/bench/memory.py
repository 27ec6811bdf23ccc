"""Memory: saving a 20 MB and a 200 MB song, streamed, against reading it whole."""

from __future__ import annotations

import hashlib

from local_cloud.stack import provision
from lyrics_to_song.poll import poll_due
from lyrics_to_song.services import Services
from lyrics_to_song.task_rows import JobState

from .common import (
    QUICK,
    Result,
    emulator_process,
    moto_process,
    peak_rss_growth,
    seed_pending,
    services_for,
)

MB = 1024 * 1024
SIZES = (20 * MB,) if QUICK else (20 * MB, 200 * MB)
LIMIT = 64 * MB


def naive_save(services: Services, job_id: str) -> None:
    """The baseline: the whole song in memory, then one PUT."""
    row = services.table.get(job_id)
    assert row is not None
    assert row.task_id is not None
    status = services.api.task_status(row.task_id)
    assert status.audio is not None
    assert status.audio.url is not None
    data = services.api.http.get(status.audio.url).content
    services.s3.put_object(
        Bucket=services.settings.audio_bucket_name, Key=f"naive/{job_id}.mp3", Body=data
    )


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


def run() -> list[Result]:
    results = []
    with moto_process() as moto_url:
        for size in SIZES:
            with emulator_process("--delay", "0", "--audio-size", str(size)) as emulator:
                stack = provision(moto_url, stack_name=f"bench-memory-{size // MB}")
                services = services_for(stack, emulator.url, emulator.api_key)
                (job_id,) = seed_pending(services, emulator, 1, "streamed")
                with peak_rss_growth() as streamed:
                    poll_due(services, lambda: 10**9)
                row = services.table.get(job_id)
                assert row is not None
                assert row.state is JobState.COMPLETED
                assert row.song_key
                assert row.song_bytes == size
                expected = sha256_of_download(services, f"{emulator.url}/files/{row.task_id}.mp3")
                identical = sha256_of_object(services, row.song_key) == expected

                (naive_job,) = seed_pending(services, emulator, 1, "whole")
                services.table.client.update_item(
                    TableName=services.table.table_name,
                    Key={"job_id": {"S": naive_job}},
                    UpdateExpression="REMOVE open_shard, due_at",
                )
                with peak_rss_growth() as whole:
                    naive_save(services, naive_job)
            results.append(
                Result(
                    f"memory, saving a {size // MB} MB song",
                    f"+{streamed[0] / MB:.0f} MB peak, bytes in S3 "
                    + ("identical" if identical else "DIFFERENT"),
                    f"read whole: +{whole[0] / MB:.0f} MB",
                    f"{whole[0] / max(streamed[0], 1):.1f}x less",
                    "<= 64 MB, identical",
                    streamed[0] <= LIMIT and identical,
                )
            )
    return results
