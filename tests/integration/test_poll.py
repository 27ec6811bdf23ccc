"""Polling: songs saved byte for byte, every job ended once and announced once."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from local_cloud.emulator import STATUS_SHAPES
from lyrics_to_song.check_timing import likely_window
from lyrics_to_song.data.pace import SLOW_DOWN_SECONDS
from lyrics_to_song.data.rows import JobState, Row
from lyrics_to_song.follow import ACCOUNT_RETRY_STEPS, MAX_BAD_BODIES, PollReport, process_row
from lyrics_to_song.poll import poll_due
from tests.integration.moto_cloud import Cloud
from tests.support import seed_row


def test_a_finished_song_is_saved_marked_and_announced(cloud: Cloud) -> None:
    job_id = cloud.submit(request_id="order-9", sample_rate=32000, bitrate=128000)
    cloud.clock.advance(31)
    report = cloud.poll()
    assert (report.completed, report.notified) == (1, 1)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.COMPLETED
    assert row.notified
    assert row.song_key == f"songs/order-9-{row.task_id}.mp3"
    s3 = cloud.stack.client("s3")
    obj = s3.get_object(Bucket=cloud.stack.songs_bucket, Key=row.song_key)
    assert obj["Body"].read() == cloud.emulator.audio_bytes(row.task_id or "")
    assert obj["ContentType"] == "audio/mpeg"
    assert obj["Metadata"] == {
        "job-id": job_id,
        "task-id": row.task_id,
        "model": "minimax-music",
        "source": "sqs:order-9",
    }
    (note,) = cloud.notifications()
    assert note["status"] == note["_status_attribute"] == "COMPLETED"
    assert (note["job_id"], note["task_id"], note["source"]) == (job_id, row.task_id, "sqs:order-9")
    assert note["song"]["s3_uri"] == f"s3://{cloud.stack.songs_bucket}/{row.song_key}"
    url = urlparse(note["song"]["url"])
    assert url.path.endswith(row.song_key)
    assert "Expires=" in url.query, "the link is presigned and expires"
    assert note["duration_seconds"] == 1.0
    assert note["error"] is None
    # It has left the due index: the next run has nothing to do.
    assert cloud.poll() == PollReport()


def test_a_running_task_is_checked_only_when_it_can_be_ready_then_often_then_less(
    cloud: Cloud,
) -> None:
    cloud.emulator.faults.never_finish = True
    job_id = cloud.submit()
    window = likely_window([], cloud.services.settings.typical_song_seconds)
    submitted = cloud.clock.now

    def row_now() -> Row:
        row = cloud.services.table.get(job_id)
        assert row is not None
        return row

    assert cloud.poll().due == 0, "not due before the first poll delay"
    cloud.clock.advance(cloud.services.settings.first_poll_delay_seconds)
    report = cloud.poll()
    assert (report.too_early, report.status_checks) == (1, 0), "no request before the window"
    assert row_now().due_at == pytest.approx(submitted + window.earliest)
    cloud.clock.now = submitted + window.earliest
    assert cloud.poll().running == 1
    assert row_now().polls == 1
    assert row_now().due_at == pytest.approx(cloud.clock.now + window.interval)
    gaps = []
    while cloud.clock.now - submitted < window.end + 120:
        cloud.clock.now = row_now().due_at or 0.0
        before = cloud.clock.now
        assert cloud.poll().running == 1
        gaps.append((before - submitted, (row_now().due_at or 0.0) - before))
    in_window = [gap for age, gap in gaps if age < window.end]
    after = [gap for age, gap in gaps if age >= window.end]
    assert in_window == [pytest.approx(window.interval)] * len(in_window)
    assert after == sorted(after), "sparser after it"
    assert after[-1] > 4 * window.interval
    assert len(cloud.emulator.status_calls) == row_now().polls
    assert cloud.notifications() == []


def test_a_failed_task_ends_failed_with_the_apis_reason(cloud: Cloud) -> None:
    cloud.emulator.faults.fail_tasks = True
    job_id = cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().failed == 1
    (note,) = cloud.notifications()
    assert note["status"] == "FAILED"
    assert note["job_id"] == job_id
    assert "lyrics rejected by moderation" in note["error"]
    assert note["song"] is None


def test_a_task_that_never_finishes_times_out(cloud: Cloud) -> None:
    cloud.emulator.faults.never_finish = True
    cloud.submit()
    limit = cloud.services.settings.max_task_age_seconds
    cloud.clock.advance(limit - 10)
    assert cloud.poll().running == 1
    cloud.clock.advance(400)
    assert cloud.poll().timed_out == 1
    (note,) = cloud.notifications()
    assert note["status"] == "TIMED_OUT"
    assert f"within {limit} seconds" in note["error"]


@pytest.mark.parametrize("shape", STATUS_SHAPES)
def test_every_known_answer_shape_gives_the_same_song(cloud: Cloud, shape: str) -> None:
    cloud.emulator.status_shape = shape
    job_id = cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().completed == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.song_key
    data = (
        cloud.stack.client("s3")
        .get_object(Bucket=cloud.stack.songs_bucket, Key=row.song_key)["Body"]
        .read()
    )
    assert data == cloud.emulator.audio_bytes(row.task_id or "")


def test_an_expired_audio_link_fails_the_job(cloud: Cloud) -> None:
    cloud.submit()
    cloud.emulator.faults.expire_audio = True
    cloud.clock.advance(31)
    assert cloud.poll().failed == 1
    (note,) = cloud.notifications()
    assert "download link no longer works (HTTP 403)" in note["error"]


def test_malformed_status_answers_are_retried_then_fail_the_job(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)
    cloud.emulator.faults.malformed = MAX_BAD_BODIES * 3  # every call, including in-call retries
    for _ in range(MAX_BAD_BODIES - 1):
        assert cloud.poll().retry_later == 1
        cloud.clock.advance(60)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.PENDING
    assert row.bad_bodies == MAX_BAD_BODIES - 1
    assert cloud.poll().failed == 1
    (note,) = cloud.notifications()
    assert f"could not be read {MAX_BAD_BODIES} times in a row" in note["error"]


def test_one_malformed_answer_among_good_ones_costs_nothing(cloud: Cloud) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)
    cloud.emulator.faults.malformed = 1
    assert cloud.poll().retry_later == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.bad_bodies == 1
    interval = likely_window([], cloud.services.settings.typical_song_seconds).interval
    assert row.due_at == pytest.approx(cloud.clock.now + interval), "asked again at the pace"
    cloud.clock.now = row.due_at or 0.0
    assert cloud.poll().completed == 1
    assert [n["status"] for n in cloud.notifications()] == ["COMPLETED"]


def test_a_bad_key_keeps_the_task_pending(cloud: Cloud) -> None:
    job_id = cloud.submit()
    cloud.emulator.api_key = "aio_rotated"
    cloud.clock.advance(cloud.services.settings.max_task_age_seconds + 1)
    assert cloud.poll().retry_later == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.PENDING
    assert cloud.notifications() == []


@pytest.mark.parametrize("push_back", ["rate limit", "bad key"])
def test_the_run_takes_no_more_tasks_once_the_api_pushes_back(cloud: Cloud, push_back: str) -> None:
    for i in range(5):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    key = cloud.emulator.api_key
    if push_back == "rate limit":
        cloud.emulator.faults.rate_limit = 1000  # every call, retries included
    else:
        cloud.emulator.api_key = "aio_rotated"
    report = cloud.poll(workers=1)
    assert report.api_pushed_back
    assert (report.due, report.retry_later) == (1, 1)
    still_due, _ = cloud.services.table.due(cloud.clock.now, 100)
    assert len(still_due) == 4, "the other tasks were not asked about; the next run takes them"

    cloud.emulator.faults.rate_limit = 0
    cloud.emulator.api_key = key
    cloud.clock.advance(ACCOUNT_RETRY_STEPS * cloud.services.settings.poll_backoff_seconds + 1)
    assert cloud.poll().completed == 5


def test_a_rate_limit_on_a_status_check_lowers_the_pace_for_a_while(cloud: Cloud) -> None:
    cloud.services.status_budget = dataclasses.replace(cloud.services.status_budget, per_minute=80)
    for i in range(3):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    cloud.emulator.faults.rate_limit = 1
    report = cloud.poll(workers=1)
    assert (report.api_pushed_back, report.status_checks, report.completed) == (True, 1, 0)
    assert len(cloud.emulator.status_calls) == 1, "a status check is one request, never retried"
    budget = cloud.services.status_budget

    def room_in_window(start: float) -> int:
        taken = 0
        while budget.take(start):
            taken += 1
        return taken

    half = budget.per_window // 2
    later = budget.next_window(cloud.clock.now)
    assert room_in_window(later) == budget.per_window - half, "the coming windows hold half"
    assert room_in_window(later + SLOW_DOWN_SECONDS) == budget.per_window, "then the full pace"


def test_status_checks_stay_within_the_budget_with_two_runs_at_once(cloud: Cloud) -> None:
    cloud.services.status_budget = dataclasses.replace(cloud.services.status_budget, per_minute=80)
    for i in range(20):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    per_window = cloud.services.status_budget.per_window
    assert per_window < 20
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: cloud.poll(), range(2))
    assert len(cloud.emulator.status_calls) == per_window, "both runs shared one budget"
    assert first.status_checks + second.status_checks == per_window
    assert first.budget_spent or second.budget_spent
    still_due, _ = cloud.services.table.due(cloud.clock.now, 100)
    assert len(still_due) == 20 - per_window, "the others wait in their place, unasked"
    for _ in range(20 // per_window + 1):  # the next windows take the rest
        cloud.clock.now = cloud.services.status_budget.next_window(cloud.clock.now)
        cloud.poll()
    assert [r.state for r in cloud.rows()].count(JobState.COMPLETED) == 20
    assert max(cloud.emulator.status_calls_per_minute().values()) <= 80


def test_a_submission_cut_short_by_a_crash_ends_as_unknown(cloud: Cloud) -> None:
    seed_row(
        cloud.services.table,
        cloud.services.budget,
        "job-crashed",
        now=cloud.clock.now,
        lease_seconds=cloud.services.settings.submit_lease_seconds,
    )
    assert cloud.poll().due == 0, "still within the submit lease"
    cloud.clock.advance(cloud.services.settings.submit_lease_seconds + 1)
    assert cloud.poll().unknown == 1
    (note,) = cloud.notifications()
    assert note["status"] == "UNKNOWN"
    assert "not sent again" in note["error"]
    assert cloud.emulator.submissions == []


def test_two_overlapping_runs_take_a_task_once(cloud: Cloud) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)
    (due,), _ = cloud.services.table.due(cloud.clock.now, 10)
    first = cloud.services.table.claim(job_id, due[1], cloud.clock.now + 300)
    second = cloud.services.table.claim(job_id, due[1], cloud.clock.now + 300)
    assert first is not None
    assert second is None
    report = PollReport()
    process_row(cloud.services, first, report)
    assert report.completed == 1
    assert cloud.poll() == PollReport()
    assert len(cloud.notifications()) == 1
    assert len(cloud.emulator.downloads) == 1


def test_a_crash_before_the_notification_is_finished_by_the_next_run(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)

    def crash(**kwargs: object) -> None:
        raise ConnectionError("the function died here")

    with monkeypatch.context() as patched:
        patched.setattr(cloud.services.sns, "publish", crash)
        assert cloud.poll().errors == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.COMPLETED
    assert not row.notified
    assert cloud.notifications() == []
    cloud.clock.advance(cloud.services.settings.poll_lease_seconds + 1)
    report = cloud.poll()
    assert (report.notified, report.completed) == (1, 0)
    assert [n["status"] for n in cloud.notifications()] == ["COMPLETED"]
    assert len(cloud.emulator.downloads) == 1, "the song is not fetched twice"


def test_a_notice_sent_again_after_a_crash_is_the_same_notice_but_for_its_link(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)

    def crash(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the function died after sending, before recording it")

    with monkeypatch.context() as patched:
        patched.setattr(cloud.services.table, "mark_notified", crash)
        assert cloud.poll().errors == 1
    cloud.clock.advance(cloud.services.settings.poll_lease_seconds + 1)
    assert cloud.poll().notified == 1
    first, again = cloud.notifications()
    assert first["notice_id"] == again["notice_id"] == first["_notice_attribute"]
    assert first["notice_id"] == f"{job_id}_1"
    for note in (first, again):  # the link is signed anew on every send
        del note["song"]["url"]
    assert first == again, "every other field, times included, is sent exactly as stored"
    first_event, event_again = cloud.events()
    assert first_event["detail"]["notice_id"] == event_again["detail"]["notice_id"] == f"{job_id}_1"
    assert first_event["detail"]["finished_at"] == event_again["detail"]["finished_at"]


def test_only_due_rows_are_read(cloud: Cloud) -> None:
    for i in range(12):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    cloud.poll()
    assert [r.state for r in cloud.rows()].count(JobState.COMPLETED) == 12
    cloud.submit(request_id="late")
    cloud.clock.advance(31)
    due, _ = cloud.services.table.due(cloud.clock.now, 100)
    assert len(due) == 1, "finished rows are not in the index"


def test_polling_stops_taking_tasks_when_time_runs_short(cloud: Cloud) -> None:
    for i in range(3):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    budget = iter([900_000, 10_000, 10_000])
    report = poll_due(cloud.services, lambda: next(budget))
    assert report.completed == 1
    assert report.stopped_early
    assert cloud.poll().completed == 2


def test_the_poll_follows_at_most_poll_concurrency_tasks_at_once(cloud: Cloud) -> None:
    for i in range(7):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    cloud.emulator.most_at_once = 0  # the submissions above came one by one
    cloud.emulator.faults.slow_seconds = 0.2  # long enough for the workers to overlap
    report = cloud.poll(workers=3)
    assert report.completed == 7
    assert cloud.emulator.most_at_once == 3


def test_a_failed_upload_is_retried_on_a_later_poll(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)

    def throttled(**kwargs: object) -> object:
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "reduce your rate"}}, "PutObject"
        )

    with monkeypatch.context() as patched:
        patched.setattr(cloud.services.s3, "put_object", throttled)
        assert cloud.poll().retry_later == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.PENDING
    assert cloud.notifications() == []
    cloud.clock.advance(2 * cloud.services.settings.poll_backoff_seconds)
    assert cloud.poll().completed == 1
    assert len(cloud.notifications()) == 1


def test_one_tasks_unexpected_error_does_not_stop_the_others(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cloud.submit(request_id="first")
    cloud.submit(request_id="second")
    cloud.clock.advance(31)
    broken_task = cloud.services.table.get(first).task_id  # type: ignore[union-attr]
    real_status = cloud.services.api.task_status

    def status(task_id: str) -> object:
        if task_id == broken_task:
            raise RuntimeError("bug")
        return real_status(task_id)

    with monkeypatch.context() as patched:
        patched.setattr(cloud.services.api, "task_status", status)
        report = cloud.poll()
    assert (report.errors, report.completed) == (1, 1)
    assert cloud.poll().due == 0, "the broken one is looked at again later"
    row = cloud.services.table.get(first)
    assert row is not None
    assert (row.state, row.bad_bodies) == (JobState.PENDING, 1), "counted as a bad answer"
    cloud.clock.advance(cloud.services.settings.poll_lease_seconds + 1)
    assert cloud.poll().completed == 1


def _ready_but_raising(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, error: Exception) -> str:
    """A submitted job whose song is ready, and whose every status check raises `error`."""
    job_id = cloud.submit()
    cloud.clock.advance(31)

    def status(task_id: str) -> object:
        raise error

    monkeypatch.setattr(cloud.services.api, "task_status", status)
    return job_id


class _Odd(Exception):
    """An exception type nothing in the package names."""


@pytest.mark.parametrize("raised", [RecursionError, ValueError, KeyError, TypeError, _Odd])
def test_a_status_check_that_always_raises_still_ends_the_job(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, raised: type[Exception]
) -> None:
    """Whatever a status check raises counts as a bad answer: the job fails after a few."""
    job_id = _ready_but_raising(cloud, monkeypatch, raised("built to hurt"))
    for _ in range(MAX_BAD_BODIES - 1):
        assert cloud.poll().retry_later == 1
        cloud.clock.advance(60)
    assert cloud.poll().failed == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.FAILED
    (note,) = cloud.notifications()
    assert f"unexpected {raised.__name__} while following the task" in note["error"]


def test_a_job_past_its_age_ends_timed_out_whatever_its_status_check_raises(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _ready_but_raising(cloud, monkeypatch, RecursionError("maximum recursion depth"))
    assert cloud.poll().retry_later == 1
    cloud.clock.advance(cloud.services.settings.max_task_age_seconds)
    report = cloud.poll()
    assert report.timed_out == 1, "in the first run that sees it past its age"
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert (row.state, row.notified) == (JobState.TIMED_OUT, True)


def test_every_log_line_about_a_task_names_its_job_and_task(cloud: Cloud) -> None:
    for i in range(4):
        cloud.submit(request_id=f"r{i}")
    cloud.clock.advance(31)
    function_logger = logging.getLogger("lyrics-to-song")
    lines = io.StringIO()
    capture = logging.StreamHandler(lines)
    capture.setFormatter(function_logger.handlers[0].formatter)
    function_logger.addHandler(capture)
    level = function_logger.level  # a local Lambda's cold start may have set another one
    function_logger.setLevel(logging.INFO)
    try:
        assert cloud.poll().completed == 4
    finally:
        function_logger.removeHandler(capture)
        function_logger.setLevel(level)
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    saved = [r for r in records if r["message"] in ("song saved", "notification sent")]
    assert len(saved) == 8
    rows = {r.job_id: r.task_id for r in cloud.rows()}
    for record in saved:
        assert rows[record["job_id"]] == record["task_id"], "the keys of this task, not another's"


def test_server_errors_are_not_mistaken_for_unreadable_answers(cloud: Cloud) -> None:
    job_id = cloud.submit()
    cloud.clock.advance(31)
    cloud.emulator.faults.server_error = MAX_BAD_BODIES + 1  # every check
    for _ in range(MAX_BAD_BODIES + 1):
        assert cloud.poll().retry_later == 1
        cloud.clock.advance(60)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.PENDING, "503s are waited out until the task is too old"
    assert row.bad_bodies == 0
    assert cloud.poll().completed == 1


def test_each_ended_job_is_an_eventbridge_event_too(cloud: Cloud) -> None:
    cloud.emulator.faults.fail_tasks = True
    failed = cloud.submit(request_id="fails")
    cloud.emulator.faults.fail_tasks = False
    done = cloud.submit(request_id="works")
    cloud.clock.advance(31)
    assert cloud.poll().notified == 2
    events = {e["detail"]["job_id"]: e for e in cloud.events()}
    assert set(events) == {failed, done}
    for event in events.values():
        assert event["source"] == "lyrics-to-song"
        assert event["detail-type"] == "Song Job Ended"
    assert events[failed]["detail"]["status"] == "FAILED"
    notes = {n["job_id"]: n for n in cloud.notifications()}
    for job_id, event in events.items():
        note = notes[job_id]
        note.pop("_status_attribute")
        note.pop("_notice_attribute")
        note.pop("_tenant_attribute")
        assert event["detail"] == note, "the event carries the notification's body"


def test_a_sidecar_lies_next_to_each_song(cloud: Cloud) -> None:
    job_id = cloud.submit(request_id="with-sidecar", bitrate=64000, metadata={"customer": "c9"})
    cloud.clock.advance(31)
    cloud.poll()
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.song_key is not None
    (note,) = cloud.notifications()
    sidecar_uri = note["song"]["sidecar_s3_uri"]
    assert sidecar_uri == f"s3://{cloud.stack.songs_bucket}/{row.song_key[:-4]}.json"
    obj = cloud.stack.client("s3").get_object(
        Bucket=cloud.stack.songs_bucket, Key=sidecar_uri.split("/", 3)[3]
    )
    assert obj["ContentType"] == "application/json"
    sidecar = json.loads(obj["Body"].read())
    assert sidecar["task_id"] == row.task_id
    assert sidecar["request"]["bitrate"] == 64000
    assert sidecar["request"]["metadata"] == {"customer": "c9"}
    assert sidecar["audio"]["bytes"] == row.song_bytes
    assert sidecar["audio"]["duration_seconds"] == 1.0
    assert sidecar["timings"]["seconds_to_song"] == pytest.approx(31, abs=1)


@pytest.mark.parametrize("ended_by", ["poll", "submit"])
def test_a_run_never_announces_a_job_another_is_announcing(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, ended_by: str
) -> None:
    real_publish = cloud.services.sns.publish
    meanwhile: list[PollReport] = []

    def publish_while_another_run_sweeps(**kwargs: object) -> object:
        if not meanwhile:
            meanwhile.append(cloud.poll())
        return real_publish(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cloud.services.sns, "publish", publish_while_another_run_sweeps)
    if ended_by == "poll":
        cloud.submit()
        cloud.clock.advance(31)
        assert cloud.poll().completed == 1
    else:  # an answer that may hide an accepted song: the submit function ends it UNKNOWN
        cloud.emulator.faults.server_error = 1
        cloud.emulator.faults.server_error_status = 502
        cloud.submit()
    assert [report.due for report in meanwhile] == [0], "held by the run announcing it"
    assert len(cloud.notifications()) == 1


def test_a_song_from_a_file_with_a_very_long_non_ascii_name_is_saved(cloud: Cloud) -> None:
    # S3 keeps 2 KB of user metadata; this source alone percent-encodes to over 9 KB.
    name = "歌" * 1000 + ".txt"
    job_id = "job-long-name"
    seed_row(
        cloud.services.table,
        None,
        job_id,
        source=f"s3://{cloud.stack.lyrics_bucket}/{name}",
        task_id=cloud.emulator.create_task({}),
        now=cloud.clock.now,
    )
    cloud.clock.advance(31)
    assert cloud.poll().completed == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.song_key is not None
    head = cloud.stack.client("s3").head_object(Bucket=cloud.stack.songs_bucket, Key=row.song_key)
    assert sum(len(k) + len(v) for k, v in head["Metadata"].items()) <= 2048
    assert head["Metadata"]["job-id"] == job_id


def test_a_huge_retry_after_on_a_status_check_never_keeps_a_job_open(cloud: Cloud) -> None:
    """A 429 asking to wait 317 years: the job is looked at again by its age limit, and
    ends TIMED_OUT then, its place in flight free."""
    cloud.emulator.faults.never_finish = True
    job_id = cloud.submit()
    cloud.clock.advance(31)
    cloud.emulator.faults.rate_limit = 1000
    cloud.emulator.faults.retry_after_seconds = 9_999_999_999
    assert cloud.poll().retry_later == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.due_at is not None
    started = row.submitted_at or row.created_at
    limit = cloud.services.settings.max_task_age_seconds
    assert row.due_at <= started + limit + 60, "not 317 years ahead"
    cloud.emulator.faults.rate_limit = 0
    cloud.clock.now = row.due_at
    assert cloud.poll().timed_out == 1


def test_a_failed_tasks_huge_error_is_clipped_and_the_job_announced_once(cloud: Cloud) -> None:
    """300 KB of error text would make a notice SNS refuses, and a job never told."""
    cloud.emulator.faults.fail_tasks = True
    cloud.emulator.faults.fail_message = "why " * 75_000 + "https://x.example/a?token=secret"
    job_id = cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().failed == 1
    (note,) = cloud.notifications()
    assert (note["job_id"], note["status"]) == (job_id, "FAILED")
    assert len(note["error"]) < 1100
    assert note["error"].endswith("characters, clipped)")
    assert "secret" not in json.dumps(note)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.notified
    assert row.error == note["error"]


def test_a_job_whose_ending_failed_to_announce_is_not_ended_and_counted_twice(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ends a job past its age, then dies announcing it; the error path, holding
    the row as it was read, tries to end it again: the second end is refused, so the
    spend counters count one ending (the row keeps its lease as its due time)."""
    from lyrics_to_song import announce
    from lyrics_to_song.data.caps import day_of
    from lyrics_to_song.data.spend import SpendLedger

    cloud.emulator.faults.never_finish = True
    job_id = cloud.submit()
    cloud.clock.advance(cloud.services.settings.max_task_age_seconds + 5)

    def lost(*args: object, **kwargs: object) -> str:
        raise ConnectionError("SNS out of reach")

    monkeypatch.setattr(announce, "publish", lost)
    report = cloud.poll()
    assert report.errors == 1
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert (row.state, row.notified) == (JobState.TIMED_OUT, False), "ended, announced later"
    ledger = SpendLedger(cloud.services.budget.client, cloud.services.budget.table_name)
    (today,) = ledger.days([day_of(cloud.clock.now)])
    ended: Counter[str] = Counter()
    for counts in today.by_model.values():
        ended.update(counts.ended)
    assert ended == Counter({"TIMED_OUT": 1}), "one ending, counted once"
    charged = sum(c.charged_credits for c in today.by_model.values())
    assert charged == cloud.services.settings.price.credits, "its charge counted once"
