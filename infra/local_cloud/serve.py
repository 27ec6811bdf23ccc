"""`make local`: the local stack kept running, so the command line works against it.

moto's server listens on a fixed loopback port (the command line's `--local`), the
stack is provisioned from template.yaml and recorded in moto's CloudFormation with its
outputs, and a thread plays the event sources as AWS does: the queues feed the submit
function (jobs), the poll function (wakes) and the webhook function every second, and
the schedule starts a poll run every minute.
"""

from __future__ import annotations

import argparse
import errno
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from lyrics_cli.stack_target import DEFAULT_STACK_NAME, LOCAL_PORT

from .emulator import MusicApiEmulator, RunningEmulator
from .moto_server import MotoServer
from .receiver import Delivery, WebhookReceiver
from .runtime import WRAP_UP_SECONDS, LocalLambda
from .stack import Stack, bind_local_producer, provision, register_outputs
from .watch import read_notifications, subscribe_queue

# The emulator's port under `make local`, so its fault switches are at a known address,
# and the webhook receiver's, so a callback_url can name it.
LOCAL_API_PORT = 4567
LOCAL_RECEIVER_PORT = 4568


class LocalService:
    """moto's server, the emulator, the stack and a thread driving the functions."""

    def __init__(
        self,
        *,
        port: int = LOCAL_PORT,
        api_port: int = 0,
        receiver_port: int = 0,
        stack_name: str = DEFAULT_STACK_NAME,
        emulator: MusicApiEmulator | None = None,
        tick_seconds: float = 1.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.emulator = emulator or MusicApiEmulator(completion_delay=5.0)
        delay = self.emulator.completion_delay
        self.tick_seconds = tick_seconds
        self.moto = MotoServer(port)
        self.api = RunningEmulator(self.emulator, port=api_port)
        # The emulator's songs take `completion_delay`, not the real 30-90 s.
        typical = f"{max(0.1, delay / 2):g}-{max(1.0, delay * 2):g}"
        self.stack: Stack = provision(
            self.moto.url, stack_name=stack_name, parameters={"TypicalSongSeconds": typical}
        )
        register_outputs(self.stack)
        bind_local_producer(self.stack)
        self.stack.store_api_key(self.emulator.api_key)
        self.receiver = WebhookReceiver(
            self.stack.webhook_secret(), port=receiver_port, on_delivery=_said_webhook
        )
        self.runtime = LocalLambda(
            self.stack,
            {
                "MUSIC_API_BASE_URL": self.api.url,
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "FIRST_POLL_DELAY_SECONDS": "1",
                "POLL_BACKOFF_SECONDS": "1",
                **(extra_env or {}),
            },
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    @property
    def endpoint_url(self) -> str:
        return self.moto.url

    def _run(self, on_ended: Callable[[dict[str, Any]], None]) -> None:
        watch_url = subscribe_queue(self.stack, "local-serve")
        sources = threading.Thread(
            target=self.runtime.serve,
            args=(self._stop,),
            kwargs={"queue_seconds": self.tick_seconds, "on_error": self.errors.append},
            daemon=True,
        )
        sources.start()
        while not self._stop.wait(self.tick_seconds):
            try:
                for note in read_notifications(self.stack, watch_url):
                    on_ended(note)
            except Exception as exc:  # keep serving; the caller sees what went wrong
                self.errors.append(exc)
        sources.join(timeout=WRAP_UP_SECONDS + 5)

    def start(self, on_ended: Callable[[dict[str, Any]], None] = print) -> LocalService:
        """Play the event sources on a thread; `on_ended` hears each job's notification."""
        self._thread = threading.Thread(target=self._run, args=(on_ended,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=WRAP_UP_SECONDS + 10)
        self.receiver.stop()
        self.api.stop()
        self.moto.stop()


def _said_webhook(delivery: Delivery) -> None:
    stamp = time.strftime("%H:%M:%S")
    check = "signature verified" if delivery.verified else "SIGNATURE DOES NOT VERIFY"
    print(
        f"[{stamp}] webhook {delivery.delivery_id} received ({check}), answered "
        f"{delivery.answered}",
        flush=True,
    )


def _say(note: dict[str, Any]) -> None:
    stamp = time.strftime("%H:%M:%S")
    detail = note["song"]["s3_uri"] if note.get("song") else note.get("error")
    print(f"[{stamp}] {note['job_id']} {note['status']}: {detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lyrics-to-song local",
        description="Keep the local stack running for the lyrics-to-song command (--local).",
    )
    parser.add_argument("--port", type=int, default=LOCAL_PORT, help="moto's port (4566)")
    parser.add_argument(
        "--api-port", type=int, default=LOCAL_API_PORT, help="the music API emulator's port (4567)"
    )
    parser.add_argument(
        "--hook-port",
        type=int,
        default=LOCAL_RECEIVER_PORT,
        help="the webhook receiver's port (4568)",
    )
    parser.add_argument(
        "--delay", type=float, default=5.0, help="emulator: seconds until a song is ready"
    )
    args = parser.parse_args(argv)
    try:
        service = LocalService(
            port=args.port,
            api_port=args.api_port,
            receiver_port=args.hook_port,
            emulator=MusicApiEmulator(completion_delay=args.delay),
        )
    except OSError as exc:
        hint = (
            f"port {args.port}, {args.api_port} or {args.hook_port} is in use: is `make local` "
            "already running? Stop it, or serve on other ports (--port N --api-port M "
            "--hook-port H) and reach them with "
            "--local --endpoint-url http://127.0.0.1:N"
            if exc.errno == errno.EADDRINUSE
            else f"cannot serve on 127.0.0.1:{args.port}: {exc}"
        )
        print(f"error: {hint}", file=sys.stderr)
        return 4
    service.start(_say)
    target = "--local" + (
        "" if args.port == LOCAL_PORT else f" --endpoint-url {service.endpoint_url}"
    )
    print(
        f"local stack {service.stack.name!r} on {service.endpoint_url}, music API emulator on "
        f"{service.api.url}\n"
        f"use it with: lyrics-to-song {target} submit examples/neon-rain.txt\n"
        f"make the next songs fail: curl -d '{{\"fail_tasks\": true}}' "
        f"{service.api.url}/_emulator/faults (docs/emulator.md lists the switches)\n"
        f"a webhook receiver that checks signatures: --callback-url {service.receiver.url}\n"
        "Ctrl-C stops it (everything is in memory and goes with it)",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
