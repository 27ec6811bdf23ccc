"""Tenants are accounts: only a registered one exists, and its operator adds, lists,
pauses, resumes and removes it; a stack upgraded from one without a registry keeps every
tenant it knew."""

from __future__ import annotations

import dataclasses
import json

import pytest

from local_cloud.stack import register_outputs
from lyrics_cli import jobs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode, connect
from lyrics_to_song.data.caps import TenantCaps, TenantStore
from lyrics_to_song.data.rows import JobState, Row
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.payment import Outcome
from lyrics_to_song.tenants import TenantPolicy
from tests.integration.moto_cloud import PRODUCER, Cloud
from tests.integration.test_held_jobs import take_reminders
from tests.support import seed_row, song_request


@pytest.fixture
def cli(cloud: Cloud) -> list[str]:
    register_outputs(cloud.stack)
    return ["--region", "us-east-1", "--stack", cloud.stack.name]


def registry(cloud: Cloud) -> TenantRegistry:
    return TenantRegistry(cloud.services.budget.client, cloud.services.budget.table_name)


def open_to_all(cloud: Cloud, *, from_key: bool = False) -> None:
    settings = dataclasses.replace(
        cloud.services.settings, tenant_policy=TenantPolicy.OPEN, tenant_from_key=from_key
    )
    cloud.services = dataclasses.replace(cloud.services, settings=settings)


REFUSED = (
    "invalid song request: tenant tema-a is not a tenant of this stack (its operator adds "
    "one with `lyrics-to-song tenants add`)"
)


def test_a_request_naming_an_unknown_tenant_is_refused_unpaid_with_the_reason(
    cloud: Cloud,
) -> None:
    open_to_all(cloud)
    assert cloud.send(song_request(tenant="tema-a", request_id="r1")) == [Outcome.REJECTED]
    row = cloud.only_row()
    assert (row.state, row.tenant, row.error) == (JobState.FAILED, "default", REFUSED)
    assert cloud.emulator.submissions == []
    (note,) = cloud.notifications()
    assert (note["_tenant_attribute"], note["request_id"]) == ("default", "r1")


@pytest.mark.parametrize(
    ("key", "metadata", "from_key"),
    [("tema-a/song.txt", {}, True), ("song.txt", {"tenant": "tema-a"}, False)],
)
def test_a_lyric_file_naming_an_unknown_tenant_by_folder_or_metadata_is_refused(
    cloud: Cloud, key: str, metadata: dict[str, str], from_key: bool
) -> None:
    open_to_all(cloud, from_key=from_key)
    assert cloud.send(cloud.put_lyrics(key, b"[Verse]\nla la", Metadata=metadata)) == [
        Outcome.REJECTED
    ]
    assert cloud.only_row().error == REFUSED
    assert cloud.emulator.submissions == []


@pytest.mark.parametrize(
    "argv",
    [
        ["caps", "set", "--tenant", "tema-a", "--per-day", "3", "--in-flight", "2"],
        ["caps", "show", "--tenant", "tema-a"],
        ["caps", "unset", "--tenant", "tema-a"],
        ["callback", "set", "--tenant", "tema-a", "--url", "https://a.example.com/h"],
        ["callback", "show", "--tenant", "tema-a"],
        ["senders", "bind", "--tenant", "tema-a", "--sender", "AIDASOMEPRODUCER0001"],
        ["webhook", "secret", "--tenant", "tema-a"],
        ["webhook", "rotate", "--tenant", "tema-a"],
        ["spend", "--tenant", "tema-a"],
        ["tenants", "pause", "tema-a"],
        ["tenants", "show", "tema-a"],
        ["submit", "--prompt", "p", "--lyrics", "la", "--tenant", "tema-a"],
    ],
)
def test_every_command_naming_an_unknown_tenant_exits_2_with_the_likeliest_name(
    cloud: Cloud, cli: list[str], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = cloud.stack.client("dynamodb").scan(TableName=cloud.services.budget.table_name)
    assert main([*cli, *argv]) == ExitCode.USAGE
    said = capsys.readouterr().err
    assert "no tenant 'tema-a' in stack" in said
    assert "did you mean team-a? its tenants are default, shop, team-a, team-b, team-c" in said
    after = cloud.stack.client("dynamodb").scan(TableName=cloud.services.budget.table_name)
    assert after["Items"] == before["Items"], "nothing written"


def test_a_tenant_is_added_listed_shown_paused_resumed_and_removed(
    cloud: Cloud, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli, "tenants", "add", "acme"]) == ExitCode.OK
    assert "acme    active  defaults (50/day, 5 at once)" in capsys.readouterr().out
    assert main([*cli, "tenants", "add", "acme"]) == ExitCode.USAGE
    assert "tenant 'acme' exists already" in capsys.readouterr().err
    assert main([*cli, "senders", "bind", "--tenant", "acme", "--sender", PRODUCER]) == 0
    capsys.readouterr()
    assert main([*cli, "tenants", "list", "--json"]) == ExitCode.OK
    listed = {t["tenant"]: t for t in json.loads(capsys.readouterr().out)}
    assert list(listed) == ["default", "acme", "shop", "team-a", "team-b", "team-c"]
    assert listed["acme"]["senders"] == [PRODUCER]
    assert (listed["acme"]["state"], listed["acme"]["caps"]) == ("active", None)

    # Paused: its new jobs are held, unpaid, and say why; resumed: they go at once.
    assert main([*cli, "tenants", "pause", "acme"]) == ExitCode.OK
    assert "tenant acme paused" in capsys.readouterr().out
    assert cloud.send(song_request(tenant="acme", request_id="a1")) == [Outcome.HELD]
    held = cloud.only_row()
    assert held.state is JobState.HELD
    assert held.hold is not None
    assert held.hold.reason == "tenant acme is paused by the stack's operator"
    assert cloud.emulator.submissions == []
    assert take_reminders(cloud) == [], "it waits in line, unpaid, with no reminder"
    assert main([*cli, "tenants", "remove", "acme"]) == ExitCode.USAGE, "a job waits"
    assert "tenant 'acme' has 1 job(s) under way (held" in capsys.readouterr().err
    assert main([*cli, "tenants", "resume", "acme"]) == ExitCode.OK
    assert "tenant acme resumed: its 1 waiting job(s) start as places free" in (
        capsys.readouterr().out
    )
    (nudge,) = take_reminders(cloud, '"admit"')
    assert json.loads(nudge) == {"admit": "tenant acme resumed"}
    assert cloud.send(nudge, sender=None) == [Outcome.SKIPPED], "it starts the waiting job"
    assert len(cloud.emulator.submissions) == 1
    started = cloud.only_row()
    assert (started.state, started.item["request_id"]) == (JobState.PENDING, {"S": "a1"}), (
        "the held job, started, keeps the request_id it came with"
    )

    # Removed only once nothing is under way; then its name is refused, its senders unbound.
    assert main([*cli, "tenants", "remove", "acme"]) == ExitCode.USAGE
    assert "tenant 'acme' has 1 job(s) under way" in capsys.readouterr().err
    cloud.clock.advance(31)
    assert cloud.poll().completed == 1
    secret_before = main([*cli, "webhook", "secret", "--tenant", "acme"])
    before = capsys.readouterr().out.strip()
    assert secret_before == ExitCode.OK
    assert main([*cli, "tenants", "remove", "acme"]) == ExitCode.OK
    assert f"tenant acme removed; senders unbound: {PRODUCER}" in capsys.readouterr().out
    assert cloud.send(song_request(tenant="acme", request_id="a2")) == [Outcome.REJECTED]
    assert cloud.services.senders.tenants(PRODUCER) == {
        "default",
        "shop",
        "team-a",
        "team-b",
        "team-c",
    }
    assert main([*cli, "tenants", "remove", "default"]) == ExitCode.USAGE
    capsys.readouterr()
    # Added again, the name signs with a secret no earlier receiver holds.
    assert main([*cli, "tenants", "add", "acme"]) == ExitCode.OK
    assert main([*cli, "webhook", "secret", "--tenant", "acme"]) == ExitCode.OK
    assert capsys.readouterr().out.strip().splitlines()[-1] != before


def test_a_tenants_cap_above_the_stacks_is_refused_and_unset_returns_it_to_the_defaults(
    cloud: Cloud, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    caps = [*cli, "caps", "set", "--tenant", "team-b", "--in-flight", "5"]
    assert main([*caps, "--per-day", "5000"]) == ExitCode.USAGE
    assert "--per-day 5000 is above the stack's own cap, 200 songs" in capsys.readouterr().err
    wide = [*cli, "caps", "set", "--tenant", "team-b", "--per-day", "5", "--in-flight", "50"]
    assert main(wide) == ExitCode.USAGE
    assert "--in-flight 50 is above the stack's own cap, 20 songs at once" in (
        capsys.readouterr().err
    )
    assert main([*caps, "--per-day", "50"]) == ExitCode.OK
    assert "team-b" in capsys.readouterr().out
    assert main([*cli, "caps", "unset", "--tenant", "team-b", "--json"]) == ExitCode.OK
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["tenant"], shown["own"]) == ("team-b", False)


def test_tenants_import_registers_every_tenant_an_earlier_version_knew(
    cloud: Cloud, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the registry any name was a tenant: named by caps, a sender's binding, or a
    job. `tenants import` registers each; the ones known by an item already worked."""
    table, budget = cloud.services.table, cloud.services.budget
    TenantStore(budget.client, budget.table_name).put(TenantCaps("capped", 5, 2))
    cloud.services.senders.bind("AIDALEGACYPRODUCER01", "bound-only")
    seed_row(table, None, "job-" + "c" * 32, now=cloud.clock.now, tenant="jobs-only")
    assert cloud.send(song_request(tenant="capped"), sender=None) == [Outcome.REJECTED], (
        "under bound, a sender bound to none may not name it, registered or not"
    )
    open_to_all(cloud)
    assert cloud.send(song_request(tenant="capped", lyrics="x")) == [Outcome.SUBMITTED]
    assert cloud.send(song_request(tenant="bound-only")) == [Outcome.REJECTED]

    assert main([*cli, "tenants", "import"]) == ExitCode.OK
    said = capsys.readouterr().out
    assert "registered 3 tenant(s): bound-only, capped, jobs-only" in said
    assert main([*cli, "tenants", "import"]) == ExitCode.OK
    assert "registered 0 tenant(s): none new" in capsys.readouterr().out
    assert cloud.send(song_request(tenant="bound-only", lyrics="y")) == [Outcome.SUBMITTED]
    capped = registry(cloud).get("capped")
    assert capped is not None
    assert capped.caps == TenantCaps("capped", 5, 2), "what it had is kept"


def test_submit_finds_the_refusal_a_request_naming_a_tenant_became(
    cloud: Cloud, cli: list[str]
) -> None:
    """So that `submit -q` never prints an id that will not exist."""
    stack = connect(cloud.stack.name, region="us-east-1")
    body = song_request(tenant="shop", request_id="r1")
    submitted = jobs.submit_request(stack, dict(body))
    waits: list[float] = []
    clock = iter(range(100))

    def look() -> object:
        return jobs.refused_for_its_tenant(
            stack, submitted, body, within=5, clock=lambda: float(next(clock)), sleep=waits.append
        )

    assert look() is None, "nothing taken within the time: the job's id stands"
    assert waits == [0.5] * 4, "it looked every half second until the time was up"
    assert cloud.send(body, sender="AIDASTRANGERUSER0001") == [Outcome.REJECTED]
    refused = look()
    assert isinstance(refused, Row)
    assert refused.job_id == submitted.refused_id
    assert "may not submit for tenant shop" in str(refused.error)
    own = song_request(tenant="shop", request_id="r2")
    taken = jobs.submit_request(stack, dict(own))
    assert cloud.send(own) == [Outcome.SUBMITTED]
    assert jobs.refused_for_its_tenant(stack, taken, own, within=5) is None, "its own job"


def test_submit_finds_the_refusal_of_a_request_naming_no_tenant_when_it_must_name_one(
    cloud: Cloud, cli: list[str]
) -> None:
    """A caller bound to several tenants, none of them default, must name one: its
    request naming none is refused, and `submit` finds that refusal too."""
    stack = connect(cloud.stack.name, region="us-east-1")
    caller = stack.client("sts").get_caller_identity()["UserId"]
    body = song_request(request_id="r1")
    submitted = jobs.submit_request(stack, dict(body))
    looked: list[float] = []
    never = jobs.refused_for_its_tenant(stack, submitted, body, within=5, sleep=looked.append)
    assert (never, looked) == (None, []), "bound to none: it submits for default, never refused"

    for tenant in ("team-b", "team-c"):
        cloud.services.senders.bind(caller, tenant)
    assert cloud.send(body, sender=caller) == [Outcome.REJECTED]
    refused = jobs.refused_for_its_tenant(stack, submitted, body, within=5)
    assert isinstance(refused, Row)
    assert "must name one as 'tenant'" in str(refused.error)
