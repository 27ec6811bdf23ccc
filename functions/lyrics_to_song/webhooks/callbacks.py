"""Where a job's webhook may be sent (docs/webhooks.md: Which addresses are refused).

A `callback_url` is checked twice before anything is paid: its text (https, no
credentials, a host of CALLBACK_HOSTS when that list is set), then every address its
host resolves to (none loopback, link-local, private, multicast or reserved). Each
delivery checks the address of its connection again, after resolving the name, so a
name that changes what it points at between the checks is refused too.

Plain http, and loopback hosts, only on a local run (the music API on loopback), where
the local stack's own receiver listens.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from ..addresses import blocked_kind, is_loopback_host
from ..errors import RefusedCallback, RetryLater
from ..texts import without_queries

MAX_CALLBACK_URL_CHARS = 2048
Resolver = Callable[..., list[Any]]


@dataclass(frozen=True)
class CallbackRules:
    hosts: frozenset[str] = frozenset()  # CALLBACK_HOSTS; empty: any public host
    local: bool = False  # a local run: http and loopback receivers are allowed

    @classmethod
    def of(cls, hosts: Iterable[str], *, local: bool) -> CallbackRules:
        return cls(frozenset(h.strip().lower() for h in hosts if h.strip()), local)

    def check_url(self, value: Any, where: str = "'callback_url'") -> str:
        """The URL as given, or RefusedCallback saying what is wrong with its text."""
        if not isinstance(value, str) or not value.strip():
            raise RefusedCallback(f"{where} must be an https URL, got {value!r}")
        if len(value) > MAX_CALLBACK_URL_CHARS:
            raise RefusedCallback(
                f"{where} is {len(value)} characters; at most {MAX_CALLBACK_URL_CHARS}"
            )
        try:
            url = httpx.URL(value.strip())
        except httpx.InvalidURL:
            raise RefusedCallback(f"{where} is not a valid URL: {value[:200]!r}") from None
        if not url.host:
            raise RefusedCallback(f"{where} has no host: {value[:200]!r}")
        local_http = self.local and url.scheme == "http" and is_loopback_host(url.host)
        if url.scheme != "https" and not local_http:
            raise RefusedCallback(
                f"{where} must be https (the notice would go out in clear text), "
                f"got {without_queries(str(url.copy_with(fragment=None)))}"
            )
        if url.userinfo:
            raise RefusedCallback(
                f"{where} carries credentials (user:password@): put them nowhere in the URL; "
                "receivers check the signature instead"
            )
        if url.fragment:
            raise RefusedCallback(f"{where} has a #fragment, which is never sent: remove it")
        host = url.host.lower()
        if self.hosts and host not in self.hosts:
            raise RefusedCallback(
                f"{where} names host {host}, which is not one of CALLBACK_HOSTS "
                f"({', '.join(sorted(self.hosts))})"
            )
        if _is_address(host):
            self.check_address(host, host, where)
        return value.strip()

    def check_address(self, host: str, address: str, where: str = "the callback_url") -> None:
        """RefusedCallback when `host` (resolved to `address`) must not be called."""
        kind = blocked_kind(address)
        if kind is None or (self.local and kind == "loopback"):
            return
        named = f"its host {host} resolves to" if host != address else "its host is"
        article = "an" if kind[0] in "aeiou" else "a"
        raise RefusedCallback(
            f"{where} is refused: {named} {article} {kind} address ({address}); "
            "webhooks go to public addresses only"
        )

    def check_resolved(
        self, url: str, resolve: Resolver = socket.getaddrinfo, where: str = "'callback_url'"
    ) -> None:
        """Resolve the URL's host and check every address it has.

        A name that does not exist is refused; DNS that fails for a moment is RetryLater
        (the request waits on the queue, unpaid)."""
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = resolve(parsed.host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
                raise RefusedCallback(
                    f"{where} is refused: its host {parsed.host} does not resolve to any address"
                ) from None
            raise RetryLater(f"could not resolve the callback host {parsed.host}: {exc}") from None
        for info in found:
            self.check_address(parsed.host, str(info[4][0]), where)


def _is_address(host: str) -> bool:
    try:
        blocked_kind(host)
    except ValueError:
        return False
    return True
