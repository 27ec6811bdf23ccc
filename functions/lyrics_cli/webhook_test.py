"""`lyrics-to-song webhook test`: one signed example notice to a receiver, and what it
answered, so a receiver can be checked before any song is paid for (docs/webhooks.md)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from lyrics_to_song.webhooks.delivery import USER_AGENT
from lyrics_to_song.webhooks.signing import signed_headers

from . import webhook_tools
from .stack_target import CliError, Cloud, ExitCode

TIMEOUT_SECONDS = 10.0
SHOWN_CHARS = 300


@dataclass(frozen=True)
class TestAnswer:
    url: str
    delivery_id: str
    status: int
    answer: str  # the status line and the start of the body
    seconds: float


def example_notice(tenant: str, delivery_id: str, now: float) -> dict[str, Any]:
    """A notice shaped as a COMPLETED job's, marked as a test: no job, no song."""
    job_id = "job-" + "0" * 32
    return {
        "type": "song.test",
        "test": True,
        "notice_id": delivery_id,
        "job_id": job_id,
        "task_id": None,
        "status": "COMPLETED",
        "source": "lyrics-to-song webhook test",
        "request_id": None,
        "tenant": tenant,
        "model": None,
        "song": None,
        "error": None,
        "created_at": now,
        "submitted_at": None,
        "finished_at": now,
    }


def send(cloud: Cloud, tenant: str, url: str) -> TestAnswer:
    """POST the example, signed as the tenant's webhooks are now; the receiver's answer."""
    now = time.time()
    found = webhook_tools.secrets(cloud, tenant, now)
    signing = [found.current]
    if found.previous and found.previous_until and now < found.previous_until:
        signing.append(found.previous)
    delivery_id = f"test-{uuid.uuid4().hex}"
    body = json.dumps(example_notice(tenant, delivery_id, now)).encode()
    headers = {**signed_headers(signing, delivery_id, int(now), body), "User-Agent": USER_AGENT}
    started = time.monotonic()
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as http:
            reply = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise CliError(
            f"the receiver at {url} did not answer: {type(exc).__name__} {exc}",
            ExitCode.ENDED_BADLY,
        ) from None
    text = f"{reply.status_code} {reply.reason_phrase}".strip()
    if reply.text:
        text += f": {reply.text[:SHOWN_CHARS]}"
    return TestAnswer(url, delivery_id, reply.status_code, text, time.monotonic() - started)
