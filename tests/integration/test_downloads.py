"""Downloads of finished songs: only real songs are saved, from allowed places, within
bounds; everything else ends the job with a reason that says what came back."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import httpx
import pytest

from lyrics_to_song import music_api
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.follow import MAX_DOWNLOAD_FAILURES
from tests.conftest import API_URL
from tests.integration.moto_cloud import Cloud


def songs_in_bucket(cloud: Cloud) -> list[str]:
    listing = cloud.stack.client("s3").list_objects_v2(Bucket=cloud.stack.songs_bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def poll_until_ended(cloud: Cloud) -> dict[str, Any]:
    """Poll through the retries of a failing download; return the job's one notice."""
    for _ in range(MAX_DOWNLOAD_FAILURES + 1):
        cloud.poll()
        if notes := cloud.notifications():
            (note,) = notes
            return note
        cloud.clock.advance(60)
    raise AssertionError("the job never ended")


def failed_at_once(cloud: Cloud) -> dict[str, Any]:
    """Submit a song, poll when it is ready: the job fails in that one run; its notice."""
    cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().failed == 1
    (note,) = cloud.notifications()
    return note


def test_a_song_is_measured_and_its_figures_are_announced(cloud: Cloud) -> None:
    job_id = cloud.submit(sample_rate=32000, bitrate=128000)
    cloud.clock.advance(31)
    assert cloud.poll().completed == 1
    (note,) = cloud.notifications()
    assert (note["song"]["sample_rate"], note["song"]["bitrate"]) == (32000, 128000)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.song_key is not None
    sidecar = json.loads(
        cloud.stack.client("s3")
        .get_object(Bucket=cloud.stack.songs_bucket, Key=row.song_key[:-4] + ".json")["Body"]
        .read()
    )
    measured = sidecar["audio"]["measured"]
    assert measured["kind"] == "mp3"
    assert measured["sample_rate"] == 32000
    assert measured["duration_seconds"] == pytest.approx(1.0, abs=0.1)
    assert sidecar["audio"]["differs_from_request"] == []


def test_the_duration_is_measured_when_the_api_does_not_report_it(cloud: Cloud) -> None:
    cloud.emulator.status_shape = "hex"  # the hex answer has a duration; drop it
    cloud.submit()
    cloud.clock.advance(31)
    original = cloud.emulator._completed_body

    def without_duration(task: object) -> dict[str, object]:
        body = original(task)  # type: ignore[arg-type]
        body["data"].pop("duration")
        return body

    cloud.emulator._completed_body = without_duration  # type: ignore[method-assign]
    assert cloud.poll().completed == 1
    (note,) = cloud.notifications()
    assert note["duration_seconds"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("label", ["text/html", "audio/mpeg", "application/octet-stream"])
def test_a_web_page_served_as_the_song_is_retried_then_fails_and_is_never_stored(
    cloud: Cloud, label: str
) -> None:
    cloud.emulator.faults.not_audio = label
    cloud.submit()
    cloud.clock.advance(31)
    note = poll_until_ended(cloud)
    assert note["status"] == "FAILED"
    assert f"({MAX_DOWNLOAD_FAILURES} attempts)" in note["error"]
    assert "HTML page" in note["error"] or "text/html" in note["error"]
    assert note["song"] is None
    assert songs_in_bucket(cloud) == [], "a page is never stored as a song"


def test_a_link_to_an_internal_address_fails_the_job_at_once(cloud: Cloud) -> None:
    cloud.emulator.faults.audio_link = "http://169.254.169.254/latest/meta-data/"
    note = failed_at_once(cloud)
    assert "neither the API's nor one of AUDIO_HOSTS" in note["error"]
    assert cloud.emulator.downloads == []
    assert songs_in_bucket(cloud) == []


def test_a_redirect_to_another_host_is_refused(cloud: Cloud) -> None:
    cloud.emulator.faults.redirect_to = "http://127.0.0.2:9/secret"
    note = failed_at_once(cloud)
    assert "127.0.0.2" in note["error"]
    assert songs_in_bucket(cloud) == []


def test_a_song_over_the_size_limit_fails_with_the_limit_named(cloud: Cloud) -> None:
    settings = dataclasses.replace(cloud.services.settings, max_song_bytes=20_000)
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    cloud.emulator.audio_size = 50_000
    cloud.submit()
    cloud.clock.advance(31)
    note = poll_until_ended(cloud)
    assert note["status"] == "FAILED"
    assert "larger than MAX_SONG_BYTES (20000 bytes)" in note["error"]
    assert songs_in_bucket(cloud) == []


def test_a_slow_drip_download_stops_at_its_deadline_and_fails_after_a_few(cloud: Cloud) -> None:
    settings = dataclasses.replace(cloud.services.settings, download_deadline_seconds=0.3)
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    cloud.emulator.audio_size = len(cloud.emulator.audio_bytes(cloud.emulator.create_task({}))) * 4
    cloud.emulator.faults.drip_seconds = 0.15
    job_id = cloud.submit()
    cloud.clock.advance(31)
    cloud.poll()
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert (row.state, row.download_failures) == (JobState.PENDING, 1)
    cloud.clock.advance(60)
    note = poll_until_ended(cloud)
    assert "took longer than 0.3 s (DOWNLOAD_DEADLINE_SECONDS)" in note["error"]


def test_a_download_that_works_the_second_time_completes(cloud: Cloud) -> None:
    cloud.emulator.faults.not_audio = "text/html"
    job_id = cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().retry_later == 1
    cloud.emulator.faults.not_audio = ""
    cloud.clock.advance(60)
    assert cloud.poll().completed == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.COMPLETED


def test_a_status_answer_over_its_size_limit_fails_clearly(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(music_api, "MAX_STATUS_BYTES", 10_000)
    cloud.emulator.status_shape = "hex"  # the song in the answer: over 10 kB of hex
    note = failed_at_once(cloud)
    assert "status answer is larger than" in note["error"]
    assert "must come as a link" in note["error"]


def test_minimax_s_own_answer_is_read_to_the_end(cloud: Cloud) -> None:
    cloud.emulator.status_shape = "minimax"
    job_id = cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().completed == 1
    (note,) = cloud.notifications()
    assert note["duration_seconds"] == 1.0, "extra_info.music_duration, in ms"
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.task_id is not None
    assert row.song_bytes == len(cloud.emulator.audio_bytes(row.task_id))


def test_a_task_minimax_refuses_fails_with_its_message(cloud: Cloud) -> None:
    cloud.emulator.status_shape = "minimax"
    cloud.emulator.faults.fail_tasks = True
    note = failed_at_once(cloud)
    assert "input new_sensitive (MiniMax status code 1026)" in note["error"]


def test_a_signed_download_link_never_shows_its_query(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    """A link's query is its signature: a failed download's reason drops it everywhere."""
    secret = "X-Amz-Signature=0123456789abcdef"
    cloud.emulator.faults.audio_link = f"{API_URL}/files/song.mp3?{secret}"
    cloud.services.api.downloads = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(500))
    )
    caplog.set_level(logging.DEBUG)  # httpx's own lines too, at any level a function sets
    job_id = cloud.submit()
    cloud.clock.advance(31)
    note = poll_until_ended(cloud)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.FAILED
    assert row.error is not None
    assert "500 Internal Server Error" in row.error
    assert f"{API_URL}/files/song.mp3?…" in row.error
    for text in (row.error, json.dumps(note), caplog.text):
        assert "0123456789abcdef" not in text
