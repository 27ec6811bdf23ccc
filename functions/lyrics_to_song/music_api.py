"""The API in One client: submit a song, ask a task's status, classify what goes wrong.

The status body is not published, so it is read tolerantly (DESIGN §2): the status
case-insensitively, the audio wherever the known shapes of the same backend put it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from .observability import logger
from .requests import SongRequest

SUBMIT_PATH = "/api/v1/audio/music"
STATUS_PATH = "/api/v1/tasks/{task_id}"
DEFAULT_READ_TIMEOUT = 30.0
# A status answer is small and quick; a short timeout keeps a poll run's worst case bounded.
STATUS_READ_TIMEOUT = 10.0
RAW_BODY_LOG_LIMIT = 2000

_RUNNING = {"in_progress", "pending", "processing", "queued", "running", "submitted", "created"}
_DONE = {"completed", "complete", "success", "succeeded", "finished", "done"}
_FAILED = {"failed", "failure", "error", "cancelled", "canceled", "expired"}


class ErrorKind(StrEnum):
    PERMANENT = "permanent"  # the request itself is wrong: the job fails
    ACCOUNT = "account"  # bad key or no credits: the job waits for the owner
    TRANSIENT = "transient"  # rate limit, server trouble, network: try again later


class MusicApiError(Exception):
    """An API call that did not give a usable answer. Never carries the key."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_accepted: bool = False,
        raw_body: str | None = None,
        malformed: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        # True when a submission may have reached the API even though no answer came back:
        # resubmitting it could pay twice.
        self.maybe_accepted = maybe_accepted
        self.raw_body = raw_body
        # True when the API answered, but with a body that could not be understood.
        self.malformed = malformed

    def redact(self, secret: str) -> None:
        """Remove a secret the server may have echoed back from the text we log."""
        if not secret:
            return
        self.args = tuple(
            a.replace(secret, "[redacted]") if isinstance(a, str) else a for a in self.args
        )
        if self.raw_body:
            self.raw_body = self.raw_body.replace(secret, "[redacted]")


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
    if status in (401, 402, 403):
        return ErrorKind.ACCOUNT
    if status == 429 or status >= 500 or status in (408, 409, 425):
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _clip(text: str) -> str:
    return text if len(text) <= RAW_BODY_LOG_LIMIT else text[:RAW_BODY_LOG_LIMIT] + "…"


def read_envelope(response: httpx.Response) -> Any:
    """Return the `data` (or the whole body for flat shapes) of a successful answer.

    Raises MusicApiError when the HTTP status or the envelope's `code` says it failed;
    the two can disagree, and an error in either counts.
    """
    text = response.text
    try:
        body: Any = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
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
        detail = message or _clip(text) or response.reason_phrase
        raise MusicApiError(
            classify_status(status),
            f"API answered {status}: {detail}",
            status=status,
            retry_after=_retry_after(response),
            raw_body=_clip(text),
        )
    if not isinstance(body, Mapping):
        raise MusicApiError(
            ErrorKind.TRANSIENT,
            f"API answered {response.status_code} with a body that is not a JSON object",
            status=response.status_code,
            raw_body=_clip(text),
            malformed=True,
        )
    data = body.get("data")
    return data if isinstance(data, Mapping) else body


def _first_str(data: Mapping[str, Any], *names: str) -> str | None:
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
    """Find the song in any of the known shapes (DESIGN §2)."""
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


def parse_task_status(data: Mapping[str, Any], raw: str) -> TaskStatus:
    """Read a status body. Raises MusicApiError (transient, with the raw body) if it can't."""
    raw_status = _first_str(data, "status", "state", "task_status")
    if raw_status is None:
        raise MusicApiError(
            ErrorKind.TRANSIENT, "status body has no status", raw_body=_clip(raw), malformed=True
        )
    normalized = raw_status.lower()
    if normalized in _RUNNING:
        return TaskStatus(TaskState.RUNNING, raw_status)
    if normalized in _FAILED:
        error = _first_str(data, "error", "fail_message", "error_message", "fail_reason", "message")
        return TaskStatus(TaskState.FAILED, raw_status, error=error or f"task {raw_status}")
    if normalized in _DONE:
        audio = find_audio(data)
        if audio is None:
            raise MusicApiError(
                ErrorKind.TRANSIENT,
                f"task is {raw_status} but no audio was found in the body",
                raw_body=_clip(raw),
                malformed=True,
            )
        return TaskStatus(TaskState.DONE, raw_status, audio=audio, duration_seconds=_duration(data))
    raise MusicApiError(
        ErrorKind.TRANSIENT,
        f"unknown task status {raw_status!r}",
        raw_body=_clip(raw),
        malformed=True,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """In-call retries of transient errors; what is left over goes back to the queue."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 5.0


class MusicApiClient:
    """A thin typed wrapper over one httpx.Client. The key is sent, never logged or raised."""

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        http: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._sent_key = ""
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(connect=5.0, read=read_timeout, write=10.0, pool=5.0)
        )
        self._status_timeout = httpx.Timeout(
            connect=5.0, read=min(read_timeout, STATUS_READ_TIMEOUT), write=5.0, pool=5.0
        )
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def _headers(self) -> dict[str, str]:
        key = self._api_key()
        self._sent_key = key  # what to scrub from error texts
        return {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except MusicApiError as exc:
                exc.redact(self._sent_key)
                if exc.kind is not ErrorKind.TRANSIENT or exc.maybe_accepted:
                    raise
                delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
                if exc.retry_after is not None:
                    if exc.retry_after > self.retry.max_delay:
                        raise  # longer than we may wait here: let the queue hold it
                    delay = exc.retry_after
                if attempt == self.retry.attempts:
                    raise
                logger.warning(
                    "API call failed; retrying",
                    extra={"api_status": exc.status, "error": str(exc), "retry_in_seconds": delay},
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, request: SongRequest) -> str:
        """Start a song; return the task id. Retries only what surely did not reach the API."""

        def call() -> str:
            try:
                response = self.http.post(
                    self.base_url + SUBMIT_PATH, json=request.api_body(), headers=self._headers()
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise MusicApiError(
                    ErrorKind.TRANSIENT, f"could not connect to the API: {type(exc).__name__}"
                ) from None
            except httpx.HTTPError as exc:
                raise MusicApiError(
                    ErrorKind.TRANSIENT,
                    f"no answer to the submission ({type(exc).__name__}): "
                    "it may have been accepted",
                    maybe_accepted=True,
                ) from None
            try:
                data = read_envelope(response)
            except MusicApiError as exc:
                # Only a refusal we can trust (rate limit, unavailable, bad request, account)
                # proves nothing was started; other server errors may hide an accepted job.
                if exc.kind is ErrorKind.TRANSIENT and exc.status not in (429, 503):
                    exc.maybe_accepted = True
                raise
            task_id = _first_str(data, "task_id", "taskId", "id")
            if task_id is None:
                raise MusicApiError(
                    ErrorKind.TRANSIENT,
                    "the submission was answered without a task id",
                    status=response.status_code,
                    maybe_accepted=True,
                    raw_body=_clip(response.text),
                )
            return task_id

        result: str = self._with_retries(call)
        return result

    def task_status(self, task_id: str) -> TaskStatus:
        def call() -> TaskStatus:
            try:
                response = self.http.get(
                    self.base_url + STATUS_PATH.format(task_id=task_id),
                    headers=self._headers(),
                    timeout=self._status_timeout,
                )
            except httpx.HTTPError as exc:
                raise MusicApiError(
                    ErrorKind.TRANSIENT, f"status request failed: {type(exc).__name__}"
                ) from None
            data = read_envelope(response)
            return parse_task_status(data, response.text)

        result: TaskStatus = self._with_retries(call)
        return result

    def audio_headers(self, url: str) -> dict[str, str]:
        """Send the key with a download only to the API's own host, never to a third party."""
        same_origin = httpx.URL(url).netloc == httpx.URL(self.base_url).netloc
        return self._headers() if same_origin else {}
