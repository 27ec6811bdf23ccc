from __future__ import annotations

import json

from lyrics_to_song.sources import (
    LyricObject,
    QueuedRequest,
    UnreadableMessage,
    is_s3_notification,
    lyric_objects,
    read_message,
)
from tests.support import s3_notification, song_request


def test_object_keys_are_url_decoded() -> None:
    event = s3_notification("lyrics", "my songs/Café del mar + friends.txt")
    assert (
        event["Records"][0]["s3"]["object"]["key"] == "my+songs%2FCaf%C3%A9+del+mar+%2B+friends.txt"
    )
    (obj,) = lyric_objects(event)
    assert obj.key == "my songs/Café del mar + friends.txt"
    assert obj.source == "s3://lyrics/my songs/Café del mar + friends.txt"


def test_same_file_same_content_is_the_same_job_and_new_content_a_new_one() -> None:
    a = LyricObject("b", "k.txt", "etag-1", 10)
    assert a.job_id == LyricObject("b", "k.txt", "etag-1", 99).job_id
    assert a.job_id != LyricObject("b", "k.txt", "etag-2", 10).job_id
    assert a.job_id != LyricObject("b", "other.txt", "etag-1", 10).job_id
    assert a.job_id.startswith("job-")
    assert len(a.job_id) == 36


def test_only_created_objects_become_jobs() -> None:
    event = s3_notification("b", "a.txt")
    event["Records"].append({**event["Records"][0], "eventName": "ObjectRemoved:Delete"})
    assert [o.key for o in lyric_objects(event)] == ["a.txt"]


def test_sqs_bodies_are_classified() -> None:
    assert read_message(json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}), "m") is None
    files = read_message(json.dumps(s3_notification("b", "x y.txt")), "m")
    assert isinstance(files, list)
    assert files[0].key == "x y.txt"
    queued = read_message(json.dumps(song_request()), "m1")
    assert isinstance(queued, QueuedRequest)
    assert queued.message_id == "m1"


def test_unreadable_messages_say_why_and_have_a_stable_job() -> None:
    cases = {
        "not json": "message body is not JSON",
        "[1, 2]": "must be a JSON object (a song request), got array",
        '{"Records": [{"eventSource": "aws:sns"}]}': "'Records' but they are not S3 notifications",
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}': (
            "without s3.bucket.name"
        ),
    }
    for body, reason in cases.items():
        found = read_message(body, "m")
        assert isinstance(found, UnreadableMessage), body
        assert reason in found.reason
        assert found.job.job_id == read_message(body, "other-id").job.job_id  # type: ignore[union-attr]


def test_direct_s3_events_are_recognised() -> None:
    assert is_s3_notification(s3_notification("b", "k.txt"))
    assert not is_s3_notification({"Records": [{"eventSource": "aws:sqs"}]})
    assert not is_s3_notification({"Records": []})
