"""The API client against the emulator (in-process) and against hand-made answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_cloud.emulator import MusicApiEmulator
from lyrics_to_song.api_answers import TaskState, find_audio, parse_task_status
from lyrics_to_song.errors import ErrorKind, MusicApiError
from lyrics_to_song.music_api import MusicApiClient
from lyrics_to_song.song_request import parse_request
from tests.support import FakeClock, song_request

KEY = "aio_secret_key_123"


def _nest(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """JSON values of the shapes status answers take, with the words they use."""
    words = st.sampled_from(["data", "status", "audio_url", "output", "result", "code", "error"])
    return st.lists(children, max_size=4) | st.dictionaries(words | st.text(), children, max_size=4)


REQUEST = parse_request(song_request(), "minimax-music")


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float]
) -> MusicApiClient:
    return MusicApiClient(
        "https://apiin.one",
        lambda: KEY,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=sleeps.append,
    )


def answer(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        text = body if isinstance(body, str) else json.dumps(body)
        return httpx.Response(status, text=text, headers=headers)

    return handler


def test_submit_and_follow_a_task_on_the_emulator(
    api: MusicApiClient, emulator: MusicApiEmulator, clock: FakeClock
) -> None:
    task_id = api.submit(REQUEST)
    assert emulator.submissions == [REQUEST.api_body()]
    assert api.task_status(task_id).state is TaskState.RUNNING
    clock.advance(31)
    status = api.task_status(task_id)
    assert status.state is TaskState.DONE
    assert status.audio is not None
    assert status.audio.url == f"http://localhost:8765/files/{task_id}.mp3"
    assert status.duration_seconds == 1.0


def test_the_bearer_key_is_sent(sleeps: list[float]) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(
            200, json={"code": 200, "data": {"task_id": "t1", "status": "IN_PROGRESS"}}
        )

    assert client_for(handler, sleeps).submit(REQUEST) == "t1"
    assert seen == [f"Bearer {KEY}"]


def test_the_older_flat_answer_is_understood(sleeps: list[float]) -> None:
    api = client_for(answer(200, {"task_id": "flat-1", "status": "pending"}), sleeps)
    assert api.submit(REQUEST) == "flat-1"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            400,
            {"code": 400, "message": "Bad Request: 'prompt' is required.", "data": None},
            ErrorKind.PERMANENT,
        ),
        (401, {"code": 401, "message": "Unauthorized"}, ErrorKind.ACCOUNT),
        (
            200,
            {"code": 402, "message": "Payment Required: insufficient credits"},
            ErrorKind.ACCOUNT,
        ),
        (402, "no credits", ErrorKind.ACCOUNT),
        (200, {"code": 400, "message": "Bad Request: lyrics too long"}, ErrorKind.PERMANENT),
    ],
)
def test_refusals_are_classified_and_not_retried(
    status: int, body: Any, kind: ErrorKind, sleeps: list[float]
) -> None:
    with pytest.raises(MusicApiError) as caught:
        client_for(answer(status, body), sleeps).submit(REQUEST)
    assert caught.value.kind is kind
    assert not caught.value.maybe_accepted
    assert sleeps == []


def test_the_envelope_message_is_the_reason(sleeps: list[float]) -> None:
    body = {"code": 400, "message": "Bad Request: 'prompt' is required.", "data": None}
    with pytest.raises(
        MusicApiError, match=r"API answered 400: Bad Request: 'prompt' is required\."
    ):
        client_for(answer(400, body), sleeps).submit(REQUEST)


def test_rate_limits_are_retried_honouring_retry_after(sleeps: list[float]) -> None:
    answers = iter(
        [
            httpx.Response(
                429, json={"code": 429, "message": "slow down"}, headers={"Retry-After": "2"}
            ),
            httpx.Response(503, json={"code": 503, "message": "busy"}),
            httpx.Response(200, json={"code": 200, "data": {"task_id": "t9"}}),
        ]
    )
    api = client_for(lambda request: next(answers), sleeps)
    assert api.submit(REQUEST) == "t9"
    assert sleeps == [2.0, 1.0]  # Retry-After, then the backoff's second step


def test_a_long_retry_after_is_left_to_the_queue(sleeps: list[float]) -> None:
    api = client_for(answer(429, {"code": 429}, {"Retry-After": "120"}), sleeps)
    with pytest.raises(MusicApiError) as caught:
        api.submit(REQUEST)
    assert (caught.value.kind, caught.value.retry_after, sleeps) == (ErrorKind.TRANSIENT, 120.0, [])


def test_retries_stop_after_the_attempts(sleeps: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"code": 503})

    with pytest.raises(MusicApiError):
        client_for(handler, sleeps).submit(REQUEST)
    assert len(calls) == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_on_submit_may_hide_an_accepted_job(
    status: int, sleeps: list[float]
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, text="upstream trouble")

    with pytest.raises(MusicApiError) as caught:
        client_for(handler, sleeps).submit(REQUEST)
    assert caught.value.maybe_accepted
    assert len(calls) == 1, "a submission that may have been accepted must not be sent again"


def test_a_timeout_after_sending_is_an_unknown_outcome(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(MusicApiError) as caught:
        client_for(handler, sleeps).submit(REQUEST)
    assert caught.value.maybe_accepted
    assert "may have been accepted" in str(caught.value)


def test_a_refused_connection_is_retried(sleeps: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"code": 200, "data": {"task_id": "t2"}})

    assert client_for(handler, sleeps).submit(REQUEST) == "t2"


def test_an_answer_without_a_task_id_is_an_unknown_outcome(sleeps: list[float]) -> None:
    with pytest.raises(MusicApiError) as caught:
        client_for(answer(200, {"code": 200, "data": {"status": "ok"}}), sleeps).submit(REQUEST)
    assert caught.value.maybe_accepted
    assert caught.value.raw_body is not None


def test_the_key_never_appears_in_errors(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"bad key {request.headers['authorization']}")

    with pytest.raises(MusicApiError) as caught:
        client_for(handler, sleeps).task_status("t1")
    # Even when the server echoes the key back, the text we log must not carry it.
    assert KEY not in str(caught.value)
    assert caught.value.raw_body is not None
    assert KEY not in caught.value.raw_body
    assert "[redacted]" in caught.value.raw_body


@pytest.mark.parametrize(
    ("data", "url", "hex_data"),
    [
        ({"audio_url": "https://cdn/x.mp3"}, "https://cdn/x.mp3", None),
        ({"output": {"audio_url": "https://cdn/o.mp3"}}, "https://cdn/o.mp3", None),
        ({"response_data": [{"audio_url": "https://cdn/r.mp3"}]}, "https://cdn/r.mp3", None),
        ({"result": "https://cdn/res.mp3"}, "https://cdn/res.mp3", None),
        ({"result": {"audio_url": "https://cdn/res2.mp3"}}, "https://cdn/res2.mp3", None),
        ({"audio": "494433"}, None, "494433"),
        ({"audio": "https://cdn/a.mp3"}, "https://cdn/a.mp3", None),
    ],
)
def test_audio_is_found_in_every_known_shape(
    data: dict[str, Any], url: str | None, hex_data: str | None
) -> None:
    found = find_audio(data)
    assert found is not None
    assert (found.url, found.hex_data) == (url, hex_data)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("IN_PROGRESS", TaskState.RUNNING),
        ("pending", TaskState.RUNNING),
        ("Completed", TaskState.DONE),
        ("SUCCESS", TaskState.DONE),
        ("failed", TaskState.FAILED),
        ("ERROR", TaskState.FAILED),
    ],
)
def test_status_is_read_case_insensitively(status: str, state: TaskState) -> None:
    parsed = parse_task_status(
        {"status": status, "audio_url": "https://cdn/x.mp3", "fail_message": "bad"}, ""
    )
    assert parsed.state is state
    if state is TaskState.FAILED:
        assert parsed.error == "bad"


def test_minimax_duration_in_milliseconds_is_converted() -> None:
    parsed = parse_task_status(
        {"status": "completed", "audio": "4944", "extra_info": {"music_duration": 61500}}, ""
    )
    assert parsed.duration_seconds == 61.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"task_id": "x"}, "status body has no status"),
        ({"status": "weird"}, "unknown task status 'weird'"),
        ({"status": "completed"}, "no audio was found"),
    ],
)
def test_unreadable_status_bodies_keep_the_raw_body(data: dict[str, Any], message: str) -> None:
    with pytest.raises(MusicApiError) as caught:
        parse_task_status(data, json.dumps(data))
    assert message in str(caught.value)
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert caught.value.raw_body == json.dumps(data)
    assert caught.value.malformed


def test_a_non_json_status_answer_is_transient_with_its_body(sleeps: list[float]) -> None:
    api = client_for(answer(200, "<html>gateway</html>"), sleeps)
    with pytest.raises(MusicApiError) as caught:
        api.task_status("t1")
    assert caught.value.raw_body == "<html>gateway</html>"


def test_a_task_id_is_quoted_in_the_status_path(sleeps: list[float]) -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"code": 200, "data": {"status": "IN_PROGRESS"}})

    client_for(handler, sleeps).task_status("../audio/music?x=1#y")
    assert asked == ["/api/v1/tasks/..%2Faudio%2Fmusic%3Fx%3D1%23y"]


@pytest.mark.parametrize(
    ("code", "kind"),
    [(1002, ErrorKind.TRANSIENT), (1004, ErrorKind.ACCOUNT), (1008, ErrorKind.ACCOUNT)],
)
def test_minimax_s_refusals_are_waited_out_or_are_account_problems(
    sleeps: list[float], code: int, kind: ErrorKind
) -> None:
    body = {"data": None, "base_resp": {"status_code": code, "status_msg": "no"}}
    with pytest.raises(MusicApiError) as caught:
        client_for(answer(200, body), sleeps).task_status("t1")
    assert caught.value.kind is kind
    assert f"MiniMax status code {code}" in str(caught.value)


def test_minimax_s_numeric_status_is_read(sleeps: list[float]) -> None:
    running = {"data": {"status": 1}, "base_resp": {"status_code": 0, "status_msg": "success"}}
    assert client_for(answer(200, running), sleeps).task_status("t1").state is TaskState.RUNNING
    unknown = {"data": {"status": 7}, "base_resp": {"status_code": 0}}
    with pytest.raises(MusicApiError, match="unknown task status '7'"):
        client_for(answer(200, unknown), sleeps).task_status("t1")


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # nesting past the interpreter's recursion limit
        '{"data": {"status": "completed", "n": ' + "9" * 5000 + "}}",  # past 4,300 digits
        '{"data": ' * 50_000,
    ],
    ids=["deep", "huge integer", "deep and cut"],
)
def test_a_status_body_built_to_hurt_is_an_unreadable_answer(body: str) -> None:
    api = client_for(answer(200, body), [])
    with pytest.raises(MusicApiError) as raised:
        api.task_status("t1")
    assert raised.value.malformed


@cache
def _one_client() -> tuple[MusicApiClient, list[str]]:
    """A client answering whatever `served` holds: one for all examples (making an httpx
    client takes tens of milliseconds)."""
    served = [""]
    return client_for(lambda request: httpx.Response(200, text=served[0]), []), served


@given(st.binary(max_size=2000) | st.recursive(st.none() | st.integers() | st.text(), _nest))
@settings(max_examples=200, deadline=None)
def test_any_status_body_gives_a_status_or_an_api_error(body: object) -> None:
    text = body.decode("latin-1") if isinstance(body, bytes) else json.dumps(body)
    api, served = _one_client()
    served[:] = [text]
    try:
        status = api.task_status("t1")
    except MusicApiError:
        return
    assert status.state in TaskState


def test_a_raw_body_is_logged_clipped_and_without_url_queries() -> None:
    from lyrics_to_song.api_answers import RAW_BODY_LOG_LIMIT, clip

    text = '{"msg": "see https://cdn.example/x.mp3?sig=SECRET"} ' + "y" * 300_000
    kept = clip(text)
    assert "SECRET" not in kept
    assert "https://cdn.example/x.mp3?…" in kept
    assert len(kept) <= RAW_BODY_LOG_LIMIT + 1
    assert clip("short ?body") == "short ?body"
