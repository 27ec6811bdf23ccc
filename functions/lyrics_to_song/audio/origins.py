"""Where a song's audio may be fetched from (docs/security.md: Downloads).

A status answer names the audio's link. The poll function follows it only over https
(plain http only when the API itself is on loopback, for local runs), only to the API's
own host or one of AUDIO_HOSTS, through at most MAX_REDIRECTS redirects, each checked
like the first link. The address of every connection is checked when it is made, after
the name is resolved (addresses.py): a host that resolves to an address that is not
public is never reached, even if its name changes between checks.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from ..addresses import blocked_kind, is_loopback_host
from ..errors import RefusedAudioSource

MAX_REDIRECTS = 3


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
