"""Shared pieces of the benchmarks: a local stack, seeded tasks, timing and a table."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from local_cloud.emulator import MusicApiEmulator
from local_cloud.stack import Stack
from lyrics_to_song.config import load_settings
from lyrics_to_song.data.rows import Row
from lyrics_to_song.music_api import MusicApiClient
from lyrics_to_song.services import Services, build_services
from tests.support import seed_row

# Every benchmark, in the order `make bench` runs them.
BENCHMARKS = [
    "wait",
    "poll_cycle",
    "submission",
    "memory",
    "reads",
    "cold_start",
    "artifact",
    "throughput",
    "backlog",
    "heartbeats",
    "webhooks",
]

# How big the benchmarks run: "full" (`make bench`), "quick" (BENCH_QUICK=1: smaller
# sizes, for a quick look) or "smoke" (BENCH_SMOKE=1: tiny sizes, each step once, no
# target judged; the test suite runs it so that a benchmark cannot break unseen).
SCALE = (
    "smoke"
    if os.environ.get("BENCH_SMOKE") == "1"
    else "quick"
    if os.environ.get("BENCH_QUICK") == "1"
    else "full"
)


def open_caps(songs: int) -> dict[str, str]:
    """The functions' environment with every spending cap, the stack's and each tenant's
    default, opened to `songs`: these benchmarks measure the machinery, and a job held
    back by a cap sends nothing."""
    return {
        name: str(songs)
        for name in (
            "MAX_SONGS_PER_DAY",
            "MAX_SONGS_IN_FLIGHT",
            "TENANT_SONGS_PER_DAY",
            "TENANT_SONGS_IN_FLIGHT",
        )
    }


def sized(full: int, quick: int, smoke: int) -> int:
    """The size of this run's scale."""
    return {"full": full, "quick": quick, "smoke": smoke}[SCALE]


@dataclass
class Result:
    name: str
    measured: str
    baseline: str
    ratio: str
    target: str
    met: bool | None

    def row(self) -> str:
        verdict = {True: "yes", False: "NO", None: "-"}[self.met]
        cells = (self.name, self.measured, self.baseline, self.ratio, self.target, verdict)
        return "| " + " | ".join(cells) + " |"


def table(results: list[Result]) -> str:
    head = (
        "| benchmark | measured | baseline (same run) | ratio | target | met |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    return "\n".join([head, *(r.row() for r in results)])


def services_for(
    stack: Stack, api_url: str, api_key: str, overrides: dict[str, str] | None = None
) -> Services:
    """The poll/submit logic's clients against a stack and an emulator over loopback.

    These benchmarks measure the machinery, not the pace of checks: the status-check
    budget is set as high as it goes (the wait benchmark measures the pace)."""
    env = {
        **stack.environments["PollFunction"],
        "MUSIC_API_BASE_URL": api_url,
        "STATUS_CHECKS_PER_MINUTE": "6000",
        **(overrides or {}),
    }
    env.pop("MUSIC_API_KEY_SECRET_ARN")
    settings = load_settings({**env, "MUSIC_API_KEY": api_key})
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    api = MusicApiClient(api_url, lambda: api_key, http=httpx.Client(limits=limits))
    return build_services(settings, client=stack.client, api=api)


@dataclass
class EmulatorProcess:
    """The emulator in a process of its own, as the real API is: its work is not ours."""

    url: str
    api_key: str = MusicApiEmulator.api_key

    def faults(self, **changes: object) -> None:
        httpx.post(f"{self.url}/_emulator/faults", json=changes).raise_for_status()

    def submissions(self) -> list[dict[str, object]]:
        answer = httpx.get(f"{self.url}/_emulator/submissions")
        answer.raise_for_status()
        sent: list[dict[str, object]] = answer.json()
        return sent

    def create_task(self, body: dict[str, object]) -> str:
        answer = httpx.post(
            f"{self.url}/api/v1/audio/music",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        task_id: str = answer.json()["data"]["task_id"]
        return task_id


@contextmanager
def emulator_process(*args: str) -> Iterator[EmulatorProcess]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cloud.emulator", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/_emulator/submissions")
        yield EmulatorProcess(url)
    finally:
        _stop(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_until_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask a server process to stop; kill it if it is still busy 10 s later."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def moto_process() -> Iterator[str]:
    """moto's server in a process of its own (its memory and CPU are not the function's)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local_cloud.moto_server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
        yield url
    finally:
        _stop(process)


def seed_pending(
    services: Services, emulator: EmulatorProcess, count: int, prefix: str, *, due: bool = True
) -> list[str]:
    """`count` submitted tasks, their rows PENDING and due now (or, with due=False, out
    of the due index: for a baseline that a poll run must leave alone)."""
    now = services.clock()
    job_ids = []
    for i in range(count):
        job_id = f"{prefix}-{i:05d}"
        task_id = emulator.create_task(
            {"prompt": "bench", "lyrics": "la", "sample_rate": 44100, "bitrate": 128000}
        )
        seed_row(
            services.table,
            None,  # seeded outside the caps (and moto's slow transactions)
            job_id,
            now=now - 60,
            lease_seconds=120,
            task_id=task_id,
            first_due=now - 1,
        )
        if not due:
            services.table.mark_notified(job_id, expires_at=now + 86400)  # out of the index
        job_ids.append(job_id)
    return job_ids


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class PeakMemory:
    growth: int = 0  # bytes above the resident memory at the start
    resident: int = 0  # bytes, the whole process at its peak


@contextmanager
def peak_memory() -> Iterator[PeakMemory]:
    """Sample this process's resident memory every 2 ms; the figures are set when done."""
    baseline = _rss_bytes()
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = PeakMemory()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result.resident = max(peak[0], _rss_bytes())
        result.growth = result.resident - baseline


def download_whole(services: Services, job_id: str) -> tuple[Row, bytes]:
    """What a naive loop does for one task: read its row, ask its status, fetch the song whole."""
    row = services.table.get(job_id)
    assert row is not None
    assert row.task_id is not None
    status = services.api.task_status(row.task_id)
    assert status.audio is not None
    assert status.audio.url is not None
    return row, services.api.http.get(status.audio.url).content


@dataclass
class MotoCpu:
    """CPU time moto spent answering requests in this process's threads."""

    seconds: float = 0.0
    requests: int = 0


@contextmanager
def moto_cpu(services: Services) -> Iterator[MotoCpu]:
    """Measure the CPU in-process moto spends on the services' requests while the block runs.

    moto answers a request inside botocore's `before-send` event, in the calling thread;
    the time from just before that to `before-parse` is moto's, not the function's.
    """
    spent = MotoCpu()
    lock = threading.Lock()
    started = threading.local()

    def start(**_: Any) -> None:
        started.at = time.thread_time()

    def stop(**_: Any) -> None:
        at = getattr(started, "at", None)
        if at is None:
            return
        started.at = None
        with lock:
            spent.seconds += time.thread_time() - at
            spent.requests += 1

    used = (services.table.client, services.s3, services.sns, services.events)
    clients = {id(c): c for c in used}
    for client in clients.values():
        client.meta.events.register_first("before-send", start)
        client.meta.events.register("before-parse", stop)
    try:
        yield spent
    finally:
        for client in clients.values():
            client.meta.events.unregister("before-send", start)
            client.meta.events.unregister("before-parse", stop)
