"""A job a cap holds is a job: its row says HELD, and the command line shows it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.data.caps import TenantCaps, TenantStore, day_of
from lyrics_to_song.data.items import Value, item_of
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.payment import Outcome
from lyrics_to_song.song_request import parse_request
from lyrics_to_song.sources import QueuedRequest, held_retry
from tests.docs_text import ROOT
from tests.integration.moto_cloud import Cloud
from tests.samples import missing_lines, sample
from tests.support import song_request

PRODUCERS = ROOT / "docs" / "producers.md"


def take_reminders(cloud: Cloud, marker: str = '"held"') -> list[str]:
    """The messages on the jobs queue whose bodies hold `marker` (the reminders of the
    holds an earlier version made, by default), delayed ones included (moto delays in
    real time); the queue is emptied."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues[
        cloud.stack.jobs_queue_url.rsplit("/", 1)[1]
    ]
    bodies = [m.body for m in queue._messages if marker in m.body]
    queue._messages.clear()
    return bodies


def test_a_job_held_by_its_tenants_daily_cap_is_shown_then_made_the_next_day(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).put(
        TenantCaps("team-a", per_day=1, in_flight=10)
    )
    register_outputs(cloud.stack)
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name]
    assert cloud.send(song_request(tenant="team-a", request_id="first")) == [Outcome.SUBMITTED]
    assert cloud.send(song_request(tenant="team-a", request_id="second", lyrics="la")) == [
        Outcome.HELD
    ]
    (held,) = [row for row in cloud.rows() if row.state is JobState.HELD]
    reason = f"tenant team-a is at its daily cap, 1 of 1 songs for {day_of(cloud.clock.now)} (UTC)"

    assert main([*cli, "status", held.job_id]) == ExitCode.OK
    status = capsys.readouterr().out
    assert missing_lines(sample(PRODUCERS, "held"), status, numbers=True) == [], status
    assert "state      HELD" in status
    assert f"held       {reason}; in its tenant's line since " in status
    assert main([*cli, "status", held.job_id, "--json"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["ended"]) == ("HELD", False)
    assert shown["held"]["reason"] == reason
    assert shown["held"]["cap"] == "tenant daily"
    assert shown["cost"]["status"] == "not charged"

    assert main([*cli, "list", "--json"]) == ExitCode.OK
    listed = {job["job_id"]: job for job in json.loads(capsys.readouterr().out)}
    assert listed[held.job_id]["state"] == "HELD"
    assert main([*cli, "list", "--status", "HELD"]) == ExitCode.OK
    assert f"held: {reason}" in capsys.readouterr().out

    wait = [*cli, "wait", held.job_id, "--timeout", "600", "--interval", "0.1"]
    assert main(wait) == ExitCode.TIMEOUT, "held to the next day: wait says so at once"
    said = capsys.readouterr().err
    assert f"HELD: {reason}" in said
    assert f"job {held.job_id} is held to another UTC day or month" in said
    assert "wait through with --through-caps" in said
    through = [*wait[:-4], "--timeout", "0.3", "--interval", "0.1", "--through-caps"]
    assert main(through) == ExitCode.TIMEOUT, "asked to wait through: until its timeout"
    assert "gave up after 0 s" in capsys.readouterr().err

    assert main([*cli, "spend", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["held_jobs"] == {"team-a": 1}

    assert take_reminders(cloud) == [], "it waits in line: no reminder of its own"
    cloud.clock.advance(86_400)  # the next day: the tenant's cap has room again
    report = cloud.watch()  # the first scheduled run of the day starts it
    assert (report.admitted, report.completed) == (1, 2)
    capsys.readouterr()  # the functions' log lines
    assert main([*cli, "status", held.job_id, "--json"]) == ExitCode.OK
    done = json.loads(capsys.readouterr().out)
    assert (done["state"], done["held"]) == ("COMPLETED", None)
    assert done["created_at"] == shown["created_at"], "a job's age counts from its first hold"
    assert len(cloud.emulator.submissions) == 2, "one paid submission each"
    notes = cloud.notifications()
    assert sorted(n["status"] for n in notes) == ["COMPLETED", "COMPLETED"]
    assert main([*cli, "spend", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["held_jobs"] == {}


def previous_held_row(cloud: Cloud, request_id: str, since: float) -> str:
    """A HELD row as the previous version wrote it (no line: a reminder on the queue,
    token "tok"); its job id."""
    body = song_request(request_id=request_id, lyrics=f"{request_id} la")
    parsed = parse_request(body, cloud.services.settings.model)
    request_json = json.dumps(parsed.as_item(), ensure_ascii=False, sort_keys=True)
    job_id = QueuedRequest(body, "m").job_for("default").job_id
    previous: dict[str, Value] = {
        "job_id": job_id,
        "state": "HELD",
        "source": f"sqs:{request_id}",
        "source_name": request_id,
        "request_json": request_json,
        "model": parsed.model,
        "tenant": "default",
        "created_at": since,
        "held_cap": "in-flight",
        "held_reason": "the stack is at its in-flight cap",
        "held_until": since + 60,
        "held_since": since,
        "held_token": "tok",
        "open_shard": "HELD",
        "due_at": since + 60,
    }
    cloud.services.table.client.put_item(
        TableName=cloud.services.table.table_name, Item=item_of(previous)
    )
    return job_id


def test_a_job_held_before_the_line_joins_it_at_its_first_hold_when_others_wait(
    cloud: Cloud,
) -> None:
    """The previous version's reminder comes after the update, while later jobs of its
    tenant wait in line: it joins the line at its own place, ahead of them."""
    cloud.services.budget = dataclasses.replace(cloud.services.budget, in_flight=1)
    first_held = cloud.clock.now - 100
    old = previous_held_row(cloud, "held-before", first_held)
    assert cloud.send(song_request(request_id="running")) == [Outcome.SUBMITTED]
    assert cloud.send(song_request(request_id="later", lyrics="later")) == [Outcome.HELD]
    assert cloud.send(held_retry(old, "tok"), sender=None) == [Outcome.HELD]
    line = [row.job_id for row in cloud.services.table.waiting("default")]
    assert line[0] == old, "first in line: it was held first"
    assert len(line) == 2
    cloud.clock.advance(31)
    assert cloud.watch().admitted >= 1
    started = cloud.services.table.get(old)
    assert started is not None
    assert started.state is not JobState.HELD
    assert started.created_at == first_held, "its age counts from its first hold"


def test_a_job_held_by_the_previous_version_starts_at_its_reminder_as_before(
    cloud: Cloud,
) -> None:
    """Its row has no `request_id` of its own (the previous version kept none): its
    reminder starts it, and its notice still names the request_id its source gives."""
    job_id = previous_held_row(cloud, "held-before", cloud.clock.now)
    assert "request_id" not in cloud.services.table.get(job_id).item  # type: ignore[union-attr]
    assert cloud.send(held_retry(job_id, "tok"), sender=None) == [Outcome.SUBMITTED]
    cloud.clock.advance(31)
    assert cloud.poll().completed == 1
    (note,) = cloud.notifications()
    assert (note["job_id"], note["request_id"]) == (job_id, "held-before")
