"""`make demo`: the whole pipeline on this machine, step by step, ending in an MP3 in ./out.

moto's server stands in for AWS (provisioned from template.yaml) and the emulator for
the music API; `--real-api` sends the request to API in One instead (MUSIC_API_KEY),
with AWS still local. `--workflow` asks for the song from the example Step Functions
workflow, run by moto's interpreter, instead of uploading the lyric file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from lyrics_to_song.config import DEFAULT_MODEL, DEFAULT_PROMPT
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.lyric_files import not_a_lyric_file, parse_lyric_file
from lyrics_to_song.webhooks.queue import notice_id

from .emulator import MusicApiEmulator, RunningEmulator
from .moto_server import MotoServer
from .receiver import WebhookReceiver
from .runtime import WRAP_UP_SECONDS, LocalLambda
from .stack import Stack, provision
from .watch import read_notifications, subscribe_queue
from .workflow import EXAMPLE, example_workflow, execution_end, song_of

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LYRICS = ROOT / "examples" / "neon-rain.txt"


def say(step: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {step:<10} {text}", flush=True)


def shown(path: Path) -> Path:
    """A path as the user would type it: from the current folder, when it is inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def describe_mp3(data: bytes) -> str:
    from mutagen.mp3 import MP3

    info: Any = MP3(io.BytesIO(data)).info  # type: ignore[no-untyped-call]
    return f"{info.length:.1f} s, {info.sample_rate} Hz, {info.bitrate // 1000} kbps"


def _refusal(args: argparse.Namespace, lyrics: Path) -> str | None:
    """What makes these options unable to work, before anything is started."""
    if not lyrics.is_file():
        return f"lyric file {lyrics} does not exist"
    refused = not_a_lyric_file(lyrics.name)
    if refused is not None:
        return refused  # as `lyrics-to-song submit` says it
    if args.callback and args.real_api:
        return (
            "--callback needs the emulator: with the real API the stack refuses a "
            "receiver on loopback, as it would on AWS"
        )
    if args.callback and args.workflow:
        return "--callback and --workflow: the workflow's request names no callback_url"
    if args.real_api and not os.environ.get("MUSIC_API_KEY", "").strip():
        return "--real-api needs MUSIC_API_KEY set to your API in One key"
    return None


def _music_api(
    args: argparse.Namespace, env: dict[str, str], cleanup: ExitStack
) -> tuple[str, MusicApiEmulator | None]:
    """Point the functions at the real API or a running emulator; the key to store, and
    the emulator."""
    if args.real_api:
        env["MUSIC_API_BASE_URL"] = args.api_url
        say("api", f"the real music API at {args.api_url} (this song costs money)")
        return os.environ["MUSIC_API_KEY"].strip(), None
    emulator = MusicApiEmulator(completion_delay=args.delay)
    running = cleanup.enter_context(RunningEmulator(emulator))
    env["MUSIC_API_BASE_URL"] = running.url
    env["TYPICAL_SONG_SECONDS"] = f"{args.delay / 2:g}-{args.delay * 2:g}"  # not 30-90
    say("api", f"music API emulator on {running.url} (songs finish after {args.delay:.0f} s)")
    return emulator.api_key, emulator


def run(args: argparse.Namespace) -> int:
    lyrics = Path(args.lyrics).expanduser().resolve()
    refusal = _refusal(args, lyrics)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "POWERTOOLS_LOG_LEVEL": "DEBUG" if args.verbose else "CRITICAL",  # its own lines only
        "POWERTOOLS_METRICS_DISABLED": "true",
        "FIRST_POLL_DELAY_SECONDS": "1" if not args.real_api else "20",
        "POLL_BACKOFF_SECONDS": "1" if not args.real_api else "10",
    }
    with ExitStack() as cleanup:
        moto = MotoServer()
        cleanup.callback(moto.stop)
        say(
            "aws",
            f"moto's server on {moto.url} (stands in for S3, SQS, DynamoDB, SNS, Secrets Manager)",
        )
        api_key, emulator = _music_api(args, env, cleanup)
        stack = provision(moto.url, stack_name=args.stack)
        say(
            "stack",
            f"provisioned from template.yaml: lyrics bucket {stack.lyrics_bucket}, "
            f"songs bucket {stack.songs_bucket}, table {stack.tasks_table}",
        )
        stack.store_api_key(api_key)
        say("secret", "API key stored in the Secrets Manager secret the functions read")
        watch_url = subscribe_queue(stack, "demo-notifications")
        machine = example_workflow(moto.url, stack) if args.workflow else None
        if machine:
            env["CALLBACK_STATE_MACHINES"] = machine
            say("workflow", f"{EXAMPLE.name} on moto's Step Functions interpreter: {machine}")
        runtime = LocalLambda(stack, env)
        receiver = None
        if args.callback:
            receiver = WebhookReceiver(stack.webhook_secret())
            cleanup.callback(receiver.stop)
            say("webhook", f"a receiver on {receiver.url} checks each webhook's signature")
        execution = _ask(stack, lyrics, machine, receiver)
        return follow(
            stack,
            runtime,
            watch_url,
            out_dir=out_dir,
            args=args,
            emulator=emulator,
            receiver=receiver,
            execution=execution,
        )


def _ask(
    stack: Stack, lyrics: Path, machine: str | None, receiver: WebhookReceiver | None
) -> str | None:
    """Upload the lyric file, or start the workflow that asks for it (its execution)."""
    if machine:
        return _start_workflow(stack, machine, lyrics)
    key = lyrics.name
    metadata = {"callback_url": receiver.url} if receiver else {}
    stack.client("s3").put_object(
        Bucket=stack.lyrics_bucket, Key=key, Body=lyrics.read_bytes(), Metadata=metadata
    )
    say("upload", f"{shown(lyrics)} -> s3://{stack.lyrics_bucket}/{key}")
    return None


def follow(
    stack: Stack,
    runtime: LocalLambda,
    watch_url: str,
    *,
    out_dir: Path,
    args: argparse.Namespace,
    emulator: MusicApiEmulator | None = None,
    receiver: WebhookReceiver | None = None,
    execution: str | None = None,
) -> int:
    """Run the event sources as AWS would (the queues every second, the schedule every
    minute) until the notification arrives (and the webhook, and the workflow's answer,
    if asked for); report every change seen."""
    stop = threading.Event()
    errors: list[BaseException] = []
    sources = threading.Thread(
        target=runtime.serve,
        args=(stop,),
        kwargs={"schedule_seconds": args.schedule_every, "on_error": errors.append},
        daemon=True,
    )
    sources.start()
    try:
        code = _watch(
            stack, watch_url, out_dir=out_dir, args=args, emulator=emulator, errors=errors
        )
        if not code and receiver is not None:
            code = _webhook(receiver, stack)
        if not code and execution is not None:
            code = _workflow_end(stack, execution)
        return code
    finally:
        stop.set()
        sources.join(timeout=WRAP_UP_SECONDS + 5)


def _watch(
    stack: Stack,
    watch_url: str,
    *,
    out_dir: Path,
    args: argparse.Namespace,
    emulator: MusicApiEmulator | None,
    errors: list[BaseException],
) -> int:
    tasks = TaskTable(stack.client("dynamodb"), stack.tasks_table)
    seen: dict[str, tuple[object, ...]] = {}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        for exc in errors:
            say("error", f"{type(exc).__name__}: {exc}")
        errors.clear()
        for row in tasks.rows():
            view = (row.state, row.task_id, row.api_status, row.polls, row.error)
            if seen.get(row.job_id) == view:
                continue
            seen[row.job_id] = view
            detail = {
                JobState.PENDING: f"task {row.task_id}"
                + (
                    f", API says {row.api_status} (status check {row.polls})"
                    if row.api_status
                    else ", submitted"
                )
            }.get(row.state, row.error or "")
            say("task", f"{row.job_id}: {row.state.value} {detail}".rstrip())
        for note in read_notifications(stack, watch_url):
            say(
                "notify",
                f"notification: status {note['status']}"
                + (f", error: {note['error']}" if note.get("error") else "")
                + _how_soon(emulator, note),
            )
            if note["status"] != "COMPLETED":
                return 1
            song = note["song"]
            bucket, _, key = song["s3_uri"].removeprefix("s3://").partition("/")
            data = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            target = out_dir / key.rsplit("/", 1)[-1]
            target.write_bytes(data)
            say("song", f"saved {song['s3_uri']} ({len(data)} bytes)")
            say("done", f"wrote {shown(target)} ({describe_mp3(data)})")
            return 0
        time.sleep(0.1)
    say("timeout", f"no notification within {args.timeout:.0f} s")
    return 1


def _webhook(receiver: WebhookReceiver, stack: Stack) -> int:
    """Wait for the song's webhook at the demo's receiver, and say what it got."""
    tasks = TaskTable(stack.client("dynamodb"), stack.tasks_table)
    (row,) = list(tasks.rows())
    delivery_id = notice_id(row)
    found = receiver.wait_for(delivery_id, timeout=30.0)
    if found is None:
        say("webhook", f"no webhook {delivery_id} within 30 s")
        return 1
    say(
        "webhook",
        f"delivered: POST {receiver.url}, delivery id {found.delivery_id}, status "
        f"{found.notice['status']}, signature verified (Standard Webhooks) with the "
        "tenant's secret",
    )
    return 0


def _start_workflow(stack: Stack, machine: str, lyrics: Path) -> str:
    """Start the example workflow with the lyric file's prompt and lyrics; its execution."""
    request = parse_lyric_file(
        lyrics.name,
        lyrics.read_bytes(),
        metadata_prompt=None,
        default_prompt=DEFAULT_PROMPT,
        default_model=DEFAULT_MODEL,
    )
    song = {"prompt": request.prompt, "lyrics": request.lyrics}
    execution = stack.client("stepfunctions").start_execution(
        stateMachineArn=machine, name=f"demo-{int(time.time())}", input=json.dumps(song)
    )["executionArn"]
    say("workflow", "started: its task puts the song request, with its token, on the jobs queue")
    return str(execution)


def _workflow_end(stack: Stack, execution: str) -> int:
    """Wait for the workflow to be answered, and say what its next state got."""
    found = execution_end(stack, execution, timeout=30.0)
    if found["status"] != "SUCCEEDED":
        say("workflow", f"{found['status']}: {found.get('error') or 'no answer within 30 s'}")
        return 1
    song = song_of(found)
    say("workflow", f"SUCCEEDED: its next state got s3://{song['bucket']}/{song['key']}")
    return 0


def _how_soon(emulator: MusicApiEmulator | None, note: dict[str, Any]) -> str:
    """How long after the emulator finished the song it was announced."""
    task = emulator.tasks.get(str(note.get("task_id"))) if emulator else None
    if task is None:
        return ""
    return f", {time.monotonic() - task.ready_at:.1f} s after the API finished the song"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lyrics-to-song demo", description="Run lyrics-to-song end to end on this machine."
    )
    parser.add_argument(
        "--lyrics",
        default=str(DEFAULT_LYRICS),
        help="lyric file to turn into a song (.txt or .json)",
    )
    parser.add_argument("--out", default="out", help="folder for the MP3 (default ./out)")
    parser.add_argument(
        "--real-api",
        action="store_true",
        help="use API in One (needs MUSIC_API_KEY); AWS stays local",
    )
    parser.add_argument("--api-url", default="https://apiin.one", help="base URL with --real-api")
    parser.add_argument(
        "--delay", type=float, default=3.0, help="emulator: seconds until a song is ready"
    )
    parser.add_argument(
        "--schedule-every",
        type=float,
        default=60.0,
        help="seconds between the poll function's scheduled runs (as on AWS: 60)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up after this many seconds"
    )
    parser.add_argument(
        "--callback",
        action="store_true",
        help="also announce the song to a webhook receiver run here, and check its signature",
    )
    parser.add_argument(
        "--workflow",
        action="store_true",
        help="ask for the song from the example Step Functions workflow, and wait for its answer",
    )
    parser.add_argument(
        "--stack", default="lyrics-to-song", help="the local stack's name (its resources' prefix)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the functions' own log lines")
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 900.0 if args.real_api else 120.0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
