"""Every reader of outside input gives a value or one of the package's documented
errors, whatever it is given (property tests with Hypothesis)."""

from __future__ import annotations

import contextlib
import json
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lyrics_to_song.errors import InvalidRequest
from lyrics_to_song.lyric_files import parse_lyric_file
from lyrics_to_song.song_request import decode_json, parse_request
from lyrics_to_song.sources import UnreadableMessage, read_message
from lyrics_to_song.webhooks.callbacks import CallbackRules
from tests.support import song_request

FIELDS = ["prompt", "lyrics", "bitrate", "sample_rate", "model", "request_id", "tenant",
          "metadata", "callback_url", "lyric"]  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
# JSON built to hurt a reader: nesting past the recursion limit, an integer past 4,300 digits.
HOSTILE = st.sampled_from(["[" * 100_000, '{"a": ' * 50_000, "9" * 5000, "[" * 500 + "]" * 500])


@given(JSON, st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4))
@settings(max_examples=300, deadline=None)
def test_a_song_request_is_a_request_or_an_invalid_request(
    body: Any, fields: dict[str, Any]
) -> None:
    for data in (body, {**song_request(), **fields}):
        try:
            request = parse_request(data, "minimax-music")
        except InvalidRequest:
            continue
        assert request.prompt
        assert request.lyrics


@given(st.binary(max_size=3000), st.sampled_from(["song.txt", "song.json"]))
@settings(max_examples=300, deadline=None)
def test_a_lyric_file_is_a_request_or_an_invalid_request(data: bytes, name: str) -> None:
    with contextlib.suppress(InvalidRequest):
        parse_lyric_file(name, data, metadata_prompt=None, default_prompt="pop",
                         default_model="minimax-music")  # fmt: skip


@given(st.text(alphabet=string.printable + "éß²\u2028", max_size=400))
@settings(max_examples=300, deadline=None)
def test_front_matter_of_any_text_is_read_or_refused(text: str) -> None:
    data = ("---\n" + text + "\n---\n[Verse]\nla la").encode()
    with contextlib.suppress(InvalidRequest):
        parse_lyric_file("song.txt", data, metadata_prompt=None, default_prompt="pop",
                         default_model="minimax-music")  # fmt: skip


@given(st.text(max_size=300) | st.from_regex(r"https?://[^\s]{0,60}", fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_a_callback_url_is_taken_or_refused(url: str) -> None:
    try:
        taken = CallbackRules().check_url(url)
    except InvalidRequest:
        return
    assert taken.startswith("https://")


@given(st.text(max_size=500) | JSON.map(json.dumps) | HOSTILE)
@settings(max_examples=300, deadline=None)
def test_any_queued_message_is_classified(body: str) -> None:
    found = read_message(body, "m1")
    if isinstance(found, UnreadableMessage):
        assert found.reason


@given(st.text(max_size=200) | HOSTILE)
def test_decoding_json_gives_a_value_or_an_invalid_request(text: str) -> None:
    with contextlib.suppress(InvalidRequest):
        decode_json(text)
