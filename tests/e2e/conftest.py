"""The local stack over real loopback HTTP: moto's server, the emulator, the real handlers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from local_cloud.emulator import MusicApiEmulator, RunningEmulator
from local_cloud.moto_server import MotoServer
from local_cloud.runtime import LocalLambda
from local_cloud.stack import provision
from local_cloud.watch import subscribe_queue
from tests.e2e.local_pipeline import Pipeline

_stack_numbers = itertools.count()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def emulator() -> MusicApiEmulator:
    return MusicApiEmulator(completion_delay=0.5, audio_seconds=1.0)


@pytest.fixture
def function_env() -> dict[str, str]:
    """Overrides of the functions' environment for a test (on top of the template's)."""
    return {}


@pytest.fixture
def pipeline(
    moto_server: MotoServer, emulator: MusicApiEmulator, function_env: dict[str, str]
) -> Iterator[Pipeline]:
    with RunningEmulator(emulator) as running:
        stack = provision(moto_server.url, stack_name=f"e2e{next(_stack_numbers)}")
        stack.store_api_key(emulator.api_key)
        watch_url = subscribe_queue(stack, f"{stack.name}-watch")
        env = {
            "MUSIC_API_BASE_URL": running.url,
            "FIRST_POLL_DELAY_SECONDS": "0",
            "POLL_BACKOFF_SECONDS": "1",
            # Songs here take 0.5 s; each invocation sweeps once, the test drives the ticks.
            "TYPICAL_SONG_SECONDS": "0.5-2",
            "POLL_WATCH_SECONDS": "0",
            **function_env,
        }
        runtime = LocalLambda(stack, env)
        # The bucket's notification setup put an s3:TestEvent on the queue; deliver it first.
        assert runtime.deliver_jobs().received == 1
        yield Pipeline(stack, runtime, emulator, watch_url)
