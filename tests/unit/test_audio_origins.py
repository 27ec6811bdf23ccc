"""Where audio may come from: https only, allowed hosts only, no internal address on any
hop, and the key only for the API's own origin."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from lyrics_to_song.audio.origins import AudioOrigins
from lyrics_to_song.errors import RefusedAudioSource
from lyrics_to_song.http_transport import CheckedTransport
from lyrics_to_song.music_api import MusicApiClient

KEY = "aio_secret_key_123"
DEPLOYED = "https://apiin.one"


def downloads_from(
    handler: Callable[[httpx.Request], httpx.Response], base_url: str = DEPLOYED
) -> tuple[MusicApiClient, list[httpx.Request]]:
    """A client whose downloads are answered by `handler`; returns the requests it made."""
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = MusicApiClient(
        base_url,
        lambda: KEY,
        downloads=httpx.Client(transport=httpx.MockTransport(recording)),
        audio_hosts=["cdn.example.com"],
    )
    return client, seen


def fetch(client: MusicApiClient, url: str) -> bytes:
    with client.open_audio(url) as response:
        return response.read()


def audio(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ID3 song", headers={"content-type": "audio/mpeg"})


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://apiin.one/files/a.mp3", "not https"),
        ("https://evil.example/a.mp3", "neither the API's nor one of AUDIO_HOSTS"),
        ("https://127.0.0.1/a.mp3", "neither the API's"),
        ("https://user:pw@cdn.example.com/a.mp3", "credentials"),
        ("file:///etc/passwd", "not https"),
    ],
)
def test_a_link_that_is_not_https_on_an_allowed_host_is_refused_unfetched(
    url: str, reason: str
) -> None:
    client, seen = downloads_from(audio)
    with pytest.raises(RefusedAudioSource, match=reason):
        fetch(client, url)
    assert seen == [], "nothing was fetched"


def test_the_api_host_and_the_audio_hosts_are_fetched_and_only_the_api_gets_the_key() -> None:
    client, seen = downloads_from(audio)
    assert fetch(client, "https://apiin.one/files/a.mp3") == b"ID3 song"
    assert fetch(client, "https://CDN.example.com/a.mp3") == b"ID3 song"
    api_call, cdn_call = seen
    assert api_call.headers["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in cdn_call.headers


def test_a_plain_http_link_on_the_api_host_never_carries_the_key() -> None:
    origins = AudioOrigins(DEPLOYED)
    assert origins.sends_key(httpx.URL("https://apiin.one/files/a.mp3"))
    assert not origins.sends_key(httpx.URL("http://apiin.one/files/a.mp3"))
    assert not origins.sends_key(httpx.URL("https://apiin.one:8443/files/a.mp3"))


def test_each_redirect_is_checked_like_the_link() -> None:
    def redirect(target: str) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/files/a.mp3":
                return httpx.Response(302, headers={"location": target})
            return audio(request)

        return handler

    client, seen = downloads_from(redirect("https://cdn.example.com/signed/a.mp3"))
    assert fetch(client, "https://apiin.one/files/a.mp3") == b"ID3 song"
    assert [str(r.url) for r in seen][-1] == "https://cdn.example.com/signed/a.mp3"
    assert "Authorization" not in seen[-1].headers
    for target in ("http://127.0.0.1:8080/a.mp3", "https://169.254.169.254/latest/", "/x"):
        client, seen = downloads_from(redirect(target))
        if target == "/x":  # a relative redirect stays on the API's host: followed
            assert fetch(client, "https://apiin.one/files/a.mp3") == b"ID3 song"
            continue
        with pytest.raises(RefusedAudioSource):
            fetch(client, "https://apiin.one/files/a.mp3")
        assert len(seen) == 1, "the redirect's target was never asked"


def test_redirects_are_bounded() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": f"{request.url.path}x"})

    client, seen = downloads_from(loop)
    with pytest.raises(RefusedAudioSource, match="redirected more than 3 times"):
        fetch(client, "https://apiin.one/a")
    assert len(seen) == 4


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A real server on 127.0.0.1 that would answer anything with a 'song'."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.end_headers()
            self.wfile.write(b"internal data")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def test_an_allowed_name_that_resolves_to_an_internal_address_is_never_connected(
    loopback_server: int,
) -> None:
    # `localhost` is an allowed audio host here, but it resolves to loopback: the checked
    # connection refuses it, whatever the scheme.
    origins = AudioOrigins(DEPLOYED, ["localhost"])
    with (
        httpx.Client(transport=CheckedTransport(origins.check_address)) as client,
        pytest.raises(RefusedAudioSource, match="loopback address"),
    ):
        client.get(f"http://localhost:{loopback_server}/a.mp3")
    for address, kind in (
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "private"),  # noqa: S104  ("this network")
    ):
        with pytest.raises(RefusedAudioSource, match=kind):
            origins.check_address("somewhere", address)
    origins.check_address("cdn", "93.184.216.34")  # a public address passes


def test_a_local_run_may_fetch_over_plain_http_from_loopback_only(loopback_server: int) -> None:
    origins = AudioOrigins(f"http://127.0.0.1:{loopback_server}")
    assert origins.local
    with httpx.Client(transport=CheckedTransport(origins.check_address)) as client:
        answer = client.get(f"http://127.0.0.1:{loopback_server}/a.mp3")
    assert answer.content == b"internal data"
    with pytest.raises(RefusedAudioSource, match="private"):
        origins.check_address("lan", "192.168.1.10")
    assert origins.sends_key(httpx.URL(f"http://127.0.0.1:{loopback_server}/files/a.mp3"))
