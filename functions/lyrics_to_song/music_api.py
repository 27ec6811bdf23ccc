"""The API in One client: submit a song, ask a task's status, open a song's audio.

The endpoints, the error codes and what each means are in docs/music-api.md; the
answers are read by `api_answers`, and the errors are the ones of `errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from .api_answers import TaskStatus, clip, first_str, parse_task_status, read_envelope
from .audio.origins import MAX_REDIRECTS, AudioOrigins
from .errors import ErrorKind, MusicApiError, RefusedAudioSource
from .http_transport import NO_ENCODING, CheckedTransport, call_deadline, is_encoded, raw_chunks
from .observability import logger
from .song_request import SongRequest
from .texts import kept_error

SUBMIT_PATH = "/api/v1/audio/music"
STATUS_PATH = "/api/v1/tasks/{task_id}"
DEFAULT_READ_TIMEOUT = 30.0
# A status answer is small and quick; a short timeout keeps a poll run's worst case bounded.
STATUS_READ_TIMEOUT = 10.0
# A status answer is read up to this size. Answers with hex audio are the large ones:
# this reads songs of up to 16 MiB that way (larger ones need a URL; docs/music-api.md).
MAX_STATUS_BYTES = 32 * 1024 * 1024
MAX_SUBMIT_ANSWER_BYTES = 1024 * 1024  # a task id in an envelope
# Each whole call ends by then, however the other side answers (docs/security.md: Bounds):
# a status check gets this beside twice its read timeout (25 s in all by default: connect,
# ask, read up to MAX_STATUS_BYTES); a submission beyond its read timeout (connect, send).
STATUS_CONNECT_SECONDS = 5.0
SUBMIT_SEND_SECONDS = 15.0


@dataclass(frozen=True)
class RetryPolicy:
    """In-call retries of transient errors; what is left over goes back to the queue."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 5.0


class MusicApiClient:
    """A thin typed wrapper over httpx: one client for the API's calls, one for downloads,
    whose connections are checked (audio/origins.py). The key is sent, never logged or raised.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        http: httpx.Client | None = None,
        downloads: httpx.Client | None = None,
        audio_hosts: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._sent_key = ""
        self.http = http or httpx.Client(
            transport=CheckedTransport(None),
            timeout=httpx.Timeout(connect=5.0, read=read_timeout, write=10.0, pool=5.0),
        )
        self._submit_deadline = SUBMIT_SEND_SECONDS + read_timeout
        self.origins = AudioOrigins(self.base_url, audio_hosts)
        # No proxies from the environment: the checked transport connects by itself.
        self.downloads = downloads or httpx.Client(
            transport=CheckedTransport(self.origins.check_address), trust_env=False
        )
        status_read = min(read_timeout, STATUS_READ_TIMEOUT)
        self._status_timeout = httpx.Timeout(connect=5.0, read=status_read, write=5.0, pool=5.0)
        self._status_deadline = STATUS_CONNECT_SECONDS + 2 * status_read
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def _headers(self) -> dict[str, str]:
        key = self._api_key()
        self._sent_key = key  # what to scrub from error texts
        return {"Authorization": f"Bearer {key}", "Accept": "application/json", **NO_ENCODING}

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except MusicApiError as raised:
                exc = raised.redacted(self._sent_key)
                if exc.kind is not ErrorKind.TRANSIENT or exc.maybe_accepted:
                    raise exc from None
                delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
                if exc.retry_after is not None:
                    if exc.retry_after > self.retry.max_delay:
                        raise exc from None  # longer than we may wait here: the queue holds it
                    delay = exc.retry_after
                if attempt == self.retry.attempts:
                    raise exc from None
                logger.warning(
                    "API call failed; retrying",
                    extra={
                        "api_status": exc.status,
                        "error": kept_error(str(exc)),
                        "retry_in_seconds": delay,
                    },
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, request: SongRequest) -> str:
        """Start a song; return the task id. Retries only what surely did not reach the API."""

        def call() -> str:
            headers = self._headers()  # no key: an account error, before anything is sent
            try:
                with (
                    call_deadline(self._submit_deadline),
                    self.http.stream(
                        "POST",
                        self.base_url + SUBMIT_PATH,
                        json=request.api_body(),
                        headers=headers,
                    ) as streamed,
                ):
                    response = _read_capped(streamed, MAX_SUBMIT_ANSWER_BYTES, "submission")
            except MusicApiError as exc:
                raise exc.possibly_accepted() from None  # it was sent; its answer is not read
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
                    raise exc.possibly_accepted() from None
                raise
            task_id = first_str(data, "task_id", "taskId", "id")
            if task_id is None:
                raise MusicApiError(
                    ErrorKind.TRANSIENT,
                    "the submission was answered without a task id",
                    status=response.status_code,
                    maybe_accepted=True,
                    raw_body=clip(response.text),
                )
            return task_id

        result: str = self._with_retries(call)
        return result

    def task_status(self, task_id: str) -> TaskStatus:
        """The task's status, in one request: every status request counts against
        STATUS_CHECKS_PER_MINUTE, and the poll run asks again within seconds anyway."""
        url = self.base_url + STATUS_PATH.format(task_id=quote(task_id, safe=""))
        try:
            try:
                with (
                    call_deadline(self._status_deadline),
                    self.http.stream(
                        "GET", url, headers=self._headers(), timeout=self._status_timeout
                    ) as streamed,
                ):
                    response = _read_capped(streamed, MAX_STATUS_BYTES, "status")
            except httpx.HTTPError as exc:
                raise MusicApiError(
                    ErrorKind.TRANSIENT, f"status request failed: {type(exc).__name__}"
                ) from None
            return parse_task_status(read_envelope(response), response.text)
        except MusicApiError as raised:
            raise raised.redacted(self._sent_key) from None

    def audio_headers(self, url: httpx.URL) -> dict[str, str]:
        """The key goes with a download only to the API's own origin over https."""
        return self._headers() if self.origins.sends_key(url) else dict(NO_ENCODING)

    @contextmanager
    def open_audio(self, url: str, read_timeout: float = 30.0) -> Iterator[httpx.Response]:
        """A song's audio as a streamed response; read it raw (`iter_raw`): it is never
        decoded, and an encoded one is the caller's to refuse.

        Every hop is checked (RefusedAudioSource): the link, each redirect's target, and
        the address each connection reaches.
        """
        target = self.origins.check_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            with self.downloads.stream(
                "GET",
                target,
                headers=self.audio_headers(target),
                timeout=_download_timeout(read_timeout),
                follow_redirects=False,
            ) as response:
                if not response.is_redirect:
                    yield response
                    return
                location = response.headers.get("location", "")
            target = self.origins.check_url(target.join(location))
        raise RefusedAudioSource(f"the audio link redirected more than {MAX_REDIRECTS} times")


def _download_timeout(read_timeout: float) -> httpx.Timeout:
    return httpx.Timeout(connect=5.0, read=min(30.0, read_timeout), write=30.0, pool=5.0)


def _read_capped(response: httpx.Response, limit: int, what: str) -> httpx.Response:
    """The `what` answer read whole, as sent (never decoded), but never more than `limit`
    bytes of it. An encoded answer is not read at all: a refusal (4xx, 5xx) is then told
    by its HTTP status alone, anything else is an answer not understood."""
    body = bytearray()
    if is_encoded(response):
        if response.status_code < 400:
            encoding = response.headers["content-encoding"][:40]
            raise MusicApiError(
                ErrorKind.TRANSIENT,
                f"the {what} answer came encoded ({encoding}) though none was asked for: not read",
                status=response.status_code,
                malformed=True,
            )
    else:
        for chunk in raw_chunks(response):
            body += chunk
            if len(body) > limit:
                raise MusicApiError(
                    ErrorKind.PERMANENT,
                    f"the {what} answer is larger than {limit} bytes, so it is not read"
                    + (
                        ": songs this large must come as a link, not as hex audio"
                        if what == "status"
                        else ""
                    ),
                    status=response.status_code,
                )
    # The copy holds the body as read: it must not say it is compressed.
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )
