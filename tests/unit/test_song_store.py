from __future__ import annotations

import pytest

from lyrics_to_song.song_store import _parts, hex_chunks, s3_metadata, song_key


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
