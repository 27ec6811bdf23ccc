"""Streaming songs into S3: parts, byte equality, and nothing left behind on failure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from lyrics_to_song.audio.store import stream_to_s3
from tests.integration.moto_cloud import Cloud

MIB = 1024 * 1024


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield hashlib.sha256(str(start).encode()).digest() * (min(size, total - start) // 32)


def test_a_large_song_goes_up_in_parts_byte_for_byte(cloud: Cloud) -> None:
    total = 12 * MIB
    expected = b"".join(chunks(total))
    saved = stream_to_s3(
        cloud.services.s3,
        cloud.stack.songs_bucket,
        "songs/big.mp3",
        chunks(total),
        content_type="audio/mpeg",
        metadata={"job-id": "j"},
        part_size=5 * MIB,
    )
    assert saved.size == total
    obj = cloud.services.s3.get_object(Bucket=cloud.stack.songs_bucket, Key="songs/big.mp3")
    assert obj["Body"].read() == expected
    assert obj["ContentType"] == "audio/mpeg"
    assert obj["Metadata"] == {"job-id": "j"}
    assert obj["ETag"].strip('"').endswith("-3"), "three parts of 5, 5 and 2 MiB"


def test_a_broken_stream_leaves_no_object_and_no_parts(cloud: Cloud) -> None:
    def broken() -> Iterator[bytes]:
        yield from chunks(11 * MIB)
        raise ConnectionError("download dropped")

    with pytest.raises(ConnectionError):
        stream_to_s3(
            cloud.services.s3,
            cloud.stack.songs_bucket,
            "songs/broken.mp3",
            broken(),
            content_type="audio/mpeg",
            metadata={},
            part_size=5 * MIB,
        )
    s3 = cloud.services.s3
    assert s3.list_objects_v2(Bucket=cloud.stack.songs_bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=cloud.stack.songs_bucket).get("Uploads", []) == []


def test_a_small_song_is_one_put(cloud: Cloud) -> None:
    saved = stream_to_s3(
        cloud.services.s3,
        cloud.stack.songs_bucket,
        "songs/small.mp3",
        iter([b"ID3", b"abc"]),
        content_type="audio/mpeg",
        metadata={},
    )
    assert saved.size == 6
    body = cloud.services.s3.get_object(Bucket=cloud.stack.songs_bucket, Key="songs/small.mp3")[
        "Body"
    ].read()
    assert body == b"ID3abc"
