"""Where a song's audio may be fetched from (docs/security.md: Downloads).

A status answer names the audio's link. The poll function follows it only over https
(plain http only when the API itself is on loopback, for local runs), only to the API's
own host or one of AUDIO_HOSTS, through at most MAX_REDIRECTS redirects, each checked
like the first link. The address of every connection is checked when it is made, after
the name is resolved: a host that resolves to a loopback, link-local, private,
multicast or reserved address is never reached, even if its name changes between checks.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from .errors import RefusedAudioSource

MAX_REDIRECTS = 3
_BLOCKED = ("loopback", "link_local", "private", "multicast", "reserved", "unspecified")


def blocked_kind(address: str) -> str | None:
    """What makes an address one never to connect to ("link-local", "private", ...), or
    None for a public one. Loopback is among them: callers that allow it say so."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind in _BLOCKED:
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AudioOrigins:
    """The places audio may come from, and the one place the API key may go."""

    def __init__(self, api_base_url: str, audio_hosts: Iterable[str] = ()) -> None:
        api = httpx.URL(api_base_url)
        self._api_origin = (api.scheme, api.host, api.port)
        # The API on loopback is a local run: its emulator serves audio over plain http.
        self.local = is_loopback_host(api.host)
        self.hosts = frozenset({api.host.lower(), *(h.strip().lower() for h in audio_hosts)})

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The link as a URL, or RefusedAudioSource saying what is wrong with it."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise RefusedAudioSource(
                f"the audio link is not a valid URL: {str(url)[:200]!r}"
            ) from None
        if parsed.scheme != "https" and not (self.local and parsed.scheme == "http"):
            raise RefusedAudioSource(
                f"the audio link is not https ({parsed.scheme}://{parsed.host}): refused"
            )
        if parsed.userinfo:
            raise RefusedAudioSource("the audio link carries credentials: refused")
        if parsed.host.lower() not in self.hosts:
            raise RefusedAudioSource(
                f"the audio link's host {parsed.host} is neither the API's nor one of "
                "AUDIO_HOSTS: refused"
            )
        return parsed

    def check_address(self, host: str, address: str) -> None:
        kind = blocked_kind(address)
        if kind is None or (self.local and kind == "loopback"):
            return
        raise RefusedAudioSource(
            f"the audio host {host} resolves to a {kind} address ({address}): refused"
        )

    def sends_key(self, url: httpx.URL) -> bool:
        """The key goes with a download only to the API's own origin, and never over plain
        http (but on loopback, which never leaves the machine)."""
        same_origin = (url.scheme, url.host, url.port) == self._api_origin
        return same_origin and (url.scheme == "https" or self.local)


# Raises when a host's address must not be reached: (host, address) -> None.
AddressCheck = Callable[[str, str], None]


class _CheckedNetwork(httpcore.SyncBackend):
    """Resolves each host itself, refuses the whole name if any of its addresses is
    internal, and connects to an address it checked."""

    def __init__(self, check: AddressCheck) -> None:
        self._check = check

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from None
        addresses = [str(info[4][0]) for info in found]
        for address in addresses:
            self._check(host, address)
        return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with every connection's address checked by `check` (proxies
    from the environment are not used: a proxy would make the connection instead)."""

    def __init__(self, check: AddressCheck) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool without a way to choose the network; this is that pool
        # with the checked one (tests/unit/test_audio_origins.py proves it is in effect).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_CheckedNetwork(check),
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
        )
