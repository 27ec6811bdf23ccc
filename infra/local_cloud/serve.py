"""`make local`: the local stack kept running, so the command line works against it.

moto's server listens on a fixed loopback port (the command line's `--local`), the
stack is provisioned from template.yaml and recorded in moto's CloudFormation with its
outputs, and a thread plays the event sources: the jobs queue feeds the submit function
and the schedule ticks the poll function, once a second.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from lyrics_cli.stack_target import DEFAULT_STACK_NAME, LOCAL_PORT

from .emulator import MusicApiEmulator, RunningEmulator
from .runtime import LocalLambda
from .stack import MotoServer, Stack, provision, register_outputs


class LocalService:
    """moto's server, the emulator, the stack and a thread driving the functions."""

    def __init__(
        self,
        *,
        port: int = LOCAL_PORT,
        stack_name: str = DEFAULT_STACK_NAME,
        emulator: MusicApiEmulator | None = None,
        tick_seconds: float = 1.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.emulator = emulator or MusicApiEmulator(completion_delay=5.0)
        self.tick_seconds = tick_seconds
        self.moto = MotoServer(port)
        self.api = RunningEmulator(self.emulator)
        self.stack: Stack = provision(self.moto.url, stack_name=stack_name)
        register_outputs(self.stack)
        self.stack.store_api_key(self.emulator.api_key)
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

    def tick(self) -> tuple[int, dict[str, Any]]:
        """One turn of the event sources: (messages delivered, the poll function's report)."""
        batch = self.runtime.deliver_jobs(retry_delay_seconds=2)
        report: dict[str, Any] = self.runtime.run_schedule()
        return batch.received, report

    def _run(self, on_tick: Any) -> None:
        while not self._stop.is_set():
            try:
                on_tick(*self.tick())
            except Exception as exc:  # keep serving; the caller sees what went wrong
                self.errors.append(exc)
            self._stop.wait(self.tick_seconds)

    def start(self, on_tick: Any = lambda received, report: None) -> LocalService:
        self._thread = threading.Thread(target=self._run, args=(on_tick,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self.api.stop()
        self.moto.stop()


def _say(received: int, report: dict[str, Any]) -> None:
    stamp = time.strftime("%H:%M:%S")
    if received:
        print(f"[{stamp}] submit  {received} message(s) from the jobs queue", flush=True)
    ended = {k: report[k] for k in ("completed", "failed", "timed_out", "unknown") if report[k]}
    if ended:
        done = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in ended.items())
        print(f"[{stamp}] poll    {done}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Keep the local stack running for the lyrics-to-song command (--local)."
    )
    parser.add_argument("--port", type=int, default=LOCAL_PORT, help="moto's port")
    parser.add_argument(
        "--delay", type=float, default=5.0, help="emulator: seconds until a song is ready"
    )
    args = parser.parse_args(argv)
    try:
        service = LocalService(
            port=args.port, emulator=MusicApiEmulator(completion_delay=args.delay)
        )
    except OSError as exc:
        print(f"error: cannot serve on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 4
    service.start(_say)
    print(
        f"local stack {service.stack.name!r} on {service.endpoint_url}, music API emulator on "
        f"{service.api.url}\nuse it with: lyrics-to-song --local submit examples/neon-rain.txt"
        "\nCtrl-C stops it (everything is in memory and goes with it)",
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
