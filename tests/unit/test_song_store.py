from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lyrics_to_song.audio.store import _parts, hex_chunks, s3_metadata, song_key, stream_to_s3


@pytest.mark.parametrize(
    ("source", "task", "key"),
    [
        ("neon-rain.txt", "n74a_minimax", "songs/neon-rain-n74a_minimax.mp3"),
        ("albums/2024/My Song (v2).txt", "t1", "songs/My-Song-v2-t1.mp3"),
        ("../../etc/passwd.txt", "t1", "songs/passwd-t1.mp3"),
        ("Café déjà vu.json", "t/../1", "songs/Cafe-deja-vu-t-..-1.mp3"),
        ("日本語.txt", "t1", "songs/song-t1.mp3"),
        ("order-1042", "t1", "songs/order-1042-t1.mp3"),
    ],
)
def test_song_keys_are_safe_and_stable(source: str, task: str, key: str) -> None:
    assert song_key(source, task) == key
    assert song_key(source, task) == song_key(source, task)


def test_song_keys_never_escape_the_prefix() -> None:
    for source in ("../x.txt", "/abs/y.txt", "..", ".hidden.txt"):
        key = song_key(source, "../../t")
        assert key.startswith("songs/")
        assert "/.." not in key
        assert key.count("/") == 1


def test_hex_is_decoded_in_pieces() -> None:
    data = bytes(range(256)) * 10
    assert b"".join(hex_chunks(data.hex(), chunk=64)) == data
    with pytest.raises(ValueError, match="odd number"):
        list(hex_chunks("abc"))
    with pytest.raises(ValueError, match="not valid hex"):
        list(hex_chunks("zz"))


def test_parts_are_at_least_the_part_size_but_the_last() -> None:
    chunks = [b"a" * 3, b"b" * 7, b"c" * 1, b"d" * 2, b"e" * 5]
    parts = list(_parts(chunks, 4))
    assert [len(p) for p in parts] == [10, 8]
    assert b"".join(parts) == b"".join(chunks)
    assert list(_parts([b"ab", b"c"], 4)) == [b"abc"]
    assert list(_parts([], 4)) == []


def test_metadata_is_made_ascii() -> None:
    assert s3_metadata({"source": "s3://b/Café.txt"}) == {"source": "s3://b/Caf%C3%A9.txt"}


class PartRecorder:
    """Records, at each S3 call, how many chunks the download had been read up to."""

    def __init__(self, pulled: list[int]) -> None:
        self.pulled = pulled
        self.calls: list[tuple[str, int]] = []

    def put_object(self, **_: Any) -> dict[str, Any]:
        self.calls.append(("put", len(self.pulled)))
        return {}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "u"}

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((f"part {kwargs['PartNumber']}", len(self.pulled)))
        return {"ETag": "e"}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


def _download(pulled: list[int], count: int) -> Iterator[bytes]:
    for i in range(count):
        pulled.append(i)
        yield bytes([i]) * 4


@pytest.mark.parametrize(
    ("chunks", "calls"),
    [
        # Parts of two chunks: each is sent with at most one chunk read past it.
        (10, [("part 1", 3), ("part 2", 4), ("part 3", 6), ("part 4", 8), ("part 5", 10)]),
        (2, [("put", 2)]),
        (3, [("part 1", 3), ("part 2", 3)]),
    ],
)
def test_the_download_is_read_no_further_ahead_than_one_chunk(
    chunks: int, calls: list[tuple[str, int]]
) -> None:
    pulled: list[int] = []
    s3 = PartRecorder(pulled)
    saved = stream_to_s3(
        s3,  # type: ignore[arg-type]
        "bucket",
        "songs/x.mp3",
        _download(pulled, chunks),
        content_type="audio/mpeg",
        metadata={},
        part_size=8,
    )
    assert s3.calls == calls
    assert saved.size == 4 * chunks
