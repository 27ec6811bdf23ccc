from __future__ import annotations

from typing import Any

import pytest

from lyrics_to_song.errors import InvalidRequest
from lyrics_to_song.song_request import parse_request
from tests.support import song_request


def parse(body: Any):  # type: ignore[no-untyped-def]
    return parse_request(body, default_model="minimax-music")


def test_defaults_follow_the_documented_api() -> None:
    request = parse(song_request())
    assert request.api_body() == {
        "model": "minimax-music",
        "prompt": "bright indie pop, female vocals",
        "lyrics": "[Verse]\nHello morning light\n[Chorus]\nWe are alright",
        "bitrate": 256000,
        "sample_rate": 44100,
    }


def test_request_id_and_metadata_are_kept_but_not_sent_to_the_api() -> None:
    request = parse(song_request(request_id="order-1", metadata={"customer": "c-1"}, bitrate=64000))
    assert request.as_item()["request_id"] == "order-1"
    assert request.as_item()["metadata"] == {"customer": "c-1"}
    assert "request_id" not in request.api_body()
    assert request.api_body()["bitrate"] == 64000


def test_fingerprint_depends_on_content_only() -> None:
    a = parse({"lyrics": "x", "prompt": "y"})
    b = parse({"prompt": "y", "lyrics": "x"})
    c = parse({"prompt": "y", "lyrics": "z"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object, got array"),
        (song_request(prompt=None), "'prompt' is required"),
        ({"lyrics": "la"}, "'prompt' is required"),
        (song_request(lyrics="   \n "), "'lyrics' must not be empty"),
        (song_request(lyrics=42), "'lyrics' must be a string, got number"),
        (
            song_request(prompt="p" * 2001),
            "'prompt' is 2001 characters; the model accepts at most 2000",
        ),
        (
            song_request(lyrics="l" * 3501),
            "'lyrics' is 3501 characters; the model accepts at most 3500",
        ),
        (
            song_request(bitrate=128),
            "'bitrate' must be one of 32000, 60000, 64000, 128000, 256000; got 128",
        ),
        (song_request(bitrate="128000"), "'bitrate' must be a whole number"),
        (song_request(bitrate=True), "'bitrate' must be a whole number"),
        (
            song_request(sample_rate=48000),
            "'sample_rate' must be one of 16000, 24000, 32000, 44100",
        ),
        (song_request(model="../etc"), "'model' must be a model name"),
        (song_request(model=""), "'model' must be a model name"),
        (song_request(request_id="has space"), "'request_id' must be a string of 1 to 128"),
        (song_request(request_id="r" * 129), "'request_id' must be a string of 1 to 128"),
        (song_request(metadata=[1]), "'metadata' must be a JSON object"),
        (song_request(metadata={"k": "v" * 3000}), "'metadata' must be at most 2048 bytes"),
        (song_request(lyric="typo"), "unknown field(s) 'lyric'"),
        (song_request(tenant="Team A"), "'tenant' must be a tenant name: 1 to 32 lower-case"),
        (song_request(tenant="-a"), "'tenant' must be a tenant name"),
        (song_request(tenant="a" * 33), "'tenant' must be a tenant name"),
        (song_request(tenant=None), "'tenant' must be a tenant name"),
    ],
)
def test_bad_requests_name_the_field_and_the_rule(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(body)
    assert message in str(caught.value)


def test_prompt_and_lyrics_are_trimmed_and_limits_count_characters_not_bytes() -> None:
    lyrics = "é" * 3500  # 7000 bytes, 3500 characters: allowed
    request = parse(song_request(prompt="  calm  ", lyrics=lyrics))
    assert request.prompt == "calm"
    assert len(request.lyrics) == 3500


def test_default_prompt_fills_only_a_missing_prompt() -> None:
    filled = parse_request({"lyrics": "la"}, "minimax-music", default_prompt="house style")
    kept = parse_request(
        {"lyrics": "la", "prompt": "mine"}, "minimax-music", default_prompt="house"
    )
    assert filled.prompt == "house style"
    assert kept.prompt == "mine"
