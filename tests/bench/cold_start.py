"""Cold start: importing each handler module, against `import boto3`, in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys

from .common import Result, median, sized

RUNS = sized(7, 7, 1)
LIMIT = 2.5
# As the template deploys the functions (Powertools reads the name to know it is in Lambda);
# DetailedTracing=true turns the tracer on.
LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "bench", "POWERTOOLS_TRACE_DISABLED": "true"}
DETAILED_TRACING = {**LAMBDA_ENV, "POWERTOOLS_TRACE_DISABLED": "false"}


def import_seconds(module: str, lambda_env: dict[str, str] = LAMBDA_ENV) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, **lambda_env}
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout))
    return median(samples)


def run() -> list[Result]:
    boto3_s = import_seconds("boto3")
    results = []
    handlers = ("submit_handler", "poll_handler", "webhook_handler")
    for module in (f"lyrics_to_song.{name}" for name in handlers):
        seconds = import_seconds(module)
        ratio = seconds / boto3_s
        results.append(
            Result(
                f"cold start, import {module}",
                f"{seconds * 1000:.0f} ms",
                f"import boto3 {boto3_s * 1000:.0f} ms",
                f"{ratio:.2f}x",
                f"<= {LIMIT}x",
                ratio <= LIMIT,
            )
        )
    audio_check = import_seconds("mutagen.mp3, mutagen.wave, mutagen.flac")
    results.append(
        Result(
            "cold start, of which mutagen (the poll function's audio check)",
            f"{audio_check * 1000:.0f} ms",
            f"import boto3 {boto3_s * 1000:.0f} ms",
            f"{audio_check / boto3_s:.2f}x",
            "-",
            None,
        )
    )
    traced = import_seconds("lyrics_to_song.poll_handler", DETAILED_TRACING)
    results.append(
        Result(
            "cold start, poll_handler with DetailedTracing=true (X-Ray SDK)",
            f"{traced * 1000:.0f} ms",
            f"import boto3 {boto3_s * 1000:.0f} ms",
            f"{traced / boto3_s:.2f}x",
            "-",
            None,
        )
    )
    return results
