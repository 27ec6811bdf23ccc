"""The emulator's faults: the switches a test or `POST /_emulator/faults` sets, the
random faults of the chaos run, and the answers built to hurt a client (a gzip bomb,
JSON nested past any recursion limit, a huge number, an answer a byte at a time, a
connection dropped mid-answer), as docs/emulator.md lists them."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from werkzeug.wrappers import Response

# What a random API fault may be: "cut" does the work, then drops the connection mid-answer;
# "stall" answers only after stall_seconds (past the client's read timeout, if it is short).
API_FAULTS = ("429", "500", "503", "malformed", "cut", "stall")
# Answers built to hurt a client: a few KB of gzip that inflate to 64 MiB, JSON nested past
# any recursion limit, an integer past 4,300 digits, a Retry-After no parser should take.
HOSTILE_FAULTS = (
    "gzip bomb",
    "deep JSON",
    "huge number",
    "odd Retry-After",
    "huge Retry-After",
    "drip",
)
HUGE_RETRY_AFTER = "9999999999"  # seconds: some 317 years
DRIP_PIECE_SECONDS = 0.5  # a dripped answer: a byte this often, for 60 s in all
# Retry-After values no parser should take (the webhook receiver sends them too).
ODD_RETRY_AFTERS = ("²", "1e999", "inf", "-1", "soon")


@cache
def bomb() -> bytes:
    """64 MiB of zeros gzipped twice: a few KB, made at first use (0.4 s), not at import."""
    return gzip.compress(gzip.compress(b"\0" * (64 * 1024 * 1024)))


@dataclass
class Faults:
    """Switches; counters apply to the next N API calls (submit or status) and count down."""

    rate_limit: int = 0  # answer 429 with Retry-After
    rate_limit_prompt: str = ""  # always answer 429 to submissions whose prompt has this text
    retry_after_seconds: int = 1
    server_error: int = 0  # answer server_error_status
    server_error_status: int = 503
    malformed: int = 0  # answer 200 with a body that is not the envelope
    slow_seconds: float = 0.0  # wait before every answer (API calls and downloads)
    fail_tasks: bool = False  # tasks end as failed
    fail_message: str = ""  # a failed task's error text instead of the moderation one
    never_finish: bool = False  # tasks stay IN_PROGRESS
    expire_audio: bool = False  # download links answer 403
    audio_link: str = ""  # status answers name this link for the audio instead of their own
    redirect_to: str = ""  # downloads answer 302 to this link
    not_audio: str = ""  # downloads answer 200 with an HTML page, labelled with this type
    drip_seconds: float = 0.0  # downloads pause this long before each piece of the song
    # Faults at random (seeded), for the chaos run; each one injected is counted.
    chaos_rate: float = 0.0  # this share of API calls: a 429, a 5xx, a malformed body or a cut
    fail_rate: float = 0.0  # this share of new tasks end as failed
    broken_download_rate: float = 0.0  # this share of downloads stop halfway
    slow_download_rate: float = 0.0  # this share of downloads wait slow_download_seconds first
    slow_download_seconds: float = 0.5
    stall_seconds: float = 3.0
    hostile_rate: float = 0.0  # this share of API calls and downloads: an answer built to hurt


# Each switch's name and the type of its value, as `GET /_emulator/faults` shows them.
FAULT_SWITCHES = {f.name: type(f.default).__name__ for f in dataclasses.fields(Faults)}


def fault_switch_problem(changes: Any) -> str | None:
    """Why a `POST /_emulator/faults` body cannot be applied; None when it can."""
    if not isinstance(changes, dict):
        return "the body must be a JSON object of switches and their values"
    unknown = sorted(set(changes) - set(FAULT_SWITCHES))
    if unknown:
        return f"unknown switch(es) {', '.join(unknown)}; known: {', '.join(FAULT_SWITCHES)}"
    for name, value in changes.items():
        kind = FAULT_SWITCHES[name]
        fits = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "str": isinstance(value, str),
        }[kind]
        if not fits:
            return f"switch {name} wants a value of type {kind}, not {json.dumps(value)}"
    return None


def dripped(body: bytes, status: int, content_type: str = "application/json") -> Response:
    """The answer with its length declared, its body a byte every DRIP_PIECE_SECONDS."""

    def drip() -> Iterator[bytes]:
        for byte in body[: int(60 / DRIP_PIECE_SECONDS)]:
            time.sleep(DRIP_PIECE_SECONDS)
            yield bytes([byte])

    return Response(
        drip(),
        status=status,
        content_type=content_type,
        headers={"Content-Length": str(len(body))},
        direct_passthrough=True,
    )


def hostile(kind: str) -> Response:
    """A 200 answer built to hurt whoever reads it."""
    if kind == "gzip bomb":
        headers = {"Content-Encoding": "gzip, gzip"}
        return Response(bomb(), status=200, content_type="application/json", headers=headers)
    if kind == "deep JSON":
        return Response("[" * 100_000 + "]" * 100_000, content_type="application/json")
    body = '{"code": 200, "data": {"status": "completed", "n": ' + "9" * 5000 + "}}"
    return Response(body, content_type="application/json")


class ConnectionCut(Exception):
    """Raised inside a response body: the server drops the connection mid-answer."""


def cut_short(response: Response) -> Response:
    """The same answer, but the connection drops after half of its body."""
    body = b"".join(response.iter_encoded())

    def half_then_drop() -> Iterator[bytes]:
        yield body[: len(body) // 2]
        raise ConnectionCut("connection dropped by the emulator")

    return Response(
        half_then_drop(),
        status=response.status_code,
        headers={**dict(response.headers), "Content-Length": str(len(body))},
        direct_passthrough=True,
    )


def not_a_planned_cut(record: logging.LogRecord) -> bool:
    """The server's traceback for a connection the emulator dropped on purpose is noise."""
    return ConnectionCut.__name__ not in record.getMessage()
