"""The functions' HTTP transport to the outside (docs/security.md: Bounds).

- Each connection's address is checked after the name is resolved (addresses.py), so a
  name that changes what it points to between a check and the connection gains nothing.
- A call made under `call_deadline(seconds)` ends by then, whatever the other side does:
  connecting, sending, the headers and every read of the body each get only the time
  that is left (httpx's own timeouts bound each network operation, not the whole call,
  so an answer dripped a byte at a time would otherwise run on).
- `NO_ENCODING` asks for the body as it is, and callers read it raw: a compressed answer
  is refused, never inflated (a few KB of gzip can hold gigabytes).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

# Sent with every call to the outside; an answer that is encoded anyway is refused.
NO_ENCODING = {"Accept-Encoding": "identity"}

# Raises when a host's address must not be reached: (host, address) -> None.
AddressCheck = Callable[[str, str], None]

_deadlines = threading.local()


@contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Calls made in this block on this thread end within `seconds` of its start (a
    timeout error of httpx's when they would not)."""
    outer = getattr(_deadlines, "at", None)
    at = time.monotonic() + seconds
    _deadlines.at = at if outer is None else min(outer, at)
    try:
        yield
    finally:
        _deadlines.at = outer


def is_encoded(response: httpx.Response) -> bool:
    """The answer came with a content encoding, though none was asked for."""
    return response.headers.get("content-encoding", "identity").strip().lower() not in (
        "",
        "identity",
    )


# Retry-After as seconds: ASCII digits (RFC 9110), a fraction tolerated; `²` or `1e999` is not.
_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in seconds from `now`: a number of seconds or an HTTP date;
    None for anything else, however it is built."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    if len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body as it was sent, never decoded (callers refuse an encoded one first). A
    response held in memory already (as in-process transports make them) is given whole."""
    try:
        yield from response.iter_raw()
    except httpx.StreamConsumed:
        yield response.content


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout of one network operation: at most the time left before the deadline."""
    at: float | None = getattr(_deadlines, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write stops at the deadline of the call."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedNetwork(httpcore.SyncBackend):
    """Resolves each host itself, refuses the whole name if `check` refuses any of its
    addresses, and connects to an address it checked, within the call's deadline."""

    def __init__(self, check: AddressCheck | None) -> None:
        self._check = check

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from None
        addresses = [str(info[4][0]) for info in found]
        if self._check is not None:
            for address in addresses:
                self._check(host, address)
        stream = super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with every connection's address checked by `check` (None: any
    address, for the API's own host) and bounded by `call_deadline`. Proxies from the
    environment are not used: a proxy would make the connection instead."""

    def __init__(self, check: AddressCheck | None) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to choose the network; this is that pool
        # with the bounded one (tests/unit/test_audio_origins.py proves it is in effect).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_BoundedNetwork(check),
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
        )
