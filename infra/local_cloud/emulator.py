"""The music API emulator: a real HTTP server on loopback that behaves like API in One.

It serves `POST /api/v1/audio/music`, `GET /api/v1/tasks/{id}` and the audio download,
answers in the documented envelope, and has switches for the faults the real service
shows (429 with Retry-After, 5xx, slow answers, failed tasks, malformed bodies,
expired links, bad key, no credits).

Run on its own: `python -m local_cloud.emulator --port 8787`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .audio import make_mp3

ALLOWED_BITRATES = (32000, 60000, 64000, 128000, 256000)
ALLOWED_SAMPLE_RATES = (16000, 24000, 32000, 44100)
# What a random API fault may be: "cut" does the work, then drops the connection mid-answer;
# "stall" answers only after stall_seconds (past the client's read timeout, if it is short).
API_FAULTS = ("429", "500", "503", "malformed", "cut", "stall")
# Answers built to hurt a client: a few KB of gzip that inflate to 64 MiB, JSON nested past
# any recursion limit, an integer past 4,300 digits, a Retry-After no parser should take.
HOSTILE_FAULTS = ("gzip bomb", "deep JSON", "huge number", "odd Retry-After", "drip")
DRIP_PIECE_SECONDS = 0.5  # a dripped answer: a byte this often, for 60 s in all
# Retry-After values no parser should take (the webhook receiver sends them too).
ODD_RETRY_AFTERS = ("²", "1e999", "inf", "-1", "soon")


@cache
def _bomb() -> bytes:
    """64 MiB of zeros gzipped twice: a few KB, made at first use (0.4 s), not at import."""
    return gzip.compress(gzip.compress(b"\0" * (64 * 1024 * 1024)))


STATUS_SHAPES = ("audio_url", "output", "response_data", "result", "hex", "flat", "minimax")
# MiniMax's own query answer: a numeric status, the outcome in `base_resp`.
MINIMAX_RUNNING, MINIMAX_DONE = 1, 2
MINIMAX_REFUSED = 1026  # "input new_sensitive": the lyrics were refused


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


@dataclass
class EmulatedTask:
    task_id: str
    body: dict[str, Any]
    created: float
    fail: bool
    never_finish: bool
    seconds: float  # how long the song takes to make

    @property
    def ready_at(self) -> float:
        return self.created + self.seconds


def _envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


@dataclass
class MusicApiEmulator:
    api_key: str = "aio_local_emulator_key"
    completion_delay: float = 2.0
    audio_seconds: float = 3.0
    audio_size: int | None = None  # bytes per song; None: the natural size of audio_seconds
    status_shape: str = "audio_url"
    credits: int | None = None  # None: unlimited; 0 answers 402
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], float] = time.monotonic
    tasks: dict[str, EmulatedTask] = field(default_factory=dict)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    # When each status request arrived (on `clock`), answered or refused.
    status_calls: list[float] = field(default_factory=list)
    # How long each new song takes; None: completion_delay for every song.
    song_seconds: Callable[[], float] | None = None
    downloads: list[str] = field(default_factory=list)
    base_url: str = "http://127.0.0.1"
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)  # random faults, by kind
    most_at_once: int = 0  # the most API calls (submit or status) answered at the same time

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._answering = 0

    def _chance(self, rate: float, kind: str) -> bool:
        """True for `rate` of the calls (under the lock); counts the fault it stands for."""
        if rate <= 0 or self._random.random() >= rate:
            return False
        self.injected[kind] += 1
        return True

    # --- what tests and the demo read ---------------------------------------------------
    def status_calls_per_minute(self) -> Counter[int]:
        """Status requests in each minute of `clock` (minute = int(time // 60))."""
        with self._lock:
            return Counter(int(t // 60) for t in self.status_calls)

    def audio_bytes(self, task_id: str) -> bytes:
        return b"".join(self.audio_chunks(task_id))

    def audio_chunks(self, task_id: str) -> Iterator[bytes]:
        """The task's song; with `audio_size` set, that many bytes, streamed, never held whole."""
        body = self.tasks[task_id].body
        mp3 = make_mp3(
            body.get("sample_rate", 44100), body.get("bitrate", 256000), self.audio_seconds
        )
        if self.audio_size is None:
            yield mp3
            return
        left = self.audio_size
        while left > 0:  # the same playable song, over and over
            piece = mp3[:left]
            left -= len(piece)
            yield piece

    def create_task(self, body: dict[str, Any]) -> str:
        """Start a task as an accepted submission would (no checks, no faults)."""
        task_id = f"n74{uuid.uuid4().hex[:12]}_minimax"
        with self._lock:
            fail = self.faults.fail_tasks or self._chance(self.faults.fail_rate, "failed task")
            seconds = self.song_seconds() if self.song_seconds else self.completion_delay
            self.tasks[task_id] = EmulatedTask(
                task_id, dict(body), self.clock(), fail, self.faults.never_finish, seconds
            )
            self.submissions.append(dict(body))
        return task_id

    # --- WSGI -----------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_emulator/"):
            return self._control(request)
        if path.startswith("/files/"):
            return self._download(path.removeprefix("/files/").removesuffix(".mp3"))
        if path == "/api/v1/audio/music" and request.method == "POST":
            return self._guarded(request, self._submit)
        if path.startswith("/api/v1/tasks/") and request.method == "GET":
            with self._lock:
                self.status_calls.append(self.clock())
            return self._guarded(request, self._status)
        return self._json(404, _envelope(404, f"Not Found: {request.method} {path}"))

    def _json(
        self, status: int, body: Any, headers: dict[str, str] | None = None, line: bool = False
    ) -> Response:
        """`line`: end with a newline, for answers read at a terminal (`curl`)."""
        text = json.dumps(body) + ("\n" if line else "")
        return Response(text, status=status, headers=headers, content_type="application/json")

    def _rate_limited(self, retry_after: str | None = None) -> Response:
        return self._json(
            429,
            _envelope(429, "Too Many Requests: rate limit exceeded"),
            {"Retry-After": retry_after or str(self.faults.retry_after_seconds)},
        )

    def _random_fault(self) -> str:
        """The kind of this call's random fault, counted; "" for none (lock held)."""
        if self.faults.chaos_rate and self._random.random() < self.faults.chaos_rate:
            kind = self._random.choice(API_FAULTS)
        elif self.faults.hostile_rate and self._random.random() < self.faults.hostile_rate:
            kind = self._random.choice(HOSTILE_FAULTS)
        else:
            return ""
        self.injected[kind] += 1
        return kind

    def _guarded(self, request: Request, call: Callable[[Request], Response]) -> Response:
        """An API call, counted while it is answered (the real API limits calls at once)."""
        with self._lock:
            self._answering += 1
            self.most_at_once = max(self.most_at_once, self._answering)
        try:
            return self._faulted(request, call)
        finally:
            with self._lock:
                self._answering -= 1

    def _faulted(self, request: Request, call: Callable[[Request], Response]) -> Response:
        """Faults and the key check that stand before every API call."""
        slow = self.faults.slow_seconds
        if slow:
            time.sleep(slow)
        with self._lock:
            if self.faults.rate_limit > 0:
                self.faults.rate_limit -= 1
                return self._rate_limited()
            if self.faults.server_error > 0:
                self.faults.server_error -= 1
                return self._server_error(self.faults.server_error_status)
            if self.faults.malformed > 0:
                self.faults.malformed -= 1
                return self._malformed()
            kind = self._random_fault()
        if kind == "stall":
            time.sleep(self.faults.stall_seconds)
        if kind in ("429", "odd Retry-After"):
            odd = self._random.choice(ODD_RETRY_AFTERS) if kind != "429" else None
            return self._rate_limited(odd)
        if kind in ("500", "503"):
            return self._server_error(int(kind))
        if kind == "malformed":
            return self._malformed()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._json(401, _envelope(401, "Unauthorized: invalid API key"))
        response = call(request)
        if kind == "cut":  # the work is done (a submission is taken), the answer is lost
            return _cut_short(response)
        if kind == "drip":  # the work is done; the answer comes a byte at a time
            return _dripped(b"".join(response.iter_encoded()), response.status_code)
        if kind in HOSTILE_FAULTS:  # the work is done too; the answer is built to hurt
            return _hostile(kind)
        return response

    def _server_error(self, status: int) -> Response:
        return self._json(status, _envelope(status, "Internal error, please retry"))

    def _malformed(self) -> Response:
        return Response(
            "<html><body>502 Bad Gateway</body></html>", status=200, content_type="text/html"
        )

    def _submit(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self._json(400, _envelope(400, "Bad Request: body must be JSON."))
        marker = self.faults.rate_limit_prompt
        if marker and marker in str(body.get("prompt", "")):
            return self._rate_limited()
        for name in ("prompt", "lyrics"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                return self._json(400, _envelope(400, f"Bad Request: '{name}' is required."))
        if body.get("bitrate", 256000) not in ALLOWED_BITRATES:
            return self._json(400, _envelope(400, "Bad Request: 'bitrate' is invalid."))
        if body.get("sample_rate", 44100) not in ALLOWED_SAMPLE_RATES:
            return self._json(400, _envelope(400, "Bad Request: 'sample_rate' is invalid."))
        with self._lock:
            if self.credits is not None:
                if self.credits <= 0:
                    # The envelope says 402 while HTTP says 200: the two can disagree.
                    return self._json(200, _envelope(402, "Payment Required: insufficient credits"))
                self.credits -= 1
        task_id = self.create_task(body)
        return self._json(
            200, _envelope(200, "success", {"task_id": task_id, "status": "IN_PROGRESS"})
        )

    def _status(self, request: Request) -> Response:
        task_id = request.path.removeprefix("/api/v1/tasks/")
        with self._lock:
            task = self.tasks.get(task_id)
        if task is None:
            return self._json(404, _envelope(404, f"Not Found: task {task_id} does not exist"))
        running = task.never_finish or self.clock() < task.ready_at
        if self.status_shape == "minimax":
            return self._json(200, self._minimax_body(task, running))
        if running:
            return self._json(
                200, _envelope(200, "success", {"task_id": task_id, "status": "IN_PROGRESS"})
            )
        if task.fail:
            data = {
                "task_id": task_id,
                "status": "FAILED",
                "error": "generation failed: lyrics rejected by moderation",
            }
            return self._json(200, _envelope(200, "success", data))
        return self._json(200, self._completed_body(task))

    def _minimax_body(self, task: EmulatedTask, running: bool) -> dict[str, Any]:
        """MiniMax's shape: `data.status` 1 or 2, hex audio in `data.audio`, the duration
        in milliseconds in `extra_info`, success or failure in `base_resp`."""
        ok = {"status_code": 0, "status_msg": "success"}
        if running:
            return {"data": {"status": MINIMAX_RUNNING}, "base_resp": ok}
        if task.fail:
            refused = {"status_code": MINIMAX_REFUSED, "status_msg": "input new_sensitive"}
            return {"data": None, "base_resp": refused}
        return {
            "data": {"status": MINIMAX_DONE, "audio": self.audio_bytes(task.task_id).hex()},
            "extra_info": {"music_duration": int(self.audio_seconds * 1000)},
            "base_resp": ok,
        }

    def _completed_body(self, task: EmulatedTask) -> dict[str, Any]:
        url = self.faults.audio_link or f"{self.base_url}/files/{task.task_id}.mp3"
        done: dict[str, Any] = {
            "task_id": task.task_id,
            "status": "completed",
            "duration": self.audio_seconds,
        }
        shape = self.status_shape
        if shape == "flat":
            return {**done, "audio_url": url}
        if shape == "audio_url":
            done["audio_url"] = url
        elif shape == "output":
            done["output"] = {"audio_url": url}
        elif shape == "response_data":
            done["response_data"] = [{"audio_url": url}]
        elif shape == "result":
            done["result"] = url
        elif shape == "hex":
            done["status"] = "SUCCESS"
            done["audio"] = self.audio_bytes(task.task_id).hex()
        return _envelope(200, "success", done)

    def _download(self, task_id: str) -> Response:
        if task_id not in self.tasks:
            return Response("no such file", status=404)
        if self.faults.expire_audio:
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                status=403,
            )
        if self.faults.redirect_to:
            return Response(status=302, headers={"Location": self.faults.redirect_to})
        if self.faults.not_audio:
            page = "<!DOCTYPE html><html><body><h1>Sign in to continue</h1></body></html>"
            return Response(page, status=200, content_type=self.faults.not_audio)
        with self._lock:
            slow = self._chance(self.faults.slow_download_rate, "slow download")
            broken = self._chance(self.faults.broken_download_rate, "broken download")
            bomb = self._chance(self.faults.hostile_rate, "gzip bomb download")
            drip = not bomb and self._chance(self.faults.hostile_rate, "dripped download")
        if bomb:  # gzip that inflates to 64 MiB, though no encoding was asked for
            headers = {"Content-Encoding": "gzip, gzip", "Content-Length": str(len(_bomb()))}
            return Response(_bomb(), status=200, content_type="audio/mpeg", headers=headers)
        wait = self.faults.slow_seconds + (self.faults.slow_download_seconds if slow else 0)
        if wait:
            time.sleep(wait)
        with self._lock:
            self.downloads.append(task_id)
        size = self.audio_size if self.audio_size is not None else len(self.audio_bytes(task_id))
        if drip:
            return _dripped(b"".join(self.audio_chunks(task_id)), 200, "audio/mpeg")
        response = Response(
            self._dripping(self.audio_chunks(task_id)),
            status=200,
            content_type="audio/mpeg",
            headers={"Content-Length": str(size)},
            direct_passthrough=True,
        )
        return _cut_short(response) if broken else response

    def _dripping(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.faults.drip_seconds:
                time.sleep(self.faults.drip_seconds)
            yield chunk

    def _control(self, request: Request) -> Response:
        if request.path == "/_emulator/faults" and request.method == "GET":
            return self._json(200, dataclasses.asdict(self.faults), line=True)
        if request.path == "/_emulator/faults" and request.method == "POST":
            # force: `curl -d` labels its JSON as a form.
            changes = request.get_json(force=True, silent=True)
            problem = fault_switch_problem(changes)
            if problem or not isinstance(changes, dict):
                return self._json(400, {"error": problem, "switches": FAULT_SWITCHES}, line=True)
            with self._lock:
                self.faults = dataclasses.replace(self.faults, **changes)
            return self._json(200, dataclasses.asdict(self.faults), line=True)
        if request.path == "/_emulator/submissions":
            return self._json(200, self.submissions)
        return self._json(404, _envelope(404, "unknown control path"))


def _dripped(body: bytes, status: int, content_type: str = "application/json") -> Response:
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


def _hostile(kind: str) -> Response:
    """A 200 answer built to hurt whoever reads it."""
    if kind == "gzip bomb":
        headers = {"Content-Encoding": "gzip, gzip"}
        return Response(_bomb(), status=200, content_type="application/json", headers=headers)
    if kind == "deep JSON":
        return Response("[" * 100_000 + "]" * 100_000, content_type="application/json")
    body = '{"code": 200, "data": {"status": "completed", "n": ' + "9" * 5000 + "}}"
    return Response(body, content_type="application/json")


class ConnectionCut(Exception):
    """Raised inside a response body: the server drops the connection mid-answer."""


def _cut_short(response: Response) -> Response:
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


def _not_a_planned_cut(record: logging.LogRecord) -> bool:
    """The server's traceback for a connection the emulator dropped on purpose is noise."""
    return ConnectionCut.__name__ not in record.getMessage()


class RunningEmulator:
    """The emulator served over loopback on a thread; `url` is its base URL."""

    def __init__(self, emulator: MusicApiEmulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        server_log = logging.getLogger("werkzeug")
        server_log.setLevel(logging.WARNING)  # no line per request
        server_log.addFilter(_not_a_planned_cut)
        self.server: BaseWSGIServer = make_server(host, port, emulator, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        emulator.base_url = self.url
        # Stops within 50 ms of being asked, not 500: the tests start and stop many.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the music API emulator on loopback.")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--api-key", default=MusicApiEmulator.api_key)
    parser.add_argument(
        "--delay",
        type=float,
        default=MusicApiEmulator.completion_delay,
        help="seconds until a task completes",
    )
    parser.add_argument("--shape", choices=STATUS_SHAPES, default="audio_url")
    parser.add_argument("--audio-size", type=int, default=None, help="bytes per song (streamed)")
    parser.add_argument("--slow", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args()
    emulator = MusicApiEmulator(
        api_key=args.api_key,
        completion_delay=args.delay,
        status_shape=args.shape,
        audio_size=args.audio_size,
        faults=Faults(slow_seconds=args.slow),
    )
    running = RunningEmulator(emulator, port=args.port)
    print(
        f"music API emulator on {running.url} (key {args.api_key!r}); Ctrl-C stops it", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()


if __name__ == "__main__":
    main()
