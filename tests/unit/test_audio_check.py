"""What counts as a song: audio of the declared kind, read by mutagen; anything else is
named for what it is."""

from __future__ import annotations

import wave
from pathlib import Path

import httpx
import pytest

from local_cloud.audio import make_mp3
from lyrics_to_song.api_answers import AudioSource
from lyrics_to_song.audio.check import AudioInfo, inspect_audio
from lyrics_to_song.audio.download import DownloadLimits, fetch_audio
from lyrics_to_song.audio.sidecar import differences
from lyrics_to_song.errors import NotASong
from lyrics_to_song.music_api import MusicApiClient


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "audio"
    path.write_bytes(data)
    return path


def test_an_mp3_is_measured(tmp_path: Path) -> None:
    info = inspect_audio(written(tmp_path, make_mp3(32000, 128000, 2.0)), "audio/mpeg")
    assert (info.kind, info.content_type, info.sample_rate) == ("mp3", "audio/mpeg", 32000)
    assert info.bitrate == 128000
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)


def test_a_wav_is_measured_and_an_undeclared_kind_is_found_from_the_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audio"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(bytes(2 * 24000))
    for declared in ("audio/wav", "application/octet-stream", ""):
        info = inspect_audio(path, declared)
        assert (info.kind, info.content_type, info.sample_rate) == ("wav", "audio/wav", 24000)
        assert info.duration_seconds == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("data", "declared", "said"),
    [
        (b'{"error": "expired"}', "application/json", "the download is application/json"),
        (b'{"error": "expired"}', "audio/mpeg", "JSON (audio/mpeg, 20 bytes"),
        (b"<?xml version='1.0'?><Error/>", "audio/mpeg", "XML or markup"),
        (b"", "audio/mpeg", "empty (audio/mpeg, 0 bytes"),
        (bytes(range(256)) * 4, "", "data (no content type, 1024 bytes"),
    ],
)
def test_what_is_not_a_song_is_named(tmp_path: Path, data: bytes, declared: str, said: str) -> None:
    with pytest.raises(NotASong, match=said.replace("(", r"\(")):
        inspect_audio(written(tmp_path, data), declared)


def test_audio_of_another_kind_than_declared_is_not_the_song(tmp_path: Path) -> None:
    with pytest.raises(NotASong, match="not wav"):
        inspect_audio(written(tmp_path, make_mp3(44100, 128000, 1.0)), "audio/wav")


def test_the_sidecar_notes_what_differs_from_the_request() -> None:
    measured = AudioInfo("mp3", "audio/mpeg", 3.0, 32000, 120000)
    assert differences({"sample_rate": 44100, "bitrate": 128000}, measured) == [
        "sample rate: asked 44100 Hz, got 32000 Hz"
    ], "a bitrate within 10% is the same (VBR files report an average)"
    assert differences({"sample_rate": 32000, "bitrate": 256000}, measured) == [
        "bitrate: asked 256000 bit/s, got 120000 bit/s"
    ]
    assert differences({}, measured) == []


def test_a_download_with_a_malformed_length_is_still_read_and_checked() -> None:
    song = make_mp3(44100, 128000, 1.0)

    def serve(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "audio/mpeg", "content-length": "lots"}
        return httpx.Response(200, headers=headers, content=song)

    api = MusicApiClient(
        "https://apiin.one",
        lambda: "aio_key",
        downloads=httpx.Client(transport=httpx.MockTransport(serve)),
    )
    limits = DownloadLimits(max_bytes=10_000_000, deadline_seconds=30)
    link = AudioSource(url="https://apiin.one/files/a.mp3")
    with fetch_audio(api, link, limits) as fetched:
        assert fetched.path.read_bytes() == song
        assert fetched.info.kind == "mp3"
