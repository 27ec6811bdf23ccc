from __future__ import annotations

import pytest

from lyrics_to_song.errors import InvalidRequest
from lyrics_to_song.lyric_files import parse_lyric_file, with_fields


def parse(name: str, data: bytes, metadata_prompt: str | None = None):  # type: ignore[no-untyped-def]
    return parse_lyric_file(
        name,
        data,
        metadata_prompt=metadata_prompt,
        default_prompt="house style",
        default_model="minimax-music",
    )


FRONT_MATTER = b"""---
prompt: "dreamy synth-pop, 100 bpm"
bitrate: 128000
sample_rate: 32000
model: minimax-music-2
# a comment
---
[Verse]
Neon rain
"""


def test_front_matter_sets_the_request_fields() -> None:
    request = parse("song.txt", FRONT_MATTER, metadata_prompt="ignored")
    assert request.prompt == "dreamy synth-pop, 100 bpm"
    assert (request.bitrate, request.sample_rate, request.model) == (
        128000,
        32000,
        "minimax-music-2",
    )
    assert request.lyrics == "[Verse]\nNeon rain"


def test_without_front_matter_the_prompt_comes_from_metadata_then_the_default() -> None:
    assert parse("a.txt", b"[Verse]\nla la", metadata_prompt="jazz trio").prompt == "jazz trio"
    assert parse("a.txt", b"[Verse]\nla la").prompt == "house style"
    assert parse("a.txt", b"[Verse]\nla la").lyrics == "[Verse]\nla la"


def test_a_byte_order_mark_and_crlf_lines_are_accepted() -> None:
    data = b"\xef\xbb\xbf---\r\nprompt: rock\r\n---\r\nline one\r\n"
    request = parse("win.txt", data)
    assert request.prompt == "rock"
    assert request.lyrics == "line one"


def test_json_lyric_files_take_the_request_fields() -> None:
    request = parse("song.JSON", b'{"lyrics": "la", "bitrate": 64000}', metadata_prompt="meta")
    assert (request.prompt, request.bitrate) == ("meta", 64000)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty.txt is empty"),
        ("blank.txt", b"  \n\t\n", "blank.txt is empty"),
        ("bin.txt", b"ID3\x00\x01\x02", "bin.txt is a binary file"),
        (
            "latin1.txt",
            "café".encode("latin-1"),
            "latin1.txt is not valid UTF-8 text (bad byte at offset 3)",
        ),
        ("open.txt", b"---\nprompt: x\nlyrics here", "never closed"),
        ("bad.txt", b"---\njust words\n---\nla", "front matter line 2 is not 'key: value'"),
        ("unknown.txt", b"---\ntempo: 100\n---\nla", "unknown field 'tempo'"),
        ("twice.txt", b"---\nprompt: a\nprompt: b\n---\nla", "sets 'prompt' twice"),
        (
            "rate.txt",
            b"---\nbitrate: fast\n---\nla",
            "'bitrate' must be a whole number, got 'fast'",
        ),
        ("rate2.txt", b"---\nbitrate: 100\n---\nla", "'bitrate' must be one of"),
        ("nolyrics.txt", b"---\nprompt: a\n---\n\n", "has front matter but no lyrics"),
        ("long.txt", ("x" * 3501).encode(), "'lyrics' is 3501 characters"),
        ("bad.json", b"{lyrics: 1}", "bad.json is not valid JSON"),
        ("list.json", b"[1, 2]", "list.json must hold a JSON object, got array"),
        ("wrong.json", b'{"lyrics": "la", "sample_rate": 8000}', "'sample_rate' must be one of"),
        ("song.mp3", b"la la", "not a lyric file: the name must end in .txt or .json"),
    ],
)
def test_bad_lyric_files_get_a_clear_reason(name: str, data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(name, data)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("plain.txt", b"[Verse]\nNeon rain\n"),
        ("fenced.txt", b"---\nmodel: minimax-music-2\n---\n[Verse]\nNeon rain\n"),
        ("crlf.txt", b"\xef\xbb\xbf---\r\nmodel: minimax-music-2\r\n---\r\n[Verse]\r\nNeon rain"),
        ("song.json", b'{"lyrics": "[Verse]\\nNeon rain", "model": "minimax-music-2"}'),
    ],
)
def test_fields_from_the_command_line_are_written_where_the_function_reads_them(
    name: str, data: bytes
) -> None:
    fields = {"prompt": "rêveuse, 90 bpm", "bitrate": 128000, "sample_rate": 32000}
    request = parse(name, with_fields(name, data, fields))
    assert (request.prompt, request.bitrate, request.sample_rate) == (
        "rêveuse, 90 bpm",
        128000,
        32000,
    )
    assert request.lyrics.replace("\r", "").strip() == "[Verse]\nNeon rain"
    if b"model" in data:
        assert request.model == "minimax-music-2", "the file's own fields are kept"


def test_a_field_the_file_already_sets_otherwise_is_refused_not_overwritten() -> None:
    with pytest.raises(InvalidRequest, match="sets bitrate to 128000 already; 64000"):
        with_fields("song.txt", FRONT_MATTER, {"bitrate": 64000})
    with pytest.raises(InvalidRequest, match="sets prompt to 'rock' already"):
        with_fields("song.json", b'{"lyrics": "la", "prompt": "rock"}', {"prompt": "jazz"})
    same = with_fields("song.txt", FRONT_MATTER, {"bitrate": 128000})
    assert parse("song.txt", same).bitrate == 128000, "the same value is no contradiction"


def test_a_prompt_that_cannot_be_front_matter_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="must fit on one line"):
        with_fields("song.txt", b"la la", {"prompt": "two\nlines"})
    quoted = with_fields("song.txt", b"la la", {"prompt": "'quoted'"})
    assert parse("song.txt", quoted).prompt == "'quoted'"
