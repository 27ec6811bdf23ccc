"""What the functions take from any HTTP answer: Retry-After, encodings, and time."""

from __future__ import annotations

import gzip
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lyrics_to_song.api_answers import AudioSource
from lyrics_to_song.audio.download import DownloadLimits, fetch_audio
from lyrics_to_song.errors import DownloadFailed, MusicApiError
from lyrics_to_song.http_transport import CheckedTransport, call_deadline, retry_after
from lyrics_to_song.music_api import MusicApiClient
from lyrics_to_song.song_request import parse_request
from tests.support import song_request


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 20.0),
        ("soon", None),
        ("²", None),  # a digit to str.isdigit, not to float
        ("1e999", None),
        ("inf", None),
        ("nan", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_a_date_and_nothing_else(
    value: str | None, seconds: float | None
) -> None:
    assert retry_after(value, now=1445412460) == seconds


@given(st.text(max_size=80))
def test_any_retry_after_gives_a_finite_wait_or_none(value: str) -> None:
    wait = retry_after(value, now=1_800_000_000)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


@pytest.fixture
def dripping_server() -> Iterator[tuple[int, list[int]]]:
    """Answers every connection with a status line dripped a byte every 0.1 s, for
    5 s; records how many bytes each connection was sent before it was closed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    sent: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            count = 0
            with conn:
                try:
                    conn.recv(65536)
                    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 40:
                        conn.sendall(bytes([byte]))
                        count += 1
                        time.sleep(0.1)
                except OSError:
                    pass
            sent.append(count)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], sent
    listener.close()


def test_a_call_ends_at_its_deadline_however_slowly_the_headers_come(
    dripping_server: tuple[int, list[int]],
) -> None:
    port, sent = dripping_server
    # Each read would wait 3 s, and each byte comes within 0.1 s: only the deadline ends it.
    client = httpx.Client(transport=CheckedTransport(None), timeout=3.0)
    with pytest.raises(httpx.TimeoutException), call_deadline(0.5):
        client.get(f"http://127.0.0.1:{port}/")
    client.close()
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    (count,) = sent
    assert count < 20, f"the connection was dropped after {count} of 57 dripped bytes"


def _bomb() -> bytes:
    """64 MiB of zeros, gzipped twice: a few KB on the wire."""
    return gzip.compress(gzip.compress(b"\0" * (64 * 1024 * 1024)))


def _api(serve: Callable[[httpx.Request], httpx.Response], seen: list[str]) -> MusicApiClient:
    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding", ""))
        return serve(request)

    client = httpx.Client(transport=httpx.MockTransport(recording))
    return MusicApiClient(
        "https://apiin.one",
        lambda: "aio_key",
        http=client,
        downloads=client,
        audio_hosts=["cdn.example"],
        sleep=lambda seconds: None,
    )


def test_a_compressed_status_answer_is_refused_unread() -> None:
    bomb = _bomb()
    headers = {"content-encoding": "gzip, gzip", "content-type": "application/json"}
    seen: list[str] = []
    api = _api(lambda request: httpx.Response(200, headers=headers, content=bomb), seen)
    with pytest.raises(MusicApiError, match=r"came encoded \(gzip, gzip\)") as raised:
        api.task_status("t1")
    assert raised.value.malformed, "a bad answer, counted as such"
    assert seen == ["identity"], "no encoding was asked for"


def test_a_compressed_song_is_refused_unread(tmp_path: Path) -> None:
    bomb = _bomb()
    headers = {"content-encoding": "gzip", "content-type": "audio/mpeg"}
    seen: list[str] = []
    api = _api(lambda request: httpx.Response(200, headers=headers, content=bomb), seen)
    limits = DownloadLimits(max_bytes=1024 * 1024, deadline_seconds=30)
    link = AudioSource(url="https://cdn.example/a.mp3")
    with (
        pytest.raises(DownloadFailed, match=r"came encoded \(gzip\)"),
        fetch_audio(api, link, limits),
    ):
        pass
    assert seen == ["identity"]


def test_a_submission_answered_compressed_is_maybe_accepted() -> None:
    seen: list[str] = []
    headers = {"content-encoding": "br"}
    api = _api(lambda request: httpx.Response(200, headers=headers, content=b"\x1b\x00"), seen)
    with pytest.raises(MusicApiError) as raised:
        api.submit(parse_request(song_request(), "minimax-music"))
    assert raised.value.maybe_accepted, "it was sent: never sent again by itself"


def test_a_compressed_rate_limit_is_still_a_rate_limit_and_nothing_was_accepted() -> None:
    headers = {"content-encoding": "gzip", "retry-after": "1"}
    seen: list[str] = []
    answer = gzip.compress(b'{"code": 429}')
    api = _api(lambda request: httpx.Response(429, headers=headers, content=answer), seen)
    with pytest.raises(MusicApiError) as raised:
        api.submit(parse_request(song_request(), "minimax-music"))
    assert raised.value.status == 429
    assert not raised.value.maybe_accepted, "a refusal: safe to send again later"
