"""Lyric files and requests through the whole local stack, as a user would push them."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from local_cloud.receiver import WebhookReceiver, failing_first
from tests.e2e.local_pipeline import Pipeline, mp3_info
from tests.support import s3_notification, song_request

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:soundtrack"

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "neon-rain.txt"


def test_an_uploaded_lyric_file_becomes_one_song_and_one_notification(pipeline: Pipeline) -> None:
    pipeline.upload("neon-rain.txt", EXAMPLE.read_bytes())
    (note,) = pipeline.run(expected=1)
    assert note["status"] == "COMPLETED"
    assert note["source"] == f"s3://{pipeline.stack.lyrics_bucket}/neon-rain.txt"
    assert note["song"]["s3_uri"].startswith(f"s3://{pipeline.stack.songs_bucket}/songs/neon-rain-")
    data = pipeline.song(note)
    assert data == pipeline.emulator.audio_bytes(note["task_id"])
    info = mp3_info(data)
    assert (info.sample_rate, info.bitrate) == (44100, 128000)  # from the file's front matter
    assert info.length == pytest.approx(1.0, abs=0.1)
    (submission,) = pipeline.emulator.submissions
    assert submission["prompt"].startswith("dreamy synth-pop")
    assert submission["lyrics"].startswith("[Intro]")


def test_a_queued_request_becomes_a_song(pipeline: Pipeline) -> None:
    pipeline.enqueue(song_request(request_id="order-77", sample_rate=24000, bitrate=64000))
    (note,) = pipeline.run(expected=1)
    assert note["status"] == "COMPLETED"
    assert note["source"] == "sqs:order-77"
    info = mp3_info(pipeline.song(note))
    assert (info.sample_rate, info.bitrate) == (24000, 64000)


def test_a_json_lyric_file_and_an_odd_name(pipeline: Pipeline) -> None:
    body = json.dumps({"prompt": "lullaby, music box", "lyrics": "[Verse]\nSleep now"}).encode()
    pipeline.upload("inbox/Canción de cuna + coda (v2).json", body)
    pipeline.upload("notes/readme.md", b"not a lyric file: it gets a FAILED notice, unpaid")
    notes = {n["source"].rsplit("/", 1)[-1]: n for n in pipeline.run(expected=2)}
    refused = notes["readme.md"]
    assert (refused["status"], refused["error"]) == (
        "FAILED",
        "notes/readme.md is not a lyric file: the name must end in .txt or .json (in any case)",
    )
    assert len(pipeline.emulator.submissions) == 1, "unpaid"
    note = notes["Canción de cuna + coda (v2).json"]
    assert note["status"] == "COMPLETED"
    assert note["source"].endswith("/inbox/Canción de cuna + coda (v2).json")
    assert "/songs/Cancion-de-cuna-coda-v2-" in note["song"]["s3_uri"]
    assert pipeline.emulator.submissions[0]["prompt"] == "lullaby, music box"


def test_a_redelivered_message_never_pays_twice(pipeline: Pipeline) -> None:
    request = song_request(request_id="once-only")
    pipeline.enqueue(request)
    pipeline.enqueue(request)  # a producer retrying
    pipeline.upload("twice.txt", b"la la")
    # S3 delivering the same notification again (at-least-once delivery).
    etag = pipeline.stack.client("s3").head_object(
        Bucket=pipeline.stack.lyrics_bucket, Key="twice.txt"
    )["ETag"]
    again = s3_notification(pipeline.stack.lyrics_bucket, "twice.txt", etag.strip('"'), 5)
    pipeline.enqueue(again, queue_url=pipeline.stack.lyric_files_queue_url)
    notes = pipeline.run(expected=2)
    assert sorted(n["source"].rsplit("/", 1)[-1] for n in notes) == ["sqs:once-only", "twice.txt"]
    assert len(pipeline.emulator.submissions) == 2


def test_a_failing_task_is_notified_as_failed(pipeline: Pipeline) -> None:
    pipeline.emulator.faults.fail_tasks = True
    pipeline.enqueue(song_request())
    (note,) = pipeline.run(expected=1)
    assert note["status"] == "FAILED"
    assert "moderation" in note["error"]
    assert note["song"] is None


@pytest.mark.parametrize("function_env", [{"MAX_TASK_AGE_SECONDS": "2"}])
def test_a_task_that_takes_too_long_times_out(pipeline: Pipeline) -> None:
    pipeline.emulator.faults.never_finish = True
    pipeline.enqueue(song_request())
    (note,) = pipeline.run(expected=1)
    assert note["status"] == "TIMED_OUT"
    assert "within 2 seconds" in note["error"]


def test_bad_input_is_notified_and_costs_nothing(pipeline: Pipeline) -> None:
    pipeline.upload("empty.txt", b"")
    pipeline.upload("binary.txt", b"\x00\x01\x02")
    pipeline.enqueue({"prompt": "x"})
    notes = pipeline.run(expected=3)
    assert sorted(n["status"] for n in notes) == ["FAILED"] * 3
    errors = " | ".join(sorted(n["error"] for n in notes))
    assert "empty.txt is empty" in errors
    assert "binary.txt is a binary file" in errors
    assert "'lyrics' is required" in errors
    assert pipeline.emulator.submissions == []


def test_only_the_record_that_failed_goes_back_to_the_queue(pipeline: Pipeline) -> None:
    pipeline.enqueue(song_request(request_id="first", prompt="busy hour"))
    pipeline.enqueue(song_request(request_id="second"))
    pipeline.emulator.faults.rate_limit_prompt = "busy"  # every attempt of the first is refused
    batch = pipeline.runtime.deliver_jobs(retry_delay_seconds=0)
    assert batch.received == 2
    assert len(batch.failed) == 1
    assert [s["prompt"] for s in pipeline.emulator.submissions] == [song_request()["prompt"]]
    pipeline.emulator.faults.rate_limit_prompt = ""
    notes = pipeline.run(expected=2)
    assert sorted(n["source"] for n in notes) == ["sqs:first", "sqs:second"]
    assert len(pipeline.emulator.submissions) == 2


def test_s3_events_delivered_straight_to_the_function(pipeline: Pipeline) -> None:
    pipeline.stack.client("s3").put_object(
        Bucket=pipeline.stack.lyrics_bucket, Key="direct.txt", Body=b"hey"
    )
    etag = pipeline.stack.client("s3").head_object(
        Bucket=pipeline.stack.lyrics_bucket, Key="direct.txt"
    )["ETag"]
    event = s3_notification(pipeline.stack.lyrics_bucket, "direct.txt", etag.strip('"'), 3)
    assert pipeline.runtime.invoke("SubmitFunction", event) == {"outcomes": ["submitted"]}
    # The bucket also notified the queue: the same file through it pays nothing more.
    (note,) = pipeline.run(expected=1)
    assert note["status"] == "COMPLETED"
    assert len(pipeline.emulator.submissions) == 1


def test_the_api_key_never_appears_in_any_output(
    pipeline: Pipeline, capfd: pytest.CaptureFixture[str]
) -> None:
    pipeline.runtime.extra_env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    pipeline.runtime.cold_start("SubmitFunction")
    pipeline.runtime.cold_start("PollFunction")
    function_logger = logging.getLogger("lyrics-to-song")
    lines = io.StringIO()
    capture = logging.StreamHandler(lines)
    capture.setFormatter(function_logger.handlers[0].formatter)  # the functions' JSON lines
    function_logger.addHandler(capture)
    try:
        pipeline.emulator.faults.rate_limit = 1
        pipeline.enqueue(song_request())
        pipeline.enqueue({"prompt": "no lyrics"})
        notes = pipeline.run(expected=2)
    finally:
        function_logger.removeHandler(capture)
    out, err = capfd.readouterr()
    logged = lines.getvalue()
    everything = logged + out + err + json.dumps(notes)
    assert "song submitted" in logged, "the logs were captured"
    assert "rate limit" in logged, "the retried 429 was logged"
    assert pipeline.emulator.api_key not in everything


def test_metrics_are_published_for_each_step(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.enqueue(song_request())
    pipeline.enqueue({"lyrics": "no prompt"})
    pipeline.run(expected=2)
    emitted: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LyricsToSong"
                emitted[metric["Name"]] = emitted.get(metric["Name"], 0) + sum(blob[metric["Name"]])
    assert emitted["SongsSubmitted"] == 1
    assert emitted["SongsCompleted"] == 1
    assert emitted["SongsFailed"] == 1
    assert emitted["SongsRejected"] == 1
    assert 0 < emitted["TimeToSong"] < 30


def test_automation_gets_an_event_and_a_sidecar(pipeline: Pipeline) -> None:
    stack = pipeline.stack
    sqs, bridge = stack.client("sqs"), stack.client("events")
    queue = sqs.create_queue(QueueName=f"{stack.name}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["lyrics-to-song"], "detail": {"source": ["sqs:with-event"]}}
    bridge.put_rule(Name=f"{stack.name}-songs", EventPattern=json.dumps(pattern))
    bridge.put_targets(Rule=f"{stack.name}-songs", Targets=[{"Id": "q", "Arn": arn}])
    pipeline.enqueue(song_request(request_id="with-event"))
    (note,) = pipeline.run(expected=1)
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event = json.loads(message["Body"])
    assert event["detail-type"] == "Song Job Ended"
    assert event["detail"]["song"]["s3_uri"] == note["song"]["s3_uri"]
    bucket, _, key = note["song"]["sidecar_s3_uri"].removeprefix("s3://").partition("/")
    sidecar = json.loads(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert sidecar["request"]["request_id"] == "with-event"
    assert sidecar["audio"]["bytes"] == len(pipeline.song(note))


@pytest.mark.parametrize("function_env", [{"WEBHOOK_FIRST_RETRY_SECONDS": "1"}])
def test_a_webhook_that_fails_once_waits_on_its_queue_and_is_delivered(
    pipeline: Pipeline, function_env: dict[str, str]
) -> None:
    receiver = WebhookReceiver(pipeline.stack.webhook_secret(), answers=failing_first(1, 503))
    try:
        pipeline.enqueue(song_request(request_id="hooked", callback_url=receiver.url))
        (note,) = pipeline.run(expected=1)
        first = pipeline.runtime.deliver_webhooks()
        assert (first.received, len(first.failed)) == (1, 1), "the 503 leaves it on the queue"
        assert pipeline.runtime.deliver_webhooks().received == 0, "hidden until its next try"
        deadline = time.monotonic() + 10
        while not receiver.accepted() and time.monotonic() < deadline:
            pipeline.runtime.deliver_webhooks()
            time.sleep(0.2)
        assert [d.answered for d in receiver.deliveries] == [503, 200]
        assert all(d.verified for d in receiver.deliveries)
        assert list(receiver.accepted()) == [note["notice_id"]]
        assert pipeline.runtime.deliver_webhooks().received == 0, "deleted once delivered"
    finally:
        receiver.stop()


@pytest.mark.parametrize(("machines", "ticks"), [("", False), (MACHINE, True)])
def test_the_local_runtime_runs_the_heartbeats_schedule_only_with_state_machines_listed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, machines: str, ticks: bool
) -> None:
    """As on AWS, where the template enables the Heartbeats schedule only then."""
    runtime = pipeline.runtime
    monkeypatch.setitem(runtime.extra_env, "CALLBACK_STATE_MACHINES", machines)
    beats: list[dict[str, int]] = []
    monkeypatch.setattr(runtime, "run_heartbeats", lambda: beats.append({}))
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()  # 10 beats due: at least 3 under load
    runtime.serve(stop, schedule_seconds=3600, queue_seconds=0.05, heartbeat_seconds=0.2)
    assert (len(beats) >= 3) is ticks, beats
