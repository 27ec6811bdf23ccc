"""Fixtures for every suite. Nothing here reaches the internet."""

from __future__ import annotations

import os

import httpx
import pytest

from local_cloud.emulator import MusicApiEmulator
from lyrics_to_song.music_api import MusicApiClient, RetryPolicy
from tests.support import FakeClock

# No X-Ray daemon and no real AWS account here; boto3 must never look for either.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

API_URL = "http://localhost:8765"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest tests first, so that parallel workers (pytest-xdist) start them at once
    and the rest of the suite runs beside them rather than after them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> MusicApiEmulator:
    """The emulator as a WSGI app on the fake clock: songs are ready 30 s after submission."""
    return MusicApiEmulator(completion_delay=30.0, clock=clock, base_url=API_URL, audio_seconds=1.0)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api(emulator: MusicApiEmulator, sleeps: list[float]) -> MusicApiClient:
    """The real client over an in-process transport (no sockets)."""
    http = httpx.Client(transport=httpx.WSGITransport(app=emulator))
    return MusicApiClient(
        API_URL,
        lambda: emulator.api_key,
        http=http,
        downloads=http,
        retry=RetryPolicy(),
        sleep=sleeps.append,
    )
