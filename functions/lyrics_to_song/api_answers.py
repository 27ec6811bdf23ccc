"""Reading the API's answers: the envelope, the task status, and where the audio is.

The status body is not published, so it is read tolerantly (docs/music-api.md, "Status
answers"): the status case-insensitively, the audio wherever the known shapes of the
same backend put it. What cannot be understood raises a MusicApiError that carries the
raw body, so the task is kept and the body logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from .errors import ErrorKind, MusicApiError
from .http_transport import retry_after
from .texts import without_queries

RAW_BODY_LOG_LIMIT = 2000

_RUNNING = {"in_progress", "pending", "processing", "queued", "running", "submitted", "created"}
_DONE = {"completed", "complete", "success", "succeeded", "finished", "done"}
_FAILED = {"failed", "failure", "error", "cancelled", "canceled", "expired"}
# MiniMax's own query answer (docs/music-api.md, "Status answers"): `data.status` is a
# number, and `base_resp.status_code` says whether the request succeeded.
_MINIMAX_STATUS = {1: "processing", 2: "success"}
_MINIMAX_RATE_LIMITED = (1002, 1039)
_MINIMAX_ACCOUNT = (1004, 1008, 2049)


class TaskState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class AudioSource:
    url: str | None = None
    hex_data: str | None = None


@dataclass(frozen=True)
class TaskStatus:
    state: TaskState
    raw_status: str
    audio: AudioSource | None = None
    error: str | None = None
    duration_seconds: float | None = None


def classify_status(status: int) -> ErrorKind:
    """What an HTTP or envelope code means for the job (docs/music-api.md, "Errors")."""
    if status in (401, 402, 403):
        return ErrorKind.ACCOUNT
    if status == 429 or status >= 500 or status in (408, 409, 425):
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def retry_after_of(response: httpx.Response) -> float | None:
    return retry_after(response.headers.get("retry-after"))


def clip(text: str) -> str:
    """A raw body as a log line keeps it: its start, without URL queries."""
    kept = without_queries(text[:RAW_BODY_LOG_LIMIT])
    return kept if len(text) <= RAW_BODY_LOG_LIMIT else kept + "…"


def read_envelope(response: httpx.Response) -> Any:
    """Return the `data` (or the whole body for flat shapes) of a successful answer.

    Raises MusicApiError when the HTTP status or the envelope's `code` says it failed;
    the two can disagree, and an error in either counts.
    """
    text = response.text
    try:
        body: Any = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        # Not JSON (JSONDecodeError is a ValueError), an integer past Python's 4,300
        # digits, or nesting past the interpreter's recursion limit: not understood.
        body = None
    code: int | None = None
    message = ""
    if isinstance(body, Mapping):
        raw_code = body.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        raw_message = body.get("message") or body.get("msg") or body.get("error")
        message = raw_message if isinstance(raw_message, str) else ""
    failing = [s for s in (code, response.status_code) if s is not None and s >= 400]
    if failing:
        status = failing[0]  # the envelope's code is the more specific when both fail
        detail = message or clip(text) or response.reason_phrase
        raise MusicApiError(
            classify_status(status),
            f"API answered {status}: {detail}",
            status=status,
            retry_after=retry_after_of(response),
            raw_body=clip(text),
        )
    if not isinstance(body, Mapping):
        raise MusicApiError(
            ErrorKind.TRANSIENT,
            f"API answered {response.status_code} with a body that is not a JSON object",
            status=response.status_code,
            raw_body=clip(text),
            malformed=True,
        )
    return _data_of(body)


def _data_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The envelope's `data`; for MiniMax's shape, with `base_resp` and `extra_info`
    (which it keeps beside `data`); for flat shapes, the whole body."""
    data = body.get("data")
    if "base_resp" in body:
        beside = {k: body[k] for k in ("base_resp", "extra_info") if k in body}
        return {**(data if isinstance(data, Mapping) else {}), **beside}
    return data if isinstance(data, Mapping) else body


def first_str(data: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _is_hex(text: str) -> bool:
    return (
        len(text) % 2 == 0
        and len(text) >= 2
        and all(c in "0123456789abcdefABCDEF" for c in text[:64])
    )


def _audio_from(value: Any) -> AudioSource | None:
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            return AudioSource(url=value)
        if _is_hex(value):
            return AudioSource(hex_data=value)
        return None
    if isinstance(value, Mapping):
        for key in ("audio_url", "url", "audio_file", "audio"):
            found = _audio_from(value.get(key))
            if found:
                return found
    if isinstance(value, list) and value:
        return _audio_from(value[0])
    return None


def find_audio(data: Mapping[str, Any]) -> AudioSource | None:
    """Find the song in any of the known shapes (docs/music-api.md, "Status answers")."""
    for key in ("audio_url", "output", "response_data", "result", "audio", "audio_file"):
        found = _audio_from(data.get(key))
        if found:
            return found
    return None


def _duration(data: Mapping[str, Any]) -> float | None:
    for holder, key, scale in (
        (data, "duration", 1.0),
        (data, "audio_duration", 1.0),
        (data.get("extra_info"), "music_duration", 0.001),  # MiniMax reports milliseconds
        (data.get("output"), "duration", 1.0),
    ):
        if isinstance(holder, Mapping):
            value = holder.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value) * scale
    return None


def _minimax_failure(data: Mapping[str, Any]) -> TaskStatus | None:
    """A non-zero `base_resp.status_code`: a refusal to wait out (rate limit), an account
    problem, or the task's failure, with `status_msg` as its reason; None when it is 0."""
    base = data.get("base_resp")
    code = base.get("status_code") if isinstance(base, Mapping) else None
    if not isinstance(code, int) or code == 0:
        return None
    assert isinstance(base, Mapping)
    message = f"{base.get('status_msg') or 'no message'} (MiniMax status code {code})"
    if code in _MINIMAX_RATE_LIMITED:
        raise MusicApiError(ErrorKind.TRANSIENT, f"API answered {message}", status=429)
    if code in _MINIMAX_ACCOUNT:
        raise MusicApiError(ErrorKind.ACCOUNT, f"API answered {message}")
    return TaskStatus(TaskState.FAILED, str(code), error=message)


def _status_word(data: Mapping[str, Any]) -> str | None:
    number = data.get("status")
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number)
    return first_str(data, "status", "state", "task_status")


def parse_task_status(data: Mapping[str, Any], raw: str) -> TaskStatus:
    """Read a status body. Raises MusicApiError (transient, with the raw body) if it can't."""
    failure = _minimax_failure(data)
    if failure is not None:
        return failure
    raw_status = _status_word(data)
    if raw_status is None:
        raise MusicApiError(
            ErrorKind.TRANSIENT, "status body has no status", raw_body=clip(raw), malformed=True
        )
    normalized = raw_status.lower()
    if raw_status.isdigit():
        normalized = _MINIMAX_STATUS.get(int(raw_status), raw_status)
    if normalized in _RUNNING:
        return TaskStatus(TaskState.RUNNING, raw_status)
    if normalized in _FAILED:
        error = first_str(data, "error", "fail_message", "error_message", "fail_reason", "message")
        return TaskStatus(TaskState.FAILED, raw_status, error=error or f"task {raw_status}")
    if normalized in _DONE:
        audio = find_audio(data)
        if audio is None:
            raise MusicApiError(
                ErrorKind.TRANSIENT,
                f"task is {raw_status} but no audio was found in the body",
                raw_body=clip(raw),
                malformed=True,
            )
        return TaskStatus(TaskState.DONE, raw_status, audio=audio, duration_seconds=_duration(data))
    raise MusicApiError(
        ErrorKind.TRANSIENT,
        f"unknown task status {raw_status!r}",
        raw_body=clip(raw),
        malformed=True,
    )
