"""The README's walkthrough, run as written against the local stack of `make local`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook as StandardWebhook

from local_cloud.emulator import MusicApiEmulator
from local_cloud.serve import LOCAL_API_PORT, LOCAL_RECEIVER_PORT, LocalService
from lyrics_cli.stack_target import LOCAL_ENDPOINT
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.webhooks.signing import tenant_secret
from tests.docs_text import README, ROOT, readme_webhook_examples, walkthrough
from tests.e2e.local_pipeline import mp3_info
from tests.samples import missing_lines, sample

pytestmark = pytest.mark.e2e


def _local_service(stack_name: str) -> Iterator[LocalService]:
    """`make local`, on free ports (the test points the walkthrough's addresses at them);
    moto's servers in one process share their state, so each test's stack has a name."""
    emulator = MusicApiEmulator(completion_delay=1.0, audio_seconds=1.0)
    running = LocalService(port=0, emulator=emulator, tick_seconds=0.2, stack_name=stack_name)
    yield running.start(lambda note: None)
    running.stop()
    assert not running.errors


@pytest.fixture
def service() -> Iterator[LocalService]:
    yield from _local_service("lyrics-to-song")  # the name `--local` finds


@pytest.fixture
def hooked_service() -> Iterator[LocalService]:
    yield from _local_service("readme-hook")


@pytest.fixture
def local_hook_service() -> Iterator[LocalService]:
    yield from _local_service("readme-local-hook")


def _as_run_here(block: str, service: LocalService) -> str:
    """The block with `make local`'s fixed addresses swapped for the test's."""
    lines = [line for line in block.splitlines() if not line.startswith("source ")]
    script = "\n".join(["set -euo pipefail", *lines])
    target = f"--local --endpoint-url {service.endpoint_url} --stack {service.stack.name}"
    script = script.replace("--local", target)
    receiver = f"http://127.0.0.1:{LOCAL_RECEIVER_PORT}/hooks/songs"
    script = script.replace(receiver, service.receiver.url)
    return script.replace(f"http://127.0.0.1:{LOCAL_API_PORT}", service.api.url)


def _run_here(
    block: str, service: LocalService, cwd: Path, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """A README block in bash, as a user runs it after `source .venv/bin/activate`
    (which puts this interpreter's bin first); it must succeed."""
    done = subprocess.run(  # noqa: S603 - bash running the README's own block
        ["/bin/bash", "-c", _as_run_here(block, service)],
        cwd=cwd,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_the_walkthrough_makes_a_song_and_a_listed_failure(
    service: LocalService, tmp_path: Path
) -> None:
    block = walkthrough(README.read_text())
    assert "source .venv/bin/activate" in block
    assert f"http://127.0.0.1:{LOCAL_API_PORT}" in block
    assert LOCAL_ENDPOINT == "http://127.0.0.1:4566", "what the README says --local reaches"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    bin_dir = Path(sys.executable).parent  # what `source .venv/bin/activate` puts first
    assert (bin_dir / "lyrics-to-song").exists()
    done = _run_here(block, service, tmp_path, timeout=240)

    song = tmp_path / "neon-rain.mp3"
    assert mp3_info(song.read_bytes()).length > 0
    assert song.read_bytes() in [service.emulator.audio_bytes(t) for t in service.emulator.tasks]
    assert "wait ended with exit code 1" in done.stdout
    assert missing_lines(sample(README, "wait"), done.stderr + done.stdout) == [], done.stderr
    assert missing_lines(sample(README, "list failed"), done.stdout) == [], done.stdout
    listing = done.stdout.split("JOB ", 1)[1]
    assert "FAILED" in listing.splitlines()[1]
    assert "generation failed" in listing.splitlines()[1], "the listing says why"

    rows = TaskTable(service.stack.client("dynamodb"), service.stack.tasks_table).rows()
    ended = sorted((row.state, row.resubmits) for row in rows)
    assert ended == [(JobState.COMPLETED, 0), (JobState.COMPLETED, 1)], "the failure paid again"
    assert done.stdout.rstrip().endswith("resubmits  1")


def test_the_local_webhook_walkthrough_prints_the_secret_its_delivery_verifies_with(
    local_hook_service: LocalService, tmp_path: Path
) -> None:
    hooked_service = local_hook_service
    block = walkthrough(README.read_text(), 1)
    assert f"http://127.0.0.1:{LOCAL_RECEIVER_PORT}/hooks/songs" in block
    done = _run_here(block, hooked_service, tmp_path, timeout=120)
    secret = done.stdout.splitlines()[0]
    assert secret.startswith("whsec_")
    deadline = time.monotonic() + 30
    while not hooked_service.receiver.accepted() and time.monotonic() < deadline:
        time.sleep(0.1)
    (delivery,) = hooked_service.receiver.accepted().values()
    headers = {
        "webhook-id": delivery.delivery_id,
        "webhook-timestamp": delivery.timestamp,
        "webhook-signature": delivery.signature,
    }
    assert StandardWebhook(secret).verify(delivery.body, headers)["status"] == "COMPLETED"
    assert "AT " in done.stdout, "the webhook's log, as printed"


def test_the_readme_receiver_takes_the_stacks_webhook_once(
    hooked_service: LocalService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's receiver, as written but on a free port, given default's secret:
    the webhook function's delivery verifies, is printed once, and a forgery is refused."""
    check, receiver = readme_webhook_examples()
    serve = 'HTTPServer(("", 8080), Receiver).serve_forever()'
    assert serve in receiver
    secret = tenant_secret(hooked_service.stack.webhook_secret(), "default")
    monkeypatch.setenv("LYRICS_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {}
    exec(check + receiver.replace(serve, ""), namespace)  # noqa: S102 - the README's own code
    server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        body = {"request_id": "readme-hook", "prompt": "p", "lyrics": "la", "callback_url": url}
        sqs = hooked_service.stack.client("sqs")
        sqs.send_message(QueueUrl=hooked_service.stack.jobs_queue_url, MessageBody=json.dumps(body))
        deadline = time.monotonic() + 60
        printed = ""
        while "COMPLETED" not in printed and time.monotonic() < deadline:
            time.sleep(0.2)
            printed += capsys.readouterr().out
        guess = {
            "webhook-id": "job-guess_1",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA",
        }
        forged = httpx.post(url, content=b"{}", headers=guess)
        bare = httpx.post(url, content=b"{}")
    finally:
        server.shutdown()
        server.server_close()
    (line,) = [line for line in printed.splitlines() if "COMPLETED" in line]
    assert line.startswith("job-"), line
    assert "/songs/" in line, "the song's link"
    assert forged.status_code == 401
    assert bare.status_code == 401, "a request without the headers is refused, not a crash"
