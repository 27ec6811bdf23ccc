"""A webhook receiver on loopback, as a caller outside AWS would run one: it checks each
delivery with the `standardwebhooks` library (as docs/webhooks.md shows, never with the
stack's own signer: a signer checked by itself would pass whatever it got wrong), keeps
what it got, and answers as told, so the local stack and the tests can make it fail.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from lyrics_to_song.data.rows import DEFAULT_TENANT
from lyrics_to_song.webhooks.signing import tenant_secret

from .emulator_faults import ODD_RETRY_AFTERS


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Standard Webhooks' check: a `v1` signature under `secret` over the id, the
    timestamp and the body, and a timestamp within five minutes of this clock."""
    try:
        Webhook(secret).verify(body, dict(headers))
    except (WebhookVerificationError, ValueError):
        return False
    return True


# The generations of a tenant's secret this receiver knows (lyrics-to-song webhook rotate).
KNOWN_GENERATIONS = 10


def secrets_for(stack_secret: str, body: bytes) -> list[str]:
    """The secrets of the tenant the notice is for: a receiver serving one tenant holds
    that one's (two, while it changes over); this one serves every tenant of the local
    stack, whatever their rotations."""
    try:
        tenant = json.loads(body).get("tenant") or DEFAULT_TENANT
    except (ValueError, AttributeError):
        tenant = DEFAULT_TENANT
    return [tenant_secret(stack_secret, str(tenant), g) for g in range(KNOWN_GENERATIONS)]


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got, and what it answered."""

    delivery_id: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    answered: int

    @property
    def notice(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


# Decides the status of each POST: given the delivery id and how many times it came.
Answers = Callable[[str, int], int]
# Decides how a POST is misanswered, if at all: "" (as `answers` says), "odd Retry-After"
# (a 503 with a Retry-After no parser should take) or "drip" (the status line a byte at
# a time, slower than any sender waits; such a POST is recorded as answered 0).
Mischief = Callable[[str, int], str]
DRIP_SECONDS = 0.25  # between two bytes of a dripped status line


def always(status: int) -> Answers:
    return lambda delivery_id, seen: status


def failing_first(times: int, status: int = 500) -> Answers:
    """`status` for the first `times` POSTs of each delivery, then 200."""
    return lambda delivery_id, seen: status if seen <= times else 200


def _drip(request: BaseHTTPRequestHandler, answer: bytes) -> None:
    """Send `answer` a byte every DRIP_SECONDS, until the sender hangs up."""
    try:
        for byte in answer:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(DRIP_SECONDS)
    except OSError:
        pass
    request.close_connection = True


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that takes webhooks; `url` is where to point them."""

    def __init__(
        self,
        stack_secret: str,
        *,
        answers: Answers | None = None,
        port: int = 0,
        on_delivery: Callable[[Delivery], None] | None = None,
        mischief: Mischief | None = None,
    ) -> None:
        self.stack_secret = stack_secret
        self.answers = answers or always(200)
        self.mischief = mischief or (lambda delivery_id, seen: "")
        self.on_delivery = on_delivery
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver._take(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the stack's own output says what happened

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        # Stops within 50 ms of being asked, not 500: the tests start and stop many.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        host, bound = self._server.server_address[:2]
        self.url = f"http://{host!s}:{bound}/hooks/songs"

    def _take(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        secrets = secrets_for(self.stack_secret, body)
        verified = any(verify(secret, headers, body) for secret in secrets)
        delivery_id = headers.get("webhook-id", "")
        with self._lock:
            seen = 1 + sum(1 for d in self.deliveries if d.delivery_id == delivery_id)
            trick = self.mischief(delivery_id, seen) if verified else ""
            status = self.answers(delivery_id, seen) if verified else 401
            status = {"odd Retry-After": 503, "drip": 0}.get(trick, status)
            self.deliveries.append(
                Delivery(
                    delivery_id,
                    headers.get("webhook-timestamp", ""),
                    headers.get("webhook-signature", ""),
                    body,
                    verified,
                    status,
                )
            )
        if trick == "drip":
            _drip(request, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            return
        request.send_response(status)
        if trick == "odd Retry-After":
            request.send_header("Retry-After", ODD_RETRY_AFTERS[seen % len(ODD_RETRY_AFTERS)])
        request.send_header("Content-Length", "0")
        request.end_headers()
        if self.on_delivery is not None:
            self.on_delivery(self.deliveries[-1])

    def accepted(self) -> dict[str, Delivery]:
        """The first delivery answered 2xx, by delivery id."""
        with self._lock:
            found: dict[str, Delivery] = {}
            for delivery in self.deliveries:
                if 200 <= delivery.answered < 300:
                    found.setdefault(delivery.delivery_id, delivery)
            return found

    def wait_for(self, delivery_id: str, timeout: float) -> Delivery | None:
        """The accepted delivery of that id, waited for up to `timeout` seconds."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            found = self.accepted().get(delivery_id)
            if found is not None:
                return found
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
