"""The `lyrics-to-song` command, run as a user runs it, against a running local stack."""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_cloud.emulator import MusicApiEmulator
from local_cloud.serve import LocalService
from tests.e2e.local_pipeline import mp3_info

pytestmark = pytest.mark.e2e

LYRICS = "[Verse]\nStreetlights hum a silver tune\n[Chorus]\nNeon rain, neon rain\n"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    service: LocalService
    env: dict[str, str]

    @property
    def emulator(self) -> MusicApiEmulator:
        return self.service.emulator

    def __call__(
        self, *args: str, stdin: str = "", timeout: float = 60, cwd: Path | None = None
    ) -> Run:
        """The installed command, in its own process, pointed at the local stack."""
        target = ["--endpoint-url", self.service.endpoint_url, "--stack", self.service.stack.name]
        return self.as_typed(*target, *args, stdin=stdin, timeout=timeout, cwd=cwd)

    def as_typed(
        self, *args: str, stdin: str = "", timeout: float = 60, cwd: Path | None = None
    ) -> Run:
        """The command with these arguments only, as a user would type them."""
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "lyrics_cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
            cwd=cwd,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def hint(self, run: Run) -> list[str]:
        """The arguments of the command a run's output suggests next."""
        line = next(line for line in run.out.splitlines() if "lyrics-to-song " in line)
        return shlex.split(line.partition("lyrics-to-song ")[2])

    def submit_request(self, prompt: str = "warm synth-pop") -> str:
        run = self("submit", "--prompt", prompt, "--lyrics", LYRICS, "--json")
        assert run.code == 0, run.err
        job_id: str = run.json()["job_id"]
        return job_id


_services = itertools.count()


@pytest.fixture(scope="module")
def service() -> Iterator[LocalService]:
    # Parallel workers may run this module's tests apart, setting this up again in one
    # process, where moto's servers share their state: each stack has a name of its own.
    emulator = MusicApiEmulator(completion_delay=0.5, audio_seconds=1.0)
    name = f"cli-{next(_services)}"
    running = LocalService(port=0, stack_name=name, emulator=emulator, tick_seconds=0.2)
    yield running.start()
    running.stop()
    assert not running.errors


@pytest.fixture
def cli(service: LocalService, tmp_path: Path) -> Iterator[Cli]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    yield Cli(service, env)
    service.emulator.faults.fail_tasks = False
    service.emulator.faults.never_finish = False


def test_submit_a_file_wait_and_fetch_the_song(
    cli: Cli, service: LocalService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that `wait`, a process of its own, starts before the song is ready.
    monkeypatch.setattr(service.emulator, "completion_delay", 3.0)
    lyric_file = tmp_path / "city lights.txt"
    lyric_file.write_text("---\nprompt: dreamy synth-pop\n---\n" + LYRICS)

    submitted = cli("submit", str(lyric_file))
    assert submitted.code == 0, submitted.err
    job_id = submitted.out.split()[0]
    assert job_id.startswith("job-")

    follow = cli.hint(submitted)  # the command the output says to run next, as printed
    assert follow[-2:] == ["wait", job_id]
    waited = cli.as_typed(*follow, "--interval", "0.2")
    assert waited.code == 0, waited.err
    assert "COMPLETED" in waited.out
    assert "the music API is making the song" in waited.err  # progress goes to stderr

    song = tmp_path / "out.mp3"
    fetched = cli("fetch", job_id, "-o", str(song))
    assert fetched.code == 0, fetched.err
    task_id = cli("status", job_id, "--json").json()["task_id"]
    assert song.read_bytes() == cli.emulator.audio_bytes(task_id)
    assert not (tmp_path / "out.mp3.part").exists()
    assert cli.emulator.submissions[-1]["prompt"] == "dreamy synth-pop"


def test_queued_request_with_json_output_and_list(cli: Cli, tmp_path: Path) -> None:
    song = tmp_path / "lofi.mp3"
    run = cli(
        "submit", "--prompt", "lofi beats", "--lyrics", "-", "--wait", "--interval", "0.2",
        "--json", "-o", str(song), stdin=LYRICS,
    )  # fmt: skip
    assert run.code == 0, run.err
    job = run.json()
    assert job["state"] == "COMPLETED"
    assert job["song"]["s3_uri"].endswith(".mp3")
    assert song.read_bytes() == cli.emulator.audio_bytes(job["task_id"]), "-o: the song too"
    refused = cli("submit", "--prompt", "x", "--lyrics", "la", "-o", str(song))
    assert (refused.code, "-o FILE goes with --wait" in refused.err) == (2, True)
    assert cli.emulator.submissions[-1]["lyrics"] == LYRICS.strip()

    newest = cli("list", "--status", "completed", "--limit", "1", "--json").json()
    assert [j["job_id"] for j in newest] == [job["job_id"]]
    everything = cli("list", "--json").json()
    created = [j["created_at"] for j in everything]
    assert created == sorted(created, reverse=True)
    assert "COMPLETED" in cli("list").out


def test_a_failed_job_is_resubmitted_only_when_confirmed(cli: Cli, tmp_path: Path) -> None:
    cli.emulator.faults.fail_tasks = True
    job_id = cli.submit_request("doomed ballad")
    waited = cli("wait", job_id, "--interval", "0.2")
    assert waited.code == 1
    assert "FAILED" in waited.out
    assert cli("fetch", job_id, "-o", str(tmp_path / "none.mp3")).code == 1
    assert not (tmp_path / "none.mp3").exists()
    paid = len(cli.emulator.submissions)

    refused = cli("resubmit", job_id, "--force")  # stdin is not a terminal, and no --yes
    assert refused.code == 2
    assert "--yes" in refused.err
    assert cli("status", job_id, "--json").json()["state"] == "FAILED"
    assert len(cli.emulator.submissions) == paid

    cli.emulator.faults.fail_tasks = False
    repeats = cli("resubmit", job_id, "--yes")  # the emulator's failure: content refused
    assert repeats.code == 1
    assert "resubmit it anyway with --force" in repeats.err
    assert len(cli.emulator.submissions) == paid
    again = cli("resubmit", job_id, "--yes", "--force", "--wait", "--interval", "0.2", "--json")
    assert again.code == 0, again.err
    assert again.json()["resubmits"] == 1
    assert len(cli.emulator.submissions) == paid + 1


def test_wait_gives_up_with_its_own_exit_code(cli: Cli) -> None:
    cli.emulator.faults.never_finish = True
    job_id = cli.submit_request("endless drone")
    run = cli("wait", job_id, "--timeout", "2", "--interval", "0.2")
    assert run.code == 5
    assert "still" in run.err


def test_bad_input_is_refused_before_anything_is_sent(cli: Cli, tmp_path: Path) -> None:
    paid = len(cli.emulator.submissions)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    run = cli("submit", str(empty))
    assert run.code == 2
    assert "empty" in run.err
    objects = cli.service.stack.client("s3").list_objects_v2(
        Bucket=cli.service.stack.lyrics_bucket, Prefix="empty"
    )
    assert objects.get("KeyCount", 0) == 0

    run = cli("submit", "--prompt", "x", "--lyrics", LYRICS, "--bitrate", "1", "--json")
    assert run.code == 2
    assert "bitrate" in run.json()["error"]
    assert cli("submit", "--lyrics", LYRICS).code == 2  # a request needs a prompt
    assert cli("submit", str(tmp_path / "missing.txt")).code == 2
    assert len(cli.emulator.submissions) == paid


def test_clear_errors_for_unknown_jobs_stacks_and_credentials(cli: Cli) -> None:
    unknown = cli("status", "job-" + "0" * 32)
    assert unknown.code == 3
    assert "no job" in unknown.err
    assert cli("status", "not-a-job").code == 2

    other_stack = cli("list", "--stack", "nowhere")
    assert other_stack.code == 4
    assert "stack 'nowhere' not found" in other_stack.err

    no_keys = {k: v for k, v in cli.env.items() if not k.startswith("AWS_ACCESS")}
    no_keys |= {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    run = subprocess.run(
        [sys.executable, "-m", "lyrics_cli", "--region", "us-east-1", "list"],
        capture_output=True,
        text=True,
        env={**no_keys, "AWS_EC2_METADATA_DISABLED": "true"},
        timeout=60,
        check=False,
    )
    assert run.returncode == 4
    assert "no AWS credentials" in run.stderr


def test_demo_command_writes_an_mp3_in_the_current_folder(cli: Cli, tmp_path: Path) -> None:
    run = cli("demo", "--delay", "0.5", "--timeout", "60", "--callback", timeout=120, cwd=tmp_path)
    assert run.code == 0, run.out + run.err
    songs = list((tmp_path / "out").glob("*.mp3"))
    assert len(songs) == 1
    assert mp3_info(songs[0].read_bytes()).length > 0
    # make demo CALLBACK=1: the song's webhook reached a receiver that checked its signature.
    verified = "status COMPLETED, signature verified (Standard Webhooks) with the tenant's secret"
    assert verified in run.out


def test_options_given_with_a_file_are_the_ones_paid_for(cli: Cli, tmp_path: Path) -> None:
    lyric_file = tmp_path / "options.txt"
    lyric_file.write_text(LYRICS)
    run = cli(
        "submit", str(lyric_file), "--prompt", "chanson douce", "--bitrate", "128000",
        "--sample-rate", "32000", "--wait", "--interval", "0.2", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    paid = cli.emulator.submissions[-1]
    assert (paid["prompt"], paid["bitrate"], paid["sample_rate"]) == (
        "chanson douce",
        128000,
        32000,
    )

    fenced = tmp_path / "fenced.txt"
    fenced.write_text("---\nbitrate: 64000\n---\n" + LYRICS)
    refused = cli("submit", str(fenced), "--bitrate", "256000")
    assert refused.code == 2
    assert "sets bitrate to 64000 already" in refused.err


def test_the_same_request_twice_is_paid_once_and_says_so(cli: Cli) -> None:
    args = ("submit", "--prompt", "twice told", "--lyrics", LYRICS)
    first = cli(*args, "--wait", "--interval", "0.2")
    assert first.code == 0, first.err
    paid = len(cli.emulator.submissions)
    again = cli(*args)
    assert again.code == 0, again.err
    assert "already submitted: the same request is the same job, now COMPLETED" in again.out
    assert first.err.split()[0] == again.out.split()[0], "the same job id"
    assert len(cli.emulator.submissions) == paid


def test_output_cut_short_by_its_reader_is_not_an_error(cli: Cli) -> None:
    cli.submit_request("for the listing")
    target = ["--endpoint-url", cli.service.endpoint_url, "--stack", cli.service.stack.name]
    listing = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "lyrics_cli", *target, "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env,
    )
    assert listing.stdout is not None
    assert listing.stderr is not None
    listing.stdout.close()  # as `| head -0` does
    errors = listing.stderr.read().decode()
    assert listing.wait(timeout=60) == 141
    assert "Traceback" not in errors, errors


def test_the_local_command_line_is_a_producer_bound_to_the_default_tenant(cli: Cli) -> None:
    """The local stack binds its command line as an operator binds a producer; naming
    another tenant is refused, unpaid and said, until that tenant is bound too."""
    shown = cli("senders", "show", "--json").json()
    assert shown["tenant_policy"] == "bound"
    assert {"sender": "AIDAIT2UOQQY3AUEKVGXU", "tenants": ["default"]} in shown["senders"]
    paid = len(cli.emulator.submissions)
    request = ("submit", "--prompt", "city pop", "--lyrics", LYRICS, "--tenant", "team-e")
    unknown = cli(*request, "--wait", "--interval", "0.2")
    assert unknown.code == 2, "no such tenant: nothing is sent"
    assert "no tenant 'team-e' in stack" in unknown.err
    assert cli("tenants", "add", "team-e").code == 0
    refused = cli(*request, "--wait", "--interval", "0.2", "--json")
    assert refused.code == 1, refused.err
    job = refused.json()
    assert (job["state"], job["tenant"]) == ("FAILED", "default")
    assert "may not submit for tenant team-e; it may for default" in job["error"]
    assert len(cli.emulator.submissions) == paid
    # `-q` prints no id that will not exist: the refusal's, which `status` shows, exit 1.
    quiet = cli(*request, "--request-id", "quiet", "-q")
    assert quiet.code == 1, quiet.err
    assert "refused, unpaid: invalid song request: sender" in quiet.err
    shown = cli("status", quiet.out.strip(), "--json").json()
    assert (shown["state"], shown["tenant"]) == ("FAILED", "default")

    bind = ("senders", "bind", "--tenant", "team-e", "--sender", "AIDAIT2UOQQY3AUEKVGXU")
    assert cli(*bind).code == 0
    made = cli(*request, "--request-id", "after-binding", "--wait", "--interval", "0.2", "--json")
    assert made.code == 0, made.err
    assert (made.json()["state"], made.json()["tenant"]) == ("COMPLETED", "team-e")
    unbind = ("senders", "unbind", "--tenant", "team-e", "--sender", "AIDAIT2UOQQY3AUEKVGXU")
    assert cli(*unbind).code == 0
