"""Submission: the row before the money, one paid call per job, clear refusals."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lyrics_to_song.data.caps import day_of
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.errors import ErrorKind, RetryLater
from lyrics_to_song.intake import handle_message, handle_s3_event
from lyrics_to_song.music_api import MusicApiClient
from lyrics_to_song.payment import Outcome
from lyrics_to_song.services import api_key_source
from tests.conftest import API_URL
from tests.integration.moto_cloud import Cloud
from tests.support import s3_notification, song_request

LYRICS = (
    b"---\nprompt: sea shanty, choir\nbitrate: 64000\nsample_rate: 24000\n---\n"
    b"[Verse]\nHeave away\n"
)


def test_a_queued_request_is_submitted_once_and_recorded(cloud: Cloud) -> None:
    body = json.dumps(song_request(request_id="order-7", metadata={"customer": "c1"}))
    assert handle_message(cloud.services, body, "m1") == [Outcome.SUBMITTED]
    row = cloud.only_row()
    assert row.state is JobState.PENDING
    assert row.source == "sqs:order-7"
    assert row.task_id
    assert row.task_id in cloud.emulator.tasks
    assert json.loads(row.request_json or "")["metadata"] == {"customer": "c1"}
    assert row.due_at == pytest.approx(
        cloud.clock.now + cloud.services.settings.first_poll_delay_seconds
    )
    # The same request again (redelivery, or a producer retrying) pays nothing.
    assert handle_message(cloud.services, body, "m2") == [Outcome.DUPLICATE]
    assert len(cloud.emulator.submissions) == 1
    assert cloud.notifications() == []


def test_requests_without_request_id_are_deduplicated_by_content(cloud: Cloud) -> None:
    a = json.dumps(song_request())
    b = json.dumps(dict(reversed(list(song_request().items()))))  # same fields, other order
    c = json.dumps(song_request(lyrics="another song"))
    outcomes = [
        handle_message(cloud.services, body, f"m{i}")[0] for i, body in enumerate((a, b, c))
    ]
    assert outcomes == [Outcome.SUBMITTED, Outcome.DUPLICATE, Outcome.SUBMITTED]
    assert len(cloud.emulator.submissions) == 2


def test_a_lyric_file_is_read_and_its_front_matter_sent(cloud: Cloud) -> None:
    event = cloud.put_lyrics("shanty.txt", LYRICS)
    assert handle_message(cloud.services, json.dumps(event), "m1", from_bucket=True) == [
        Outcome.SUBMITTED
    ]
    assert cloud.emulator.submissions == [
        {
            "model": "minimax-music",
            "prompt": "sea shanty, choir",
            "lyrics": "[Verse]\nHeave away",
            "bitrate": 64000,
            "sample_rate": 24000,
        }
    ]
    assert cloud.only_row().source == f"s3://{cloud.stack.lyrics_bucket}/shanty.txt"


def test_the_prompt_can_come_from_object_metadata(cloud: Cloud) -> None:
    event = cloud.put_lyrics("plain.txt", b"la la la", Metadata={"prompt": "bossa nova"})
    handle_s3_event(cloud.services, event)
    assert cloud.emulator.submissions[0]["prompt"] == "bossa nova"


def test_two_records_for_one_file_in_one_batch_pay_once(cloud: Cloud) -> None:
    event = cloud.put_lyrics("twice.txt", LYRICS)
    event["Records"].append(event["Records"][0])
    assert handle_message(cloud.services, json.dumps(event), "m1", from_bucket=True) == [
        Outcome.SUBMITTED,
        Outcome.DUPLICATE,
    ]
    assert len(cloud.emulator.submissions) == 1


def test_a_notification_with_another_etag_does_not_make_the_same_file_a_new_job(
    cloud: Cloud,
) -> None:
    event = cloud.put_lyrics("forged.txt", LYRICS)
    assert handle_message(cloud.services, json.dumps(event), "m1", from_bucket=True) == [
        Outcome.SUBMITTED
    ]
    forged = s3_notification(cloud.stack.lyrics_bucket, "forged.txt", etag="0123456789abcdef")
    assert handle_message(cloud.services, json.dumps(forged), "m2", from_bucket=True) == [
        Outcome.DUPLICATE
    ]
    assert len(cloud.emulator.submissions) == 1, "paid once"
    assert len(cloud.rows()) == 1


def test_a_notification_for_another_bucket_is_refused_unread(cloud: Cloud) -> None:
    s3 = cloud.stack.client("s3")
    s3.create_bucket(Bucket="someone-elses")
    s3.put_object(Bucket="someone-elses", Key="theirs.txt", Body=LYRICS)
    event = s3_notification("someone-elses", "theirs.txt")
    assert handle_message(cloud.services, json.dumps(event), "m1", from_bucket=True) == [
        Outcome.REJECTED
    ]
    row = cloud.only_row()
    assert row.state is JobState.FAILED
    assert row.error == (
        f"s3://someone-elses/theirs.txt is not in the lyrics bucket "
        f"({cloud.stack.lyrics_bucket}): not read"
    )
    assert cloud.emulator.submissions == []


def test_a_file_with_spaces_and_unicode_in_its_name(cloud: Cloud) -> None:
    event = cloud.put_lyrics("my songs/Canción de cuna + coda.txt", b"duerme ya")
    assert handle_message(cloud.services, json.dumps(event), "m1", from_bucket=True) == [
        Outcome.SUBMITTED
    ]
    assert cloud.only_row().source.endswith("/my songs/Canción de cuna + coda.txt")


def test_bad_input_fails_the_job_with_a_reason_and_a_notification(cloud: Cloud) -> None:
    body = json.dumps(song_request(bitrate=100))
    assert handle_message(cloud.services, body, "m1") == [Outcome.REJECTED]
    row = cloud.only_row()
    assert row.state is JobState.FAILED
    assert row.notified
    assert row.error is not None
    assert "'bitrate' must be one of" in row.error
    (note,) = cloud.notifications()
    assert note["status"] == "FAILED"
    assert note["_status_attribute"] == "FAILED"
    assert "'bitrate' must be one of" in note["error"]
    assert cloud.emulator.submissions == []
    # Seen again, it is not notified again.
    assert handle_message(cloud.services, body, "m2") == [Outcome.DUPLICATE]
    assert cloud.notifications() == []


def test_a_message_that_is_not_a_request_fails_as_a_job(cloud: Cloud) -> None:
    assert handle_message(cloud.services, "hello?", "m1") == [Outcome.REJECTED]
    (note,) = cloud.notifications()
    assert "message body is not JSON" in note["error"]
    assert note["source"] == "sqs:message/m1"


def test_the_s3_test_event_is_skipped(cloud: Cloud) -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert handle_message(cloud.services, body, "m1") == [Outcome.SKIPPED]
    assert cloud.rows() == []


def test_an_oversized_file_is_refused_without_reading_it(cloud: Cloud) -> None:
    cap = cloud.services.settings.lyrics_max_bytes
    event = cloud.put_lyrics("huge.txt", b"la " * cap)
    handle_s3_event(cloud.services, event)
    assert cloud.only_row().error == (
        f"huge.txt is larger than {cap} bytes, the most a lyric file may be (LYRICS_MAX_BYTES)"
    ), "the words the command line uses too"
    assert cloud.emulator.submissions == []


def test_an_oversized_file_of_unknown_size_is_read_only_up_to_the_cap(cloud: Cloud) -> None:
    cap = cloud.services.settings.lyrics_max_bytes
    cloud.put_lyrics("big.txt", b"x" * (cap * 3))
    event = s3_notification(cloud.stack.lyrics_bucket, "big.txt", "e", size=None)
    handle_s3_event(cloud.services, event)
    assert f"larger than {cap} bytes" in (cloud.only_row().error or "")


def test_an_empty_file_is_refused(cloud: Cloud) -> None:
    event = cloud.put_lyrics("empty.txt", b"")
    event["Records"][0]["s3"]["object"].pop("size")
    handle_s3_event(cloud.services, event)
    assert cloud.only_row().error == "empty.txt is empty"


def test_a_file_deleted_before_it_was_read(cloud: Cloud) -> None:
    handle_s3_event(cloud.services, s3_notification(cloud.stack.lyrics_bucket, "gone.txt"))
    assert "no longer exists" in (cloud.only_row().error or "")


def test_an_api_refusal_fails_the_job_with_the_apis_reason(cloud: Cloud) -> None:
    body = json.dumps(song_request(sample_rate=16000))
    cloud.emulator.faults.server_error = 1
    cloud.emulator.faults.server_error_status = 400
    assert handle_message(cloud.services, body, "m1") == [Outcome.REJECTED]
    (note,) = cloud.notifications()
    assert note["status"] == "FAILED"
    assert "the API refused the request: API answered 400" in note["error"]


def test_rate_limits_are_waited_out_within_the_call(cloud: Cloud) -> None:
    cloud.emulator.faults.rate_limit = 2
    assert handle_message(cloud.services, json.dumps(song_request()), "m1") == [Outcome.SUBMITTED]
    assert len(cloud.emulator.submissions) == 1


def test_persistent_rate_limits_send_the_record_back_and_free_the_job(cloud: Cloud) -> None:
    cloud.emulator.faults.rate_limit = 3
    body = json.dumps(song_request())
    with pytest.raises(RetryLater):
        handle_message(cloud.services, body, "m1")
    assert cloud.rows() == [], "a refused submission leaves no row, so the redelivery may pay"
    assert handle_message(cloud.services, body, "m1") == [Outcome.SUBMITTED]
    assert len(cloud.emulator.submissions) == 1


@pytest.mark.parametrize("credits", [0, None])
def test_account_problems_keep_the_job_waiting(cloud: Cloud, credits: int | None) -> None:
    if credits == 0:
        cloud.emulator.credits = 0  # answered 200 with code 402 in the envelope
    else:
        cloud.emulator.api_key = "aio_rotated"  # our key is now wrong: 401
    body = json.dumps(song_request())
    with pytest.raises(RetryLater) as caught:
        handle_message(cloud.services, body, "m1")
    assert "402" in str(caught.value) if credits == 0 else "401" in str(caught.value)
    assert cloud.rows() == []
    assert cloud.notifications() == []


def test_a_server_error_on_submit_ends_as_unknown_and_is_not_resent(cloud: Cloud) -> None:
    cloud.emulator.faults.server_error = 1
    cloud.emulator.faults.server_error_status = 502
    body = json.dumps(song_request())
    assert handle_message(cloud.services, body, "m1") == [Outcome.UNKNOWN]
    row = cloud.only_row()
    assert row.state is JobState.UNKNOWN
    assert "outcome unknown" in (row.error or "")
    (note,) = cloud.notifications()
    assert note["status"] == "UNKNOWN"
    assert handle_message(cloud.services, body, "m2") == [Outcome.DUPLICATE]
    assert cloud.emulator.submissions == []


def test_error_kinds_cover_the_documented_codes() -> None:
    from lyrics_to_song.api_answers import classify_status

    assert [classify_status(c) for c in (400, 401, 402, 404, 429, 500, 503)] == [
        ErrorKind.PERMANENT,
        ErrorKind.ACCOUNT,
        ErrorKind.ACCOUNT,
        ErrorKind.PERMANENT,
        ErrorKind.TRANSIENT,
        ErrorKind.TRANSIENT,
        ErrorKind.TRANSIENT,
    ]


def test_a_secret_without_a_value_keeps_the_job_waiting(cloud: Cloud) -> None:
    sm = cloud.stack.client("secretsmanager")
    empty = sm.create_secret(Name="not-set-yet")["ARN"]
    settings = dataclasses.replace(cloud.services.settings, api_key_secret_arn=empty)
    cloud.services.api = MusicApiClient(
        API_URL, api_key_source(settings, sm), http=cloud.services.api.http
    )
    with pytest.raises(RetryLater, match="could not be read from"):
        handle_message(cloud.services, json.dumps(song_request()), "m1")
    assert cloud.rows() == []
    assert cloud.emulator.submissions == []


def test_a_key_pasted_with_smart_quotes_is_an_account_error_and_nothing_is_paid(
    cloud: Cloud,
) -> None:
    sm = cloud.stack.client("secretsmanager")
    pasted = sm.create_secret(Name="pasted", SecretString="\u201caio_key\u201d")["ARN"]
    settings = dataclasses.replace(cloud.services.settings, api_key_secret_arn=pasted)
    cloud.services.api = MusicApiClient(
        API_URL, api_key_source(settings, sm), http=cloud.services.api.http
    )
    with pytest.raises(RetryLater, match="a character an API key cannot have"):
        handle_message(cloud.services, json.dumps(song_request()), "m1")
    assert cloud.rows() == [], "the job waits on the queue; nothing is UNKNOWN"
    assert cloud.emulator.submissions == []
    today = day_of(cloud.clock.now)
    assert cloud.services.budget.submitted_on(today) == 0, "the day's count was given back"


def test_an_unexpected_error_mid_call_is_an_unknown_outcome(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(request: object) -> str:
        raise KeyError("bug")

    monkeypatch.setattr(cloud.services.api, "submit", broken)
    assert handle_message(cloud.services, json.dumps(song_request()), "m1") == [Outcome.UNKNOWN]
    assert cloud.only_row().state is JobState.UNKNOWN
    (note,) = cloud.notifications()
    assert "unexpected KeyError" in note["error"]
