"""A tenant's monthly budget in credits, and the caps a tenant has without its own: the
defaults for tenants beside `default`, the stack's alone for `default`."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.data.caps import TenantCaps, TenantStore
from lyrics_to_song.data.monthly import credits_in, month_of
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.errors import RetryLater
from lyrics_to_song.payment import Outcome
from tests.integration.moto_cloud import Cloud
from tests.integration.test_held_jobs import take_reminders
from tests.support import song_request


def budget(cloud: Cloud, credits: int) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).put(
        TenantCaps("team-a", per_day=10, in_flight=10, monthly_credits=credits)
    )


def spent(cloud: Cloud) -> int:
    table = cloud.services.budget.table_name
    return credits_in(cloud.services.budget.client, table, month_of(cloud.clock.now), "team-a")


def test_a_monthly_budget_holds_the_job_that_would_pass_it_until_the_month_turns(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.clock.now = time.time()  # the command line reads this month by the wall clock
    budget(cloud, 60)  # two songs of 30 credits
    for n in (1, 2):
        assert cloud.send(song_request(tenant="team-a", request_id=f"r{n}")) == [Outcome.SUBMITTED]
    assert cloud.send(song_request(tenant="team-a", request_id="r3")) == [Outcome.HELD]
    (held,) = [row for row in cloud.rows() if row.state is JobState.HELD]
    month = month_of(cloud.clock.now)
    assert held.hold is not None
    assert held.hold.reason == (
        f"tenant team-a is at its monthly budget, 60 of 60 credits for {month} (UTC)"
    )
    assert len(cloud.emulator.submissions) == 2
    assert cloud.send(song_request(request_id="d1")) == [Outcome.SUBMITTED], "others go on"

    register_outputs(cloud.stack)
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name]
    capsys.readouterr()  # the functions' log lines
    assert main([*cli, "caps", "show", "--tenant", "team-a", "--json"]) == ExitCode.OK
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["monthly_credits"], shown["credits_this_month"]) == (60, 60)
    assert main([*cli, "spend", "--tenant", "team-a"]) == ExitCode.OK
    assert "this month: tenant team-a 60 of 60 credits, 0 left" in capsys.readouterr().out

    assert take_reminders(cloud) == [], "it waits in line"
    today = datetime.fromtimestamp(cloud.clock.now, UTC)
    cloud.clock.now = (today.replace(day=28) + timedelta(days=4)).replace(day=1).timestamp()
    assert cloud.watch().admitted == 1, "the month's first scheduled run starts it"
    assert spent(cloud) == 30, "the new month counts from nothing"


def test_a_submission_the_api_surely_refused_gives_its_credits_back(cloud: Cloud) -> None:
    budget(cloud, 30)
    cloud.emulator.faults.rate_limit = 10  # more than the client's tries
    with pytest.raises(RetryLater):
        cloud.send(song_request(tenant="team-a", request_id="r1"))
    assert spent(cloud) == 0, "nothing was paid: the budget is whole again"
    cloud.emulator.faults.rate_limit = 0
    assert cloud.send(song_request(tenant="team-a", request_id="r1")) == [Outcome.SUBMITTED]
    assert spent(cloud) == 30


def test_tenants_without_caps_of_their_own_get_the_defaults_and_default_the_stacks(
    cloud: Cloud,
) -> None:
    budget_with_defaults = dataclasses.replace(cloud.services.budget, tenant_defaults=(5, 1))
    cloud.services = dataclasses.replace(cloud.services, budget=budget_with_defaults)
    assert cloud.send(song_request(tenant="team-b", request_id="b1")) == [Outcome.SUBMITTED]
    assert cloud.send(song_request(tenant="team-b", request_id="b2")) == [Outcome.HELD]
    for n in (1, 2, 3):
        assert cloud.send(song_request(request_id=f"d{n}")) == [Outcome.SUBMITTED], (
            "default is bounded by the stack's caps alone"
        )
