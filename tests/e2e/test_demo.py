"""`make demo`, run in this process: its options, its refusals, and the workflow way
(`make demo WORKFLOW=1`), whose song a Step Functions execution on moto receives."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local_cloud import demo
from tests.docs_text import README, ROOT
from tests.e2e.local_pipeline import mp3_info
from tests.samples import missing_lines, sample


@pytest.fixture(autouse=True)
def _moto_port_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOTO_PORT", raising=False)  # the workflow way sets it


@pytest.mark.e2e
@pytest.mark.slow
def test_the_workflow_way_hands_the_song_to_the_workflow_s_next_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--workflow", "--delay", "0.5", "--timeout", "60", "--out", str(tmp_path)]
    argv += ["--stack", "demo-workflow"]  # moto's state is this process's: a name of its own
    assert demo.main(argv) == 0
    out = capsys.readouterr().out
    (song,) = tmp_path.glob("*.mp3")
    assert mp3_info(song.read_bytes()).length > 0
    assert "workflow   started: its task puts the song request" in out
    assert (
        f"workflow   SUCCEEDED: its next state got s3://demo-workflow-songsbucket/songs/{song.name}"
        in out
    )
    assert "upload" not in out, "no lyric file was uploaded: the workflow asked"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lyrics", "no-such.txt"], "lyric file"),
        (
            ["--lyrics", str(Path(__file__).resolve().parents[2] / "README.md")],
            "README.md is not a lyric file: the name must end in .txt or .json (in any case)",
        ),
        (["--callback", "--real-api"], "--callback needs the emulator"),
        (["--callback", "--workflow"], "the workflow's request names no callback_url"),
        (["--real-api"], "--real-api needs MUSIC_API_KEY"),
    ],
)
def test_options_that_cannot_work_are_refused_before_anything_starts(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MUSIC_API_KEY", "k" if "--callback" in argv else " ")
    monkeypatch.chdir(tmp_path)
    assert demo.main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == "", "no server was started"
    assert not (tmp_path / "out").exists(), "no folder made either"


@pytest.mark.e2e
def test_a_song_that_does_not_come_in_time_ends_the_demo_with_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--delay", "60", "--timeout", "2", "--out", str(tmp_path), "--stack", "demo-late"]
    assert demo.main(argv) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert '"level"' not in out + captured.err, "the functions' log lines only with --verbose"
    assert "timeout    no notification within 2 s" in out
    assert "upload" in out
    assert list(tmp_path.glob("*.mp3")) == []


def run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m local_cloud.demo` run in `cwd`, as `make demo` runs it."""
    return subprocess.run(  # noqa: S603 - this interpreter, arguments the test chose
        [sys.executable, "-m", "local_cloud.demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_make_demo_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """`make demo` as the Makefile runs it, from a copy of the repository's examples."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    run = run_demo(tmp_path, "--lyrics", "examples/neon-rain.txt")
    assert run.returncode == 0, run.stdout + run.stderr
    assert missing_lines(sample(README, "demo"), run.stdout) == [], run.stdout
    assert '"level"' not in run.stdout + run.stderr, "its own lines only: logs with --verbose"
    (song,) = (tmp_path / "out").glob("*.mp3")
    assert mp3_info(song.read_bytes()).length > 0


@pytest.mark.e2e
def test_the_demo_shows_its_own_lines_not_the_functions_logs(tmp_path: Path) -> None:
    """A refused lyric file makes the submit function log a WARNING; the demo says what
    happened in its own words, and the log line shows only with --verbose."""
    bad = tmp_path / "bad.txt"
    bad.write_text("---\nbitrate: 12345\n---\n[Verse]\nla la\n")
    run = run_demo(tmp_path, "--lyrics", str(bad), "--timeout", "30")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED" in run.stdout
    assert '"level"' not in run.stdout + run.stderr, "the functions' log lines: --verbose"
