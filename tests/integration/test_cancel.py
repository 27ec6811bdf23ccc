"""Cancel: a job that waits in line ends CANCELLED, unpaid, announced once; a paid one
cannot be cancelled (docs/producers.md: Cancelling a job)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from local_cloud.receiver import WebhookReceiver
from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.admission import admit
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.payment import Outcome
from lyrics_to_song.resubmit import resubmit
from tests.integration.moto_cloud import Cloud
from tests.integration.test_admission import row, send
from tests.integration.test_spending import caps, failed_job
from tests.integration.test_webhooks import queued_webhooks


@pytest.fixture
def receiver(cloud: Cloud) -> Iterator[WebhookReceiver]:
    found = WebhookReceiver(cloud.stack.webhook_secret())
    yield found
    found.stop()


def one_place(cloud: Cloud) -> None:
    cloud.services.budget = dataclasses.replace(cloud.services.budget, in_flight=1)


def cli(cloud: Cloud) -> list[str]:
    register_outputs(cloud.stack)
    return ["--region", "us-east-1", "--stack", cloud.stack.name]


def test_a_producer_cancels_its_waiting_job_unpaid_and_it_is_announced_once(
    cloud: Cloud, receiver: WebhookReceiver
) -> None:
    one_place(cloud)
    send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1, callback_url=receiver.url)
    cloud.notifications()
    cancel = {"cancel": waiting, "tenant": "team-a"}
    assert cloud.send(cancel) == [Outcome.CANCELLED]
    assert cloud.send(cancel) == [Outcome.SKIPPED], "a redelivered copy does nothing"
    ended = row(cloud, waiting)
    assert ended.state is JobState.CANCELLED
    assert (
        ended.error
        == "cancelled by a producer of tenant team-a while it waited in line: nothing was paid"
    )
    assert ended.charge.status == "not charged"
    assert (ended.line_at, ended.hold) == (None, None), "out of its line"
    assert len(cloud.emulator.submissions) == 1, "only the first job was paid"
    (note,) = cloud.notifications()
    assert (note["job_id"], note["status"]) == (waiting, "CANCELLED")
    (hook,) = [m for m in queued_webhooks(cloud) if m.job_id == waiting]
    webhook = row(cloud, waiting).webhook
    assert webhook is not None
    assert webhook.delivery_id == hook.delivery_id, "its webhook is queued, once"
    cloud.clock.advance(31)
    cloud.poll()
    assert waiting not in {n["job_id"] for n in cloud.notifications()}, "announced once"
    assert admit(cloud.services).started == 0, "nothing of the tenant waits any more"
    assert cloud.services.line.read() == {}


def test_a_producer_cannot_cancel_another_tenants_job(cloud: Cloud) -> None:
    one_place(cloud)
    send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1)
    assert cloud.send({"cancel": waiting, "tenant": "team-b"}) == [Outcome.SKIPPED]
    assert cloud.send({"cancel": waiting, "tenant": "team-a"}, sender="AIDASTRANGER0000001") == [
        Outcome.SKIPPED
    ], "a sender not bound to team-a"
    assert row(cloud, waiting).state is JobState.HELD


def test_the_operator_cancels_a_waiting_job_and_its_notice_goes_out_once(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    one_place(cloud)
    running = send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1)
    args = cli(cloud)
    assert main([*args, "cancel", waiting]) == ExitCode.OK
    assert "CANCELLED, unpaid" in capsys.readouterr().out
    assert row(cloud, waiting).state is JobState.CANCELLED
    assert main([*args, "cancel", waiting]) == ExitCode.ENDED_BADLY
    assert "has ended (CANCELLED): there is nothing to cancel" in capsys.readouterr().err

    cloud.notifications()
    report = cloud.poll()  # the next poll run announces it
    assert report.notified >= 1
    statuses = {n["job_id"]: n["status"] for n in cloud.notifications()}
    assert statuses[waiting] == "CANCELLED"
    cloud.poll()
    assert waiting not in {n["job_id"] for n in cloud.notifications()}, "once"
    assert main([*args, "cancel", running]) == ExitCode.ENDED_BADLY
    assert "the API has taken it (or is taking it) and it is paid" in capsys.readouterr().err
    assert row(cloud, running).state is JobState.PENDING, "a paid job goes on"


def test_cancel_held_ends_every_waiting_job_of_one_tenant_alone(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    one_place(cloud)
    send(cloud, "team-a", 0)
    mine = [send(cloud, "team-a", n) for n in range(1, 4)]
    theirs = send(cloud, "team-b", 0)
    args = cli(cloud)
    capsys.readouterr()
    assert main([*args, "cancel", "--tenant", "team-a", "--held", "--json"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert sorted(shown["cancelled"]) == sorted(mine)
    assert {row(cloud, j).state for j in mine} == {JobState.CANCELLED}
    assert row(cloud, theirs).state is JobState.HELD
    cloud.clock.advance(31)
    assert cloud.watch().admitted == 1, "team-b's job alone starts when the place frees"
    assert row(cloud, theirs).state is not JobState.HELD
    assert len(cloud.emulator.submissions) == 2
    assert main([*args, "cancel", "--held"]) == ExitCode.USAGE


def test_a_job_started_first_is_not_cancelled(cloud: Cloud) -> None:
    one_place(cloud)
    send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1)
    before = row(cloud, waiting)
    cloud.clock.advance(31)
    cloud.poll()
    assert admit(cloud.services).started == 1  # the place went to it first
    now = cloud.clock.now
    assert cloud.services.table.cancel(before, reason="late", now=now, announce_by=now) is None
    assert row(cloud, waiting).state is JobState.PENDING


def test_a_waiting_resubmission_is_withdrawn_unpaid_its_job_keeping_its_ending(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    caps(cloud, per_day=1)
    job_id = failed_job(cloud)  # the day's one song
    ended = cloud.only_row()
    cloud.notifications()
    for cancel in ("operator", "producer"):
        assert resubmit(cloud.services, job_id, "default") is Outcome.HELD
        if cancel == "operator":
            capsys.readouterr()
            assert main([*cli(cloud), "cancel", job_id]) == ExitCode.OK
            said = capsys.readouterr().out
            assert f"{job_id}  its resubmission withdrawn, unpaid; it stays FAILED" in said
        else:
            assert cloud.send({"cancel": job_id, "tenant": "default"}) == [Outcome.CANCELLED]
        after = cloud.only_row()
        assert (after.state, after.error, after.resubmits) == (ended.state, ended.error, 0)
        assert (after.line_at, after.hold) == (None, None), "out of its line"
    cloud.clock.advance(86_400)
    assert admit(cloud.services).started == 0, "nothing waits"
    assert cloud.notifications() == [], "nothing new announced: its ending was"
    assert len(cloud.emulator.submissions) == 1, "nothing paid again"
