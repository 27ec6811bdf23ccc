"""The music API emulator: a real HTTP server on loopback that behaves like API in One.

It serves `POST /api/v1/audio/music`, `GET /api/v1/tasks/{id}` and the audio download,
answers in the documented envelope, and has switches for the faults the real service
shows (429 with Retry-After, 5xx, slow answers, failed tasks, malformed bodies,
expired links, bad key, no credits; emulator_faults.py holds them).

Run on its own: `python -m local_cloud.emulator --port 8787`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .audio import make_mp3
from .emulator_faults import (
    API_FAULTS,
    FAULT_SWITCHES,
    HOSTILE_FAULTS,
    HUGE_RETRY_AFTER,
    ODD_RETRY_AFTERS,
    Faults,
    bomb,
    cut_short,
    dripped,
    fault_switch_problem,
    hostile,
    not_a_planned_cut,
)

ALLOWED_BITRATES = (32000, 60000, 64000, 128000, 256000)
ALLOWED_SAMPLE_RATES = (16000, 24000, 32000, 44100)
STATUS_SHAPES = ("audio_url", "output", "response_data", "result", "hex", "flat", "minimax")
# MiniMax's own query answer: a numeric status, the outcome in `base_resp`.
MINIMAX_RUNNING, MINIMAX_DONE = 1, 2
MINIMAX_REFUSED = 1026  # "input new_sensitive": the lyrics were refused


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
        if kind in ("429", "odd Retry-After", "huge Retry-After"):
            return self._rate_limited(self._retry_after_of(kind))
        if kind in ("500", "503"):
            return self._server_error(int(kind))
        if kind == "malformed":
            return self._malformed()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._json(401, _envelope(401, "Unauthorized: invalid API key"))
        response = call(request)
        if kind == "cut":  # the work is done (a submission is taken), the answer is lost
            return cut_short(response)
        if kind == "drip":  # the work is done; the answer comes a byte at a time
            return dripped(b"".join(response.iter_encoded()), response.status_code)
        if kind in HOSTILE_FAULTS:  # the work is done too; the answer is built to hurt
            return hostile(kind)
        return response

    def _retry_after_of(self, kind: str) -> str | None:
        """A rate limit's Retry-After: the usual one, one no parser should take, or 317 years."""
        if kind == "huge Retry-After":
            return HUGE_RETRY_AFTER
        return self._random.choice(ODD_RETRY_AFTERS) if kind == "odd Retry-After" else None

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
                "error": self.faults.fail_message
                or "generation failed: lyrics rejected by moderation",
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
            bombed = self._chance(self.faults.hostile_rate, "gzip bomb download")
            drip = not bombed and self._chance(self.faults.hostile_rate, "dripped download")
        if bombed:  # gzip that inflates to 64 MiB, though no encoding was asked for
            headers = {"Content-Encoding": "gzip, gzip", "Content-Length": str(len(bomb()))}
            return Response(bomb(), status=200, content_type="audio/mpeg", headers=headers)
        wait = self.faults.slow_seconds + (self.faults.slow_download_seconds if slow else 0)
        if wait:
            time.sleep(wait)
        with self._lock:
            self.downloads.append(task_id)
        size = self.audio_size if self.audio_size is not None else len(self.audio_bytes(task_id))
        if drip:
            return dripped(b"".join(self.audio_chunks(task_id)), 200, "audio/mpeg")
        response = Response(
            self._dripping(self.audio_chunks(task_id)),
            status=200,
            content_type="audio/mpeg",
            headers={"Content-Length": str(size)},
            direct_passthrough=True,
        )
        return cut_short(response) if broken else response

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


class RunningEmulator:
    """The emulator served over loopback on a thread; `url` is its base URL."""

    def __init__(self, emulator: MusicApiEmulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        server_log = logging.getLogger("werkzeug")
        server_log.setLevel(logging.WARNING)  # no line per request
        server_log.addFilter(not_a_planned_cut)
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
