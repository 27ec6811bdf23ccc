"""The command line's logic against moto in-process: finding the stack, waiting, rules."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto import mock_aws
from standardwebhooks import Webhook as StandardWebhook

from local_cloud.stack import Stack, provision, register_outputs
from lyrics_cli import jobs, spend_report, tenant_settings, views
from lyrics_cli.main import _local_tool_call, main
from lyrics_cli.stack_target import CliError, Cloud, ExitCode, connect
from lyrics_to_song.data.caps import Budget, TenantStore
from lyrics_to_song.data.pace import SongTimes
from lyrics_to_song.data.rows import Charge, JobState, Row, WebhookState
from lyrics_to_song.data.senders import SenderStore
from lyrics_to_song.data.task_table import Started, TaskTable
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.lyric_files import parse_lyric_file
from lyrics_to_song.song_request import parse_request
from lyrics_to_song.sources import QueuedRequest, read_message
from lyrics_to_song.webhooks.signing import signed_headers, tenant_secret
from tests.docs_text import ROOT
from tests.samples import missing_lines, sample
from tests.support import FakeClock, seed_row

PRODUCERS = ROOT / "docs" / "producers.md"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        stack = provision(endpoint_url=None, stack_name="songs")
        register_outputs(stack)
        yield stack


def test_connect_finds_the_resources_by_the_stack_outputs(stack: Stack) -> None:
    cloud = connect("songs", region="us-east-1")
    assert (cloud.lyrics_bucket, cloud.songs_bucket, cloud.tasks_table) == (
        stack.lyrics_bucket,
        stack.songs_bucket,
        stack.tasks_table,
    )
    assert cloud.jobs_queue_url == stack.jobs_queue_url


def test_connect_names_what_is_missing(stack: Stack) -> None:
    with pytest.raises(CliError, match="stack 'elsewhere' not found in us-east-1") as missing:
        connect("elsewhere", region="us-east-1")
    assert missing.value.code is ExitCode.ENVIRONMENT

    body = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {"LyricsBucketName": {"Value": "b"}},
    }
    stack.client("cloudformation").create_stack(StackName="other", TemplateBody=json.dumps(body))
    with pytest.raises(CliError, match="SongsBucketName, JobsQueueUrl, TasksTableName"):
        connect("other", region="us-east-1")


def _pending_row(stack: Stack, cloud: Cloud, clock: FakeClock) -> str:
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    budget = Budget(cloud.dynamodb, spending, per_day=100, in_flight=100)
    job_id = "job-" + "a" * 32
    seed_row(table, budget, job_id, now=clock(), task_id="task-1")
    return job_id


def test_wait_reports_each_change_and_gives_up_at_its_timeout(
    stack: Stack, clock: FakeClock
) -> None:
    cloud = connect("songs", region="us-east-1")
    job_id = _pending_row(stack, cloud, clock)
    seen: list[tuple[JobState | None, float]] = []

    with pytest.raises(CliError, match="still PENDING") as gave_up:
        jobs.wait_for(
            cloud,
            job_id,
            timeout=30,
            interval=5,
            on_change=lambda row, elapsed: seen.append((row.state if row else None, elapsed)),
            clock=clock,
            sleep=clock.advance,
        )
    assert gave_up.value.code is ExitCode.TIMEOUT
    assert seen == [(JobState.PENDING, 0.0)]  # one line, not one per check

    missing = "job-" + "b" * 32
    with pytest.raises(CliError, match="not taken by the submit function yet"):
        jobs.wait_for(
            cloud,
            missing,
            timeout=10,
            interval=5,
            on_change=lambda row, elapsed: seen.append((None, elapsed)),
            clock=clock,
            sleep=clock.advance,
        )


@pytest.mark.parametrize(
    ("state", "notified", "request_json", "allowed", "resubmits"),
    [
        (JobState.FAILED, True, "{}", True, 0),
        (JobState.UNKNOWN, True, "{}", True, 0),
        (JobState.TIMED_OUT, True, "{}", True, 0),
        (JobState.COMPLETED, True, "{}", False, 0),
        (JobState.PENDING, False, "{}", False, 0),
        (JobState.FAILED, False, "{}", False, 0),  # its notification is not out yet
        (JobState.FAILED, True, None, False, 0),  # bad input: nothing to send again
        (JobState.FAILED, True, "{}", False, 3),  # MAX_RESUBMITS spent: the stack would refuse
        (JobState.FAILED, True, "{}", True, 2),
    ],
)
def test_resubmission_rules(
    state: JobState, notified: bool, request_json: str | None, allowed: bool, resubmits: int
) -> None:
    row = Row(
        job_id="job-" + "c" * 32,
        state=state,
        source="s",
        source_name="s",
        created_at=0.0,
        request_json=request_json,
        notified=notified,
        error="boom",
        resubmits=resubmits,
    )
    if allowed:
        jobs.check_resubmittable(row)
    else:
        with pytest.raises(CliError) as refused:
            jobs.check_resubmittable(row)
        assert refused.value.code is ExitCode.ENDED_BADLY


def test_a_local_tool_that_cannot_be_loaded_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lyrics_cli import main as cli_main

    def without_moto(**kwargs: str) -> list[object]:
        class Broken:
            def load(self) -> None:
                raise ModuleNotFoundError("No module named 'moto'", name="moto")

        return [Broken()]

    monkeypatch.setattr(cli_main, "entry_points", without_moto)
    assert main(["demo", "--delay", "1"]) == ExitCode.ENVIRONMENT
    assert "`demo` needs the local stack's packages (moto is missing)" in capsys.readouterr().err


def test_demo_and_local_take_their_arguments_unparsed() -> None:
    assert _local_tool_call(["demo", "--out", "x"]) == ("demo", ["--out", "x"])
    assert _local_tool_call(["--stack", "demo", "local", "--port", "1"]) == (
        "local",
        ["--port", "1"],
    )
    assert _local_tool_call(["--local", "status", "demo"]) is None


def test_song_sizes_read_naturally() -> None:
    assert views.size_text(48_483) == "48 kB"
    assert views.size_text(5_300_000) == "5.3 MB"
    assert views.size_text(None) == "size unknown"


def test_waiting_on_a_resubmission_ignores_the_earlier_ending(
    stack: Stack, clock: FakeClock
) -> None:
    cloud = connect("songs", region="us-east-1")
    job_id = "job-" + "d" * 32
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    assert table.reject(
        job_id, source="s", source_name="s", error="x", now=clock(), lease_seconds=60
    )

    def wait(resubmits: int) -> Row:
        return jobs.wait_for(
            cloud,
            job_id,
            timeout=10,
            interval=5,
            on_change=lambda row, elapsed: None,
            resubmits=resubmits,
            clock=clock,
            sleep=clock.advance,
        )

    assert wait(0).state is JobState.FAILED  # plain wait: the job has ended
    with pytest.raises(CliError, match="not taken by the submit function yet"):
        wait(1)  # after a resubmit: that ending is the old one


def test_a_pending_job_says_when_its_song_should_be_ready(stack: Stack, clock: FakeClock) -> None:
    cloud = connect("songs", region="us-east-1")
    job_id = _pending_row(stack, cloud, clock)
    row = jobs.get_job(cloud, job_id)
    window = jobs.likely_window(cloud, row.model)
    assert (window.start, window.end, window.songs) == (30.0, 90.0, 0), "the documented prior"
    assert views.expected(row, window, clock() + 12) == (
        "12 s in; usually ready 30-90 s after submission (the stack's TypicalSongSeconds, "
        "until it has 10 songs to learn from): in 18-78 s"
    )
    assert "longer than usual" in (views.expected(row, window, clock() + 95) or "")
    assert views.job_dict(row, cloud.songs_bucket, window)["expected_ready"] == {
        "from": views.when(clock() + 30),
        "by": views.when(clock() + 90),
        "learned_from_songs": 0,
    }

    assert cloud.spending_table is not None
    times = SongTimes(cloud.dynamodb, cloud.spending_table)
    for n in range(12):
        times.record("minimax-music", f"job-{n}", 40.0 + n)
    learned = jobs.likely_window(cloud, row.model)
    assert learned.songs == 12
    assert "learned from 12 songs" in (views.expected(row, learned, clock() + 5) or "")
    progress = views.progress(row, 5.0, views.expected(row, learned, clock() + 5))
    assert progress.startswith("[    5 s] PENDING: the music API is making the song")
    assert "usually ready 41-50 s after submission" in progress

    ended = jobs.get_job(cloud, job_id)
    assert views.expected(dataclasses.replace(ended, state=JobState.COMPLETED), learned, 0) is None


def test_estimates_start_from_the_stacks_own_typical_song_time(stack: Stack) -> None:
    cloud = connect("songs", region="us-east-1")
    assert cloud.typical_song_seconds == "30-90", "an output of the stack"
    window = jobs.likely_window(dataclasses.replace(cloud, typical_song_seconds="2-6"), None)
    assert (window.start, window.end, window.songs) == (2.0, 6.0, 0)
    unreadable = dataclasses.replace(cloud, typical_song_seconds="soon")
    assert jobs.likely_window(unreadable, None).start == 30.0, "the documented figure"


def test_a_job_that_never_appears_is_not_found_after_the_grace_period(
    stack: Stack, clock: FakeClock
) -> None:
    cloud = connect("songs", region="us-east-1")
    with pytest.raises(CliError, match="not found after 60 s") as missing:
        jobs.wait_for(
            cloud,
            "job-" + "c" * 32,
            timeout=900,
            interval=5,
            on_change=lambda row, elapsed: None,
            missing_after=60,
            clock=clock,
            sleep=clock.advance,
        )
    assert missing.value.code is ExitCode.NOT_FOUND
    assert clock() < 1_800_000_000 + 70, "answered after the grace period, not the timeout"


@pytest.mark.parametrize(("given", "uploaded"), [("song.TXT", "song.txt"), ("a.Json", "a.json")])
def test_a_lyric_file_with_an_upper_case_suffix_is_uploaded_where_the_bucket_sees_it(
    stack: Stack, tmp_path: Path, given: str, uploaded: str
) -> None:
    cloud = connect("songs", region="us-east-1")
    path = tmp_path / given
    path.write_text('{"lyrics": "la la", "prompt": "rock"}' if given.endswith("n") else "la la")
    submitted = jobs.upload_file(cloud, jobs.prepare_file(path, key=None, fields={}))
    assert submitted.where == f"s3://{cloud.lyrics_bucket}/{uploaded}"
    listed = cloud.s3.list_objects_v2(Bucket=cloud.lyrics_bucket)["Contents"]
    assert [item["Key"] for item in listed] == [uploaded]
    assert uploaded.endswith((".txt", ".json")), "what the bucket's notification filter matches"
    with pytest.raises(CliError, match="is not a lyric file: the name must end in") as refused:
        jobs.prepare_file(tmp_path / given, key="notes.md", fields={})
    assert refused.value.code is ExitCode.USAGE
    with pytest.raises(CliError, match="is a folder: submit takes one lyric file") as refused:
        jobs.prepare_file(tmp_path, key=None, fields={})
    assert refused.value.code is ExitCode.USAGE


def test_the_same_request_twice_from_the_command_line_is_one_job(stack: Stack) -> None:
    cloud = connect("songs", region="us-east-1")
    body = {"prompt": "rock", "lyrics": "la la la"}
    first = jobs.submit_request(cloud, dict(body))
    again = jobs.submit_request(cloud, dict(body))
    other = jobs.submit_request(cloud, {**body, "bitrate": 128000})
    assert first.job_id == again.job_id != other.job_id
    messages = cloud.sqs.receive_message(QueueUrl=cloud.jobs_queue_url, MaxNumberOfMessages=10)[
        "Messages"
    ]
    # The id the command prints is the one the submit function gives the message's job
    # (the queue also holds the bucket's s3:TestEvent).
    read = [read_message(m["Body"], m["MessageId"]) for m in messages]
    requests = [r for r in read if isinstance(r, QueuedRequest)]
    assert all("request_id" not in r.body for r in requests), "no random id is added"
    assert sorted(r.job.job_id for r in requests) == sorted(
        [first.job_id, again.job_id, other.job_id]
    )


def register(stack: Stack, *names: str) -> None:
    """Register tenants, as `lyrics-to-song tenants add` does."""
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    for name in names:
        assert TenantRegistry(stack.client("dynamodb"), spending).add(name, time.time())


def _submit_file(cloud: Cloud, path: Path, **fields: object) -> jobs.Submitted:
    return jobs.upload_file(cloud, jobs.prepare_file(path, key=None, fields=fields))


def _stored_request(cloud: Cloud, key: str) -> dict[str, object]:
    data = cloud.s3.get_object(Bucket=cloud.lyrics_bucket, Key=key)["Body"].read()
    request = parse_lyric_file(
        key, data, metadata_prompt=None, default_prompt="house", default_model="minimax-music"
    )
    return {"prompt": request.prompt, "bitrate": request.bitrate, "model": request.model}


def test_options_given_with_a_file_reach_the_submit_function_or_are_refused(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = connect("songs", region="us-east-1")
    plain = tmp_path / "plain.txt"
    plain.write_text("[Verse]\nNeon rain\n")
    submitted = _submit_file(cloud, plain, prompt="rêveuse", bitrate=128000, model="music-2")
    assert _stored_request(cloud, "plain.txt") == {
        "prompt": "rêveuse",  # not ASCII: written into the file, not into S3 metadata
        "bitrate": 128000,
        "model": "music-2",
    }
    assert submitted.earlier is None

    fenced = tmp_path / "fenced.txt"
    fenced.write_text("---\nprompt: rock\n---\nla la\n")
    target = ["--region", "us-east-1", "--stack", "songs", "submit", str(fenced)]
    assert main([*target, "--prompt", "jazz"]) == ExitCode.USAGE
    assert "sets prompt to 'rock' already; 'jazz' would contradict it" in capsys.readouterr().err
    assert main([*target, "--request-id", "r-1"]) == ExitCode.USAGE
    assert "--request-id names a request" in capsys.readouterr().err
    keys = [o["Key"] for o in cloud.s3.list_objects_v2(Bucket=cloud.lyrics_bucket)["Contents"]]
    assert keys == ["plain.txt"], "nothing refused was uploaded"
    request = ["--region", "us-east-1", "--stack", "songs", "submit", "--prompt", "p"]
    assert main([*request, "--lyrics", "la", "--key", "x.txt"]) == ExitCode.USAGE
    assert "--key names the uploaded FILE" in capsys.readouterr().err


def test_a_request_that_already_was_a_job_says_so_and_sends_nothing(
    stack: Stack, clock: FakeClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = connect("songs", region="us-east-1")
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    body = {"prompt": "rock", "lyrics": "la la la"}
    first = jobs.submit_request(cloud, dict(body))
    seed_row(table, None, first.job_id, now=clock(), task_id="task-1")
    args = ["--region", "us-east-1", "--stack", "songs", "submit", "--prompt", "rock"]
    assert main([*args, "--lyrics", "la la la", "--json"]) == ExitCode.OK
    said = json.loads(capsys.readouterr().out)
    assert said == {
        "job_id": first.job_id,
        "submitted_to": cloud.jobs_queue_url,
        "new": False,
        "state": "PENDING",
    }
    queued = cloud.sqs.receive_message(QueueUrl=cloud.jobs_queue_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in queued["Messages"]]
    assert [b for b in bodies if "lyrics" in b] == [body], "sent once, not twice"

    path = tmp_path / "song.txt"
    path.write_text("la la")
    uploaded = jobs.upload_file(cloud, jobs.prepare_file(path, key=None, fields={}), clock=clock)
    assert uploaded.earlier is None
    seed_row(table, None, uploaded.job_id, now=clock())
    clock.advance(60)
    again = jobs.upload_file(cloud, jobs.prepare_file(path, key=None, fields={}), clock=clock)
    assert again.earlier is not None
    assert again.earlier.job_id == uploaded.job_id


def test_bad_input_is_a_usage_error_even_when_the_stack_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nowhere = ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]
    assert main([*nowhere, "submit", "--prompt", "p", "--lyrics", " "]) == ExitCode.USAGE
    assert "lyrics" in capsys.readouterr().err
    assert main([*nowhere, "status", "job-42"]) == ExitCode.USAGE
    assert main([*nowhere, "list"]) == ExitCode.ENVIRONMENT, "good input does connect"


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--limit", "-1"],
        ["list", "--limit", "0"],
        ["wait", "job-" + "a" * 32, "--timeout", "-5"],
        ["wait", "job-" + "a" * 32, "--interval", "0"],
        ["wait", "job-" + "a" * 32, "--missing-after", "-1"],
    ],
)
def test_impossible_numbers_are_refused_by_the_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == ExitCode.USAGE
    assert "error: argument" in capsys.readouterr().err


def test_help_names_each_command_and_every_allowed_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "32000, 60000, 64000, 128000, 256000" in text
    for tool in ("demo", "local"):
        with pytest.raises(SystemExit):
            main([tool, "--help"])
        assert capsys.readouterr().out.startswith(f"usage: lyrics-to-song {tool} ")


def test_aws_region_is_read_and_a_missing_region_points_at_local(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert connect("songs").tasks_table == stack.tasks_table
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(CliError, match=r"set AWS_REGION \(or use --local") as missing:
        connect("songs")
    assert missing.value.code is ExitCode.ENVIRONMENT


def test_hints_repeat_the_options_that_found_the_stack() -> None:
    from lyrics_cli.commands import again
    from lyrics_cli.parser import build_parser

    local = build_parser().parse_args(["--local", "list"])
    assert again(local) == "lyrics-to-song --local"
    other = build_parser().parse_args(["list", "--stack", "mine", "--region", "eu-west-1"])
    assert again(other) == "lyrics-to-song --stack mine --region eu-west-1"


def test_progress_counts_in_words() -> None:
    row = Row(
        job_id="job-" + "e" * 32,
        state=JobState.PENDING,
        source="s",
        source_name="s",
        created_at=0.0,
        task_id="t",
        polls=1,
    )
    assert "(1 check so far)" in views.progress(row, 3)
    assert "(2 checks so far)" in views.progress(dataclasses.replace(row, polls=2), 3)


def test_local_on_a_taken_port_says_so_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    from local_cloud.serve import main as serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        codes: list[int] = []
        runner = threading.Thread(
            target=lambda: codes.append(
                serve(["--port", str(port), "--api-port", "0", "--hook-port", "0"])
            ),
            daemon=True,
        )
        runner.start()
        runner.join(timeout=30)
    assert codes == [ExitCode.ENVIRONMENT], "exits instead of waiting for ever"
    assert f"port {port}, 0 or 0 is in use" in capsys.readouterr().err


def test_a_tenant_from_the_command_line_goes_where_the_functions_read_it(
    stack: Stack, tmp_path: Path
) -> None:
    cloud = connect("songs", region="us-east-1")
    path = tmp_path / "song.txt"
    path.write_text("la la")
    upload = jobs.prepare_file(path, key=None, fields={}, tenant="team-a")
    jobs.upload_file(cloud, upload)
    head = cloud.s3.head_object(Bucket=cloud.lyrics_bucket, Key="song.txt")
    assert head["Metadata"] == {"tenant": "team-a"}
    with pytest.raises(CliError, match="--tenant must be a tenant name") as refused:
        jobs.prepare_file(path, key=None, fields={}, tenant="Team A")
    assert refused.value.code is ExitCode.USAGE
    with pytest.raises(CliError, match="'tenant' must be a tenant name"):
        jobs.check_request({"prompt": "p", "lyrics": "l", "tenant": "Team A"})


@pytest.mark.parametrize(
    ("charge", "said"),
    [
        (Charge(30, 0.3), "30 credits ($0.30)"),
        (Charge(70, 0.7, 30, 0.3), "70 credits ($0.70), and maybe 30 credits ($0.30) more"),
        (Charge(0, 0, 30, 0.3), "maybe 30 credits ($0.30): the outcome of its submission"),
        (Charge(), "nothing"),
    ],
)
def test_status_says_what_a_job_cost(charge: Charge, said: str) -> None:
    row = Row(
        job_id="job-" + "e" * 32,
        state=JobState.COMPLETED,
        source="s",
        source_name="s",
        created_at=0.0,
        tenant="team-a",
        charge=charge,
    )
    text = views.describe(row, "songs")
    assert f"cost       {said}" in text
    assert "tenant     team-a" in text
    assert views.job_dict(row, "songs")["cost"] == charge.as_dict()


def test_caps_are_set_and_shown_per_tenant_with_what_is_used(
    stack: Stack, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "team-a", "team-b")
    target = ["--region", "us-east-1", "--stack", "songs"]
    set_a = [*target, "caps", "set", "--tenant", "team-a", "--json"]
    assert main([*set_a, "--per-day", "5", "--in-flight", "2"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == [
        {
            "tenant": "team-a",
            "per_day": 5,
            "in_flight": 2,
            "used_today": 0,
            "in_flight_now": 0,
            "own": True,
            "monthly_credits": None,
            "credits_this_month": 0,
        }
    ]
    assert main([*set_a, "--per-day", "7"]) == ExitCode.OK, "the other cap is kept"
    capsys.readouterr()

    cloud = connect("songs", region="us-east-1")
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    budget = Budget(cloud.dynamodb, spending, per_day=100, in_flight=100)
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    started = table.start(
        "job-" + "a" * 32,
        source="s",
        source_name="s",
        request_json="{}",
        model="m",
        now=time.time(),
        lease_seconds=60,
        reservation=budget.reserve("job-" + "a" * 32, time.time(), budget.caps_of("team-a")),
        tenant="team-a",
    )
    assert isinstance(started, Started)
    assert main([*target, "caps", "show"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert missing_lines(sample(PRODUCERS, "caps show"), out, numbers=True) == [], out
    shown = out.splitlines()
    assert shown[1].split() == ["team-a", "1", "/", "7", "1", "/", "2"]
    # A tenant without caps of its own has the stack's defaults for tenants.
    assert main([*target, "caps", "show", "--tenant", "team-b"]) == ExitCode.OK
    row = capsys.readouterr().out.splitlines()[1]
    assert row.split()[:7] == ["team-b", "0", "/", "50", "0", "/", "5"]
    assert row.endswith("(the stack's defaults for tenants)")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["caps", "set", "--tenant", "new", "--per-day", "3"], "give both --per-day and"),
        (["caps", "set", "--tenant", "Team A", "--per-day", "3"], "--tenant must be a tenant"),
        (["caps", "set", "--per-day", "3"], "caps set needs --tenant"),
    ],
)
def test_caps_refuse_what_they_cannot_do_and_write_nothing(
    stack: Stack, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "new")
    assert main(["--region", "us-east-1", "--stack", "songs", *argv]) == ExitCode.USAGE
    assert says in capsys.readouterr().err
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    cloud = connect("songs", region="us-east-1")
    assert TenantStore(cloud.dynamodb, spending).all() == []


def test_a_cap_of_zero_or_below_is_refused_by_the_parser() -> None:
    for argv in (["set", "--per-day", "0"], ["set", "--per-day", "-3"], ["show", "--per-day", "3"]):
        with pytest.raises(SystemExit) as refused:
            main(["caps", *argv, "--tenant", "a"])
        assert refused.value.code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("action", "says", "offers"),
    [
        ("set", "set a tenant's own caps", "--per-day"),
        ("show", "what is used of them today", "--tenant"),
    ],
)
def test_each_caps_action_has_help_of_its_own(
    action: str, says: str, offers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["caps", action, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert f"usage: lyrics-to-song caps {action}" in shown
    assert says in " ".join(shown.split())
    assert offers in shown
    assert ("--per-day" in shown) is (action == "set")


def test_spend_on_a_quiet_stack_shows_nothing_spent_and_the_whole_cap_left(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--region", "us-east-1", "--stack", "songs", "spend", "--json"]) == ExitCode.OK
    said = json.loads(capsys.readouterr().out)
    assert said["groups"] == {}
    assert said["total"]["credits"] == 0
    assert type(said["total"]["credits"]) is int, "credits as a job's cost gives them"
    assert said["today"] == [{"tenant": None, "cap": 200, "used": 0, "left": 200}]
    assert main(["--region", "us-east-1", "--stack", "songs", "spend", "--tenant", "x"]) == 2
    assert "no tenant 'x' in stack 'songs': its tenants are default" in capsys.readouterr().err
    register(stack, "x")
    assert main(["--region", "us-east-1", "--stack", "songs", "spend", "--tenant", "x"]) == 2
    assert "tenant 'x' has no caps and spent nothing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["spend", "--month", "2026-13"],
        ["spend", "--tenant", "Team A"],
        ["spend", "--since", "tomorrow"],
    ],
)
def test_spend_checks_what_it_is_asked_before_connecting(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]
    assert main([*nowhere, *argv]) == ExitCode.USAGE
    assert "error:" in capsys.readouterr().err


def test_a_tenant_default_callback_is_set_shown_and_removed(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "shop")
    target = ["--region", "us-east-1", "--stack", "songs", "--json", "callback"]
    url = "https://shop.example.com/hooks/songs"
    assert main([*target, "set", "--tenant", "shop", "--url", url]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"tenant": "shop", "callback_url": url}
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    store = TenantStore(stack.client("dynamodb"), spending)
    assert store.terms("shop").callback_url == url, "where the submit function reads it"
    assert store.get("shop") is None, "no caps come with it"
    assert main([*target, "unset", "--tenant", "shop"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["callback_url"] is None
    assert store.terms("shop").callback_url is None


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["callback", "set", "--tenant", "shop", "--url", "http://shop.example.com/"], "https"),
        (["callback", "set", "--tenant", "Shop!", "--url", "https://x.example/"], "tenant name"),
        (
            [
                "submit",
                "--prompt",
                "p",
                "--lyrics",
                "l",
                "--callback-url",
                "https://u:p@x.example/",
            ],
            "carries credentials",
        ),
        (
            ["submit", "--prompt", "p", "--lyrics", "l", "--callback-url", "https://10.0.0.8/"],
            "private",
        ),
    ],
)
def test_callbacks_the_stack_would_refuse_are_refused_before_anything_is_sent(
    stack: Stack, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--region", "us-east-1", "--stack", "songs", *argv]) == ExitCode.USAGE
    assert says in capsys.readouterr().err
    queued = stack.client("sqs").receive_message(
        QueueUrl=stack.jobs_queue_url, MaxNumberOfMessages=10
    )
    assert all("s3:TestEvent" in m["Body"] for m in queued.get("Messages", [])), "nothing sent"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["set", "--tenant", "shop"], "the following arguments are required: --url"),
        (["show", "--tenant", "shop", "--url", "https://x.example/"], "unrecognized arguments"),
        (["set", "--help"], "set a tenant's default callback_url"),
        (["unset", "--help"], "remove a tenant's default callback_url"),
    ],
)
def test_each_callback_action_takes_its_own_options(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["callback", *argv])
    assert done.value.code == (0 if "--help" in argv else ExitCode.USAGE)
    said = capsys.readouterr()
    assert says in " ".join((said.out + said.err).split())


def test_status_shows_the_webhook(stack: Stack, clock: FakeClock) -> None:
    from lyrics_cli import views
    from lyrics_to_song.data.webhook_rows import WebhookAttempt

    cloud = connect("songs", region="us-east-1")
    job_id = _pending_row(stack, cloud, clock)
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    table.webhook_queued(job_id, f"{job_id}_1", clock(), "{}")
    row = table.get(job_id)
    assert row is not None
    assert row.webhook is not None
    assert views.webhook_text(row) == "pending (0 attempts)"
    table.webhook_attempted(
        job_id, row.webhook, WebhookAttempt(WebhookState.DELIVERED, "200 OK", clock() + 5)
    )
    row = table.get(job_id)
    assert row is not None
    text = views.describe(row, cloud.songs_bucket)
    assert "webhook    delivered at 2027-01-15T08:00:05Z (1 attempt, last answer: 200 OK)" in text
    data = views.job_dict(row, cloud.songs_bucket)
    assert data["webhook"]["state"] == "delivered"
    assert data["webhook"]["attempts"] == 1


def test_ctrl_c_while_waiting_says_the_job_goes_on(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "wait_for", interrupted)
    job = "job-" + "b" * 32
    code = main(["--region", "us-east-1", "--stack", "songs", "wait", job])
    assert code == 130
    said = capsys.readouterr().err
    assert "interrupted: only this command stopped; a job already sent goes on" in said
    assert f"(lyrics-to-song --stack songs --region us-east-1 status {job})" in said, (
        "the hint reaches the same stack: it repeats the options the command was run with"
    )


def test_senders_are_bound_to_tenants_shown_and_unbound(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "acme", "shop")
    target = ["--region", "us-east-1", "--stack", "songs"]
    role = "AROAACMESERVICEROLE1"
    for tenant in ("acme", "shop"):
        argv = [*target, "senders", "bind", "--tenant", tenant, "--sender", f"{role}:batch-7"]
        assert main(argv) == ExitCode.OK, "a SenderId with its session binds the role"
    capsys.readouterr()
    assert main([*target, "senders", "show", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {
        "tenant_policy": "bound",
        "senders": [{"sender": role, "tenants": ["acme", "shop"]}],
    }
    unbind = [*target, "senders", "unbind", "--tenant", "shop", "--sender", role]
    assert main(unbind) == ExitCode.OK
    assert capsys.readouterr().out.splitlines() == [
        "SENDER                TENANTS",
        f"{role}  acme",
        "TenantPolicy=bound: a sender bound to none may submit for the default tenant only",
    ]
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    store = SenderStore(connect("songs", region="us-east-1").dynamodb, spending)
    assert store.tenants(role) == {"acme"}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["bind", "--tenant", "acme", "--sender", "not an id"], "--sender must be an IAM"),
        (["bind", "--tenant", "ACME", "--sender", "AROAACMESERVICEROLE1"], "--tenant must be"),
        (["unbind", "--tenant", "acme", "--sender", ""], "--sender must be an IAM"),
    ],
)
def test_senders_refuse_what_is_not_a_sender_or_a_tenant_and_write_nothing(
    stack: Stack, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = ["--region", "us-east-1", "--stack", "songs", "senders"]
    assert main([*cli, *argv]) == ExitCode.USAGE
    assert says in capsys.readouterr().err
    spending = stack.environments["SubmitFunction"]["SPENDING_TABLE_NAME"]
    assert SenderStore(connect("songs", region="us-east-1").dynamodb, spending).all() == {}


def test_webhook_secret_prints_the_secret_a_tenants_receiver_verifies_with(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "team-a")
    target = ["--region", "us-east-1", "--stack", "songs"]
    assert main([*target, "webhook", "secret", "--tenant", "team-a"]) == ExitCode.OK
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("whsec_")
    body = b'{"job_id": "job-1", "tenant": "team-a"}'
    headers = signed_headers(
        [tenant_secret(stack.webhook_secret(), "team-a")], "job-1_1", int(time.time()), body
    )
    assert StandardWebhook(printed).verify(body, headers) == json.loads(body)
    assert main([*target, "webhook", "secret", "--json"]) == ExitCode.OK
    default = json.loads(capsys.readouterr().out)
    assert default["secret"] == tenant_secret(stack.webhook_secret(), "default")
    assert stack.webhook_secret() not in default["secret"], "the root key is never printed"
    assert default["previous_secret"] is None
    assert main([*target, "webhook", "secret", "--tenant", "Team A"]) == ExitCode.USAGE


def test_webhook_rotate_gives_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "shop")
    target = ["--region", "us-east-1", "--stack", "songs", "webhook"]
    assert main([*target, "secret", "--tenant", "shop", "--json"]) == ExitCode.OK
    before = json.loads(capsys.readouterr().out)["secret"]
    rotate = [*target, "rotate", "--tenant", "shop", "--overlap-hours", "2", "--json"]
    assert main(rotate) == ExitCode.OK
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["previous_secret"] == before
    assert rotated["secret"] not in (before, tenant_secret(stack.webhook_secret(), "default"))
    assert main([*target, "secret", "--tenant", "shop"]) == ExitCode.OK
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == rotated["secret"], "the secret now, alone on its first line"
    assert f"the previous secret, {before}, signs too until " in shown[1]
    with pytest.raises(SystemExit) as refused:
        main([*target, "rotate", "--tenant", "shop", "--overlap-hours", "0"])
    assert refused.value.code == ExitCode.USAGE


def test_a_stack_without_its_spending_table_output_says_what_it_cannot_do(
    stack: Stack,
) -> None:
    from lyrics_cli import senders, webhook_tools

    older = dataclasses.replace(connect("songs", region="us-east-1"), spending_table=None)
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: senders.bindings(older), "to bind senders to tenants"),
        (lambda: webhook_tools.rotate(older, "shop", 60, time.time()), "to rotate webhook"),
        (lambda: tenant_settings.caps_in_use(older, None, time.time()), "to manage tenants' caps"),
        (
            lambda: spend_report.report(older, ["2026-11-29"], tenant=None, by="tenant", now=0),
            "to see what was spent",
        ),
    ]
    for call, what in calls:
        with pytest.raises(CliError, match=f"no SpendingTableName output.*{what}") as refused:
            call()
        assert refused.value.code is ExitCode.ENVIRONMENT


def test_a_request_id_taken_by_another_request_is_refused_before_anything_is_sent(
    stack: Stack, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = connect("songs", region="us-east-1")
    table = TaskTable(cloud.dynamodb, cloud.tasks_table)
    first = {"prompt": "rock", "lyrics": "la la la", "request_id": "order-1"}
    job_id = QueuedRequest(first, "cli").job.job_id
    asked = parse_request(first, "minimax-music").as_item()
    started = table.start(
        job_id,
        source="sqs:order-1",
        source_name="order-1",
        request_json=json.dumps(asked, sort_keys=True),
        model="minimax-music",
        now=clock(),
        lease_seconds=60,
        reservation=None,
    )
    assert isinstance(started, Started)
    args = ["--region", "us-east-1", "--stack", "songs", "submit", "--prompt", "rock"]

    assert main([*args, "--lyrics", "other words", "--request-id", "order-1"]) == ExitCode.USAGE
    said = capsys.readouterr().err
    assert f"request_id 'order-1' was used for another request (job {job_id}, SUBMITTING)" in said
    assert main([*args, "--lyrics", "la la la", "--request-id", "order-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] is False, "the same request: the same job"
    queued = cloud.sqs.receive_message(QueueUrl=cloud.jobs_queue_url, MaxNumberOfMessages=10)
    assert [m for m in queued.get("Messages", []) if "prompt" in m["Body"]] == [], "none sent"


def test_a_hint_repeats_local_and_the_options_that_reach_the_stack() -> None:
    from lyrics_cli.commands import again
    from lyrics_cli.parser import build_parser

    job = "job-" + "c" * 32
    assert again(build_parser().parse_args(["--local", "status", job])) == "lyrics-to-song --local"
    args = build_parser().parse_args(["--endpoint-url", "http://127.0.0.1:5000", "wait", job])
    assert again(args) == "lyrics-to-song --endpoint-url http://127.0.0.1:5000"


def test_wait_gives_up_at_its_timeout_not_an_interval_later(stack: Stack) -> None:
    cloud = connect("songs", region="us-east-1")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds + 0.01  # each look takes a moment too

    with pytest.raises(CliError) as gave_up:
        jobs.wait_for(
            cloud,
            "job-" + "d" * 32,
            timeout=8,
            interval=5,
            on_change=lambda row, elapsed: None,
            clock=lambda: now[0],
            sleep=sleep,
        )
    assert gave_up.value.code is ExitCode.TIMEOUT
    assert 8 <= now[0] <= 8.5, "within half a second of the timeout"


def test_stack_show_says_whether_the_key_is_set_and_key_set_puts_it_from_stdin(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ["--region", "us-east-1", "--stack", "songs"]
    assert main([*target, "stack", "show"]) == ExitCode.OK
    shown = capsys.readouterr().out
    assert "API key    NOT SET" in shown
    assert f"LyricsBucketName                   {stack.lyrics_bucket}" in shown
    assert "  MaxSongsInFlight       20" in shown

    key = "aio_" + "k" * 40
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    assert main([*target, "key", "set"]) == ExitCode.OK
    said = capsys.readouterr()
    assert key not in said.out + said.err, "never echoed"
    assert f"the API key is set in {stack.secret_arn}" in said.out
    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.secret_arn)
    assert secret["SecretString"] == key
    assert main([*target, "stack", "show", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["api_key_set"] is True

    with pytest.raises(SystemExit) as refused:  # a key on the command line: refused by argparse
        main([*target, "key", "set", key])
    assert refused.value.code == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("aio_with a space\n"))
    assert main([*target, "key", "set"]) == ExitCode.USAGE
    assert "a character an API key cannot have" in capsys.readouterr().err


def test_list_takes_a_tenant_a_time_and_a_state(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "acme")
    table = TaskTable(stack.client("dynamodb"), stack.tasks_table)
    seed_row(table, None, "job-" + "1" * 32, now=1_800_000_000, task_id="t1")
    seed_row(table, None, "job-" + "2" * 32, now=1_800_086_400, task_id="t2", tenant="acme")
    seed_row(table, None, "job-" + "3" * 32, now=1_800_000_000, task_id="t3", tenant="acme")
    target = ["--region", "us-east-1", "--stack", "songs", "list", "--json"]

    def listed(*more: str) -> list[str]:
        assert main([*target, *more]) == ExitCode.OK
        return [job["job_id"][4:5] for job in json.loads(capsys.readouterr().out)]

    everything = listed()
    assert (everything[0], sorted(everything)) == ("2", ["1", "2", "3"]), "newest first"
    assert sorted(listed("--tenant", "acme")) == ["2", "3"]
    assert listed("--tenant", "acme", "--since", "2027-01-16") == ["2"]
    assert listed("--state", "PENDING", "--since", "2027-01-15T09:00Z") == ["2"]
    assert listed("--state", "FAILED") == []
    assert main([*target, "--since", "yesterday"]) == ExitCode.USAGE
    assert "--since must be a date or a time" in capsys.readouterr().err


def test_callback_show_without_a_tenant_lists_every_tenants(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    register(stack, "acme", "shop")
    target = ["--region", "us-east-1", "--stack", "songs", "callback"]
    url = "https://hooks.acme.example/songs"
    assert main([*target, "set", "--tenant", "acme", "--url", url]) == ExitCode.OK
    capsys.readouterr()
    assert main([*target, "show", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == [
        {"tenant": "acme", "callback_url": url},
        {"tenant": "default", "callback_url": None},
        {"tenant": "shop", "callback_url": None},
    ]
    assert main([*target, "show"]) == ExitCode.OK
    assert f"acme{' ' * 30}{url}" in capsys.readouterr().out


def test_the_command_line_refuses_a_large_file_in_the_functions_words(tmp_path: Path) -> None:
    from lyrics_to_song.config import DEFAULT_LYRICS_MAX_BYTES
    from lyrics_to_song.lyric_files import too_large

    path = tmp_path / "huge.txt"
    path.write_text("la la la\n" * 8000)
    with pytest.raises(CliError) as refused:
        jobs.prepare_file(path, key=None, fields={})
    assert str(refused.value) == too_large("huge.txt", DEFAULT_LYRICS_MAX_BYTES)
    assert refused.value.code is ExitCode.USAGE


def test_every_hint_names_the_stack_as_the_command_did(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--stack", "songs", "--region", "us-east-1"]
    assert main([*target, "caps", "show", "--tenant", "nosuch"]) == ExitCode.USAGE
    said = capsys.readouterr().err
    assert (
        "(add one with `lyrics-to-song --stack songs --region us-east-1 tenants add nosuch`)"
        in (said)
    ), said
    assert main([*target, "caps", "show"]) == ExitCode.OK
    assert "`lyrics-to-song --stack songs --region us-east-1 caps set --help`" in (
        capsys.readouterr().out
    )
