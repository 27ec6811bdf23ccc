"""Poll cycle: 1,000 due tasks, the API answering in 100 ms, against a naive serial loop."""

from __future__ import annotations

import json
import time

from moto import mock_aws

from local_cloud.stack import provision
from lyrics_to_song.audio.store import song_key
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.poll import poll_due
from lyrics_to_song.services import Services

from .common import (
    Result,
    download_whole,
    emulator_process,
    moto_cpu,
    seed_pending,
    services_for,
    sized,
    timed,
)

TASKS = sized(1000, 100, 10)
API_SECONDS = 0.1
PLENTY_MS = 15 * 60 * 1000


def naive_cycle(services: Services, job_ids: list[str]) -> None:
    """The obvious loop, kept as the baseline: status, download, save, mark, notify, one by one."""
    settings = services.settings
    for job_id in job_ids:
        row, audio = download_whole(services, job_id)
        key = song_key(row.source_name, row.task_id or "")
        services.s3.put_object(Bucket=settings.audio_bucket_name, Key=key, Body=audio)
        services.table.client.update_item(
            TableName=services.table.table_name,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET #s = :done REMOVE open_shard, due_at",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
        )
        services.sns.publish(
            TopicArn=settings.notify_topic_arn, Message=json.dumps({"job_id": job_id})
        )


def run() -> list[Result]:
    with mock_aws(), emulator_process("--delay", "0") as emulator:
        stack = provision(None, stack_name="bench-poll")
        services = services_for(stack, emulator.url, emulator.api_key)
        workers = services.settings.poll_concurrency

        fast_jobs = seed_pending(services, emulator, TASKS, "fast")
        # The poll function must do only its own share, not the naive loop's.
        naive_jobs = seed_pending(services, emulator, TASKS, "naive", due=False)
        emulator.faults(slow_seconds=API_SECONDS)
        cpu_before = time.process_time()
        with moto_cpu(services) as in_moto:
            fast = timed(lambda: poll_due(services, lambda: PLENTY_MS))
        cpu = (time.process_time() - cpu_before) / TASKS
        done = [services.table.get(j) for j in fast_jobs]
        assert all(r is not None and r.state is JobState.COMPLETED and r.notified for r in done)

        naive = timed(lambda: naive_cycle(services, naive_jobs))

    ratio = naive / fast
    moto = in_moto.seconds / TASKS
    serial = naive / TASKS
    return [
        Result(
            f"poll cycle, {TASKS} due tasks, API {API_SECONDS * 1000:.0f} ms/request, "
            f"{workers} at once",
            f"{fast:.1f} s ({TASKS / fast:.0f} tasks/s)",
            f"serial loop {naive:.1f} s",
            f"{ratio:.1f}x faster",
            "-",  # for information: with moto standing in for AWS it measures moto's CPU
            None,
        ),
        # Two ceilings no code here can pass: Python runs one thread at a time, so this
        # process's CPU per task bounds the cycle; and each worker waits out two API answers
        # (status, download) per task.
        Result(
            "poll cycle, CPU per task in this process (one core at a time)",
            f"{cpu * 1000:.1f} ms: moto answering {in_moto.requests / TASKS:.0f} AWS requests "
            f"{moto * 1000:.1f} ms, the function {(cpu - moto) * 1000:.1f} ms",
            f"serial loop {serial * 1000:.0f} ms/task",
            f"bounds: CPU ~{serial / cpu:.1f}x, {workers} at once "
            f"~{serial * workers / (2 * API_SECONDS):.1f}x",
            "-",
            None,
        ),
    ]
