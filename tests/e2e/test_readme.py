"""The README's walkthrough, run as written against the local stack of `make local`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud.emulator import MusicApiEmulator
from local_cloud.serve import LOCAL_API_PORT, LocalService
from lyrics_cli.stack_target import LOCAL_ENDPOINT
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.data.task_table import TaskTable
from tests.docs_text import README, ROOT, walkthrough
from tests.e2e.local_pipeline import mp3_info

pytestmark = pytest.mark.e2e


@pytest.fixture
def service() -> Iterator[LocalService]:
    """`make local`, on free ports (the test points the walkthrough's addresses at them)."""
    emulator = MusicApiEmulator(completion_delay=1.0, audio_seconds=1.0)
    running = LocalService(port=0, emulator=emulator, tick_seconds=0.2)
    yield running.start(lambda note: None)
    running.stop()
    assert not running.errors


def _as_run_here(block: str, service: LocalService) -> str:
    """The block with `make local`'s fixed addresses swapped for the test's."""
    lines = [line for line in block.splitlines() if not line.startswith("source ")]
    script = "\n".join(["set -euo pipefail", *lines])
    script = script.replace("--local", f"--local --endpoint-url {service.endpoint_url}")
    return script.replace(f"http://127.0.0.1:{LOCAL_API_PORT}", service.api.url)


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
    done = subprocess.run(  # noqa: S603 - bash running the README's own block
        ["/bin/bash", "-c", _as_run_here(block, service)],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    song = tmp_path / "neon-rain.mp3"
    assert mp3_info(song.read_bytes()).length > 0
    assert song.read_bytes() in [service.emulator.audio_bytes(t) for t in service.emulator.tasks]
    assert "wait ended with exit code 1" in done.stdout
    listing = done.stdout.split("JOB ", 1)[1]
    assert "FAILED" in listing.splitlines()[1]
    assert "generation failed" in listing.splitlines()[1], "the listing says why"

    rows = TaskTable(service.stack.client("dynamodb"), service.stack.tasks_table).rows()
    ended = sorted((row.state, row.resubmits) for row in rows)
    assert ended == [(JobState.COMPLETED, 0), (JobState.COMPLETED, 1)], "the failure paid again"
    assert done.stdout.rstrip().endswith("resubmits  1")
