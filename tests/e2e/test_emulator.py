"""The emulator over real HTTP, and the client's handling of what it does there."""

from __future__ import annotations

import httpx
import pytest

from local_cloud.emulator import MusicApiEmulator, RunningEmulator
from lyrics_to_song.errors import ErrorKind, MusicApiError
from lyrics_to_song.music_api import MusicApiClient, RetryPolicy
from lyrics_to_song.song_request import parse_request
from tests.e2e.local_pipeline import mp3_info
from tests.support import song_request

pytestmark = pytest.mark.e2e
REQUEST = parse_request(song_request(), "minimax-music")


@pytest.fixture
def served() -> MusicApiEmulator:
    return MusicApiEmulator(completion_delay=0.0, audio_seconds=1.0)


def client(url: str, key: str, read_timeout: float = 5.0) -> MusicApiClient:
    timeout = httpx.Timeout(connect=2.0, read=read_timeout, write=2.0, pool=2.0)
    return MusicApiClient(
        url, lambda: key, http=httpx.Client(timeout=timeout), retry=RetryPolicy(base_delay=0.01)
    )


def test_a_song_over_http_is_a_real_mp3(served: MusicApiEmulator) -> None:
    with RunningEmulator(served) as running:
        api = client(running.url, served.api_key)
        task_id = api.submit(REQUEST)
        status = api.task_status(task_id)
        assert status.audio is not None
        assert status.audio.url is not None
        response = api.http.get(status.audio.url)
    assert response.headers["content-type"] == "audio/mpeg"
    assert mp3_info(response.content).sample_rate == REQUEST.sample_rate
    assert response.content == served.audio_bytes(task_id)


def test_a_wrong_key_is_refused_as_an_account_problem(served: MusicApiEmulator) -> None:
    with RunningEmulator(served) as running, pytest.raises(MusicApiError) as caught:
        client(running.url, "aio_wrong").submit(REQUEST)
    assert caught.value.kind is ErrorKind.ACCOUNT
    assert caught.value.status == 401
    assert served.submissions == []


def test_a_slow_answer_to_a_submission_is_an_unknown_outcome(served: MusicApiEmulator) -> None:
    served.faults.slow_seconds = 1.0
    with RunningEmulator(served) as running, pytest.raises(MusicApiError) as caught:
        client(running.url, served.api_key, read_timeout=0.2).submit(REQUEST)
    assert caught.value.maybe_accepted, "the request was sent; it may have been accepted"


def test_faults_can_be_switched_over_http(served: MusicApiEmulator) -> None:
    with RunningEmulator(served) as running:
        answer = httpx.post(
            f"{running.url}/_emulator/faults", json={"rate_limit": 1, "retry_after_seconds": 7}
        )
        assert answer.json()["rate_limit"] == 1
        limited = httpx.post(
            f"{running.url}/api/v1/audio/music", json={}, headers={"Authorization": "x"}
        )
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["code"] == 429


def test_an_unknown_task_is_a_404_in_the_envelope(served: MusicApiEmulator) -> None:
    with RunningEmulator(served) as running, pytest.raises(MusicApiError) as caught:
        client(running.url, served.api_key).task_status("nope")
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "task nope does not exist" in str(caught.value)


def test_the_client_waits_as_long_as_its_read_timeout(served: MusicApiEmulator) -> None:
    """MUSIC_API_TIMEOUT_SECONDS: a submission answered later is an unknown outcome."""
    served.faults.slow_seconds = 1.5
    with RunningEmulator(served) as running:
        api = MusicApiClient(
            running.url,
            lambda: served.api_key,
            read_timeout=1,
            retry=RetryPolicy(attempts=2, base_delay=0.01),
        )
        with pytest.raises(MusicApiError) as submitted:
            api.submit(REQUEST)
        assert submitted.value.maybe_accepted
        assert "ReadTimeout" in str(submitted.value)
        task_id = served.create_task(REQUEST.api_body())
        with pytest.raises(MusicApiError) as status:
            api.task_status(task_id)
        assert status.value.kind is ErrorKind.TRANSIENT
        assert not status.value.maybe_accepted


def test_fault_switches_are_listed_checked_and_set_from_curl(served: MusicApiEmulator) -> None:
    with RunningEmulator(served) as running:
        faults = f"{running.url}/_emulator/faults"
        shown = httpx.get(faults).json()
        assert shown["fail_tasks"] is False
        assert "rate_limit" in shown

        typo = httpx.post(faults, json={"fail_task": True})
        assert typo.status_code == 400
        assert "unknown switch(es) fail_task" in typo.json()["error"]
        assert typo.json()["switches"]["fail_tasks"] == "bool"
        wrong_type = httpx.post(faults, json={"rate_limit": "many"})
        assert wrong_type.status_code == 400
        assert (
            wrong_type.json()["error"] == 'switch rate_limit wants a value of type int, not "many"'
        )
        assert httpx.post(faults, content=b"not json").status_code == 400
        assert httpx.get(faults).json() == shown, "nothing refused was applied"

        # `curl -d '{...}' URL` sends its JSON labelled as a form
        form = {"content-type": "application/x-www-form-urlencoded"}
        applied = httpx.post(faults, content=b'{"fail_tasks": true}', headers=form)
        assert applied.status_code == 200
        assert httpx.get(faults).json()["fail_tasks"] is True
    assert served.faults.fail_tasks
