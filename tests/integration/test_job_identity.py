"""One job per (tenant, request_id), and no other: no sender takes another tenant's id, a
held job is replaced by nothing but its own request, and a reused request_id with another
body is refused, unpaid, with a notice that names it."""

from __future__ import annotations

import json

import pytest

from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.data.caps import TenantCaps, TenantStore
from lyrics_to_song.data.rows import JobState
from lyrics_to_song.payment import Outcome
from lyrics_to_song.sources import QueuedRequest
from tests.integration.moto_cloud import PRODUCER, Cloud
from tests.support import song_request

STRANGER = "AIDASTRANGERUSER0001"  # bound to no tenant: it may submit for the default one


def job_of(tenant: str, request_id: str) -> str:
    return QueuedRequest({"request_id": request_id}, "m").job_for(tenant).job_id


def shops_order(**overrides: object) -> dict[str, object]:
    body = {"tenant": "shop", "request_id": "order-1", "lyrics": "[Verse]\nshop's own"}
    return song_request(**{**body, **overrides})


def test_a_default_request_named_like_a_tenants_id_cannot_take_that_job(cloud: Cloud) -> None:
    forged = song_request(request_id="'shop'/order-1", lyrics="[Verse]\nnot shop's")
    assert cloud.send(forged, sender=STRANGER) == [Outcome.SUBMITTED], "a job of its own"
    assert cloud.send(shops_order(), sender=PRODUCER) == [Outcome.SUBMITTED]

    shops = cloud.services.table.get(job_of("shop", "order-1"))
    assert shops is not None
    assert (shops.tenant, shops.state, shops.request_id) == ("shop", JobState.PENDING, "order-1")
    paid_for = [(s["lyrics"]) for s in cloud.emulator.submissions]
    assert paid_for.count("[Verse]\nshop's own") == 1, "shop's song is made, once"
    strangers = cloud.services.table.get(job_of("default", "'shop'/order-1"))
    assert strangers is not None
    assert strangers.tenant == "default"


def test_a_held_job_is_replaced_by_no_other_request(cloud: Cloud) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).put(
        TenantCaps("shop", per_day=1, in_flight=10)
    )
    assert cloud.send(song_request(tenant="shop", request_id="first")) == [Outcome.SUBMITTED]
    assert cloud.send(shops_order()) == [Outcome.HELD]
    held = cloud.services.table.get(job_of("shop", "order-1"))
    assert held is not None
    assert held.state is JobState.HELD

    # Another sender's look-alike, and shop's own id with another body: neither touches it.
    forged = song_request(request_id="'shop'/order-1", lyrics="[Verse]\nnot shop's")
    assert cloud.send(forged, sender=STRANGER) == [Outcome.SUBMITTED]
    other = shops_order(prompt="another song altogether")
    assert cloud.send(other, message_id="m2") == [Outcome.REJECTED]

    after = cloud.services.table.get(held.job_id)
    assert after is not None
    assert after.item == held.item, "the held row is as it was"
    assert [s["lyrics"] for s in cloud.emulator.submissions].count("[Verse]\nshop's own") == 0


def test_a_reused_request_id_with_another_body_is_refused_and_the_first_job_goes_on(
    cloud: Cloud,
) -> None:
    assert cloud.send(shops_order()) == [Outcome.SUBMITTED]
    first = cloud.services.table.get(job_of("shop", "order-1"))
    assert first is not None
    cloud.notifications()

    other = shops_order(lyrics="[Verse]\na different song")
    assert cloud.send(other, message_id="m2") == [Outcome.REJECTED]
    assert cloud.send(other, message_id="m3") == [Outcome.DUPLICATE], "its copies: one refusal"
    assert [s["lyrics"] for s in cloud.emulator.submissions] == ["[Verse]\nshop's own"]
    (note,) = cloud.notifications()
    assert (note["status"], note["tenant"], note["request_id"]) == ("FAILED", "shop", "order-1")
    assert note["job_id"] != first.job_id
    assert note["error"] == (
        "invalid song request: request_id 'order-1' of tenant shop was used for another "
        f"request (job {first.job_id}, PENDING); a new song needs a new request_id"
    )
    # The same body again is the duplicate it always was; the first job ends with its song.
    assert cloud.send(shops_order(), message_id="m4") == [Outcome.DUPLICATE]
    cloud.clock.advance(30)
    cloud.poll()
    done = cloud.services.table.get(first.job_id)
    assert done is not None
    assert done.state is JobState.COMPLETED
    (completed,) = cloud.notifications()
    assert (completed["job_id"], completed["request_id"]) == (first.job_id, "order-1")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (song_request(request_id="r-7", bitrate=1), "r-7"),  # invalid: refused, id kept
        (song_request(request_id="r 7"), None),  # the id itself is invalid: none to echo
    ],
)
def test_a_refusal_carries_the_request_id_as_sent(
    cloud: Cloud, body: dict[str, object], expected: str | None
) -> None:
    assert cloud.send(body) == [Outcome.REJECTED]
    (note,) = cloud.notifications()
    assert (note["status"], note["request_id"]) == ("FAILED", expected)


def test_status_and_wait_find_a_job_by_what_its_producer_knows(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    register_outputs(cloud.stack)
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name]
    assert cloud.send(shops_order()) == [Outcome.SUBMITTED]
    notice = cloud.put_lyrics("neon.txt", b"[Verse]\nneon rain")
    assert cloud.send(notice, message_id="m2") == [Outcome.SUBMITTED]
    capsys.readouterr()

    by_request = [*cli, "status", "--request-id", "order-1", "--tenant", "shop", "--json"]
    assert main(by_request) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert (shown["job_id"], shown["request_id"]) == (job_of("shop", "order-1"), "order-1")
    assert main(by_request[:-1]) == ExitCode.OK
    assert "request    order-1" in capsys.readouterr().out
    bucket = cloud.stack.lyrics_bucket
    assert main([*cli, "status", f"s3://{bucket}/neon.txt", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["source"] == f"s3://{bucket}/neon.txt"
    wait = [*cli, "wait", "--request-id", "order-1", "--tenant", "shop", "--timeout", "0.2"]
    assert main(wait) == ExitCode.TIMEOUT, "found, and still being made"
    capsys.readouterr()

    assert main([*cli, "status", "--request-id", "order-1"]) == ExitCode.NOT_FOUND, (
        "default's order-1 is another job, never made"
    )
    assert main([*cli, "status", f"s3://{bucket}/gone.txt"]) == ExitCode.NOT_FOUND
    assert main([*cli, "status", "order-1"]) == ExitCode.USAGE
    assert "a request's job: --request-id order-1 [--tenant T]" in capsys.readouterr().err
    assert main([*cli, "status", "--request-id", "x", "--tenant", "tema-a"]) == ExitCode.USAGE
    assert "did you mean team-a?" in capsys.readouterr().err


def test_a_refusal_of_a_huge_value_is_told_in_a_bounded_notice(cloud: Cloud) -> None:
    """A request_id of 240 KB of backslashes, echoed back in the reason, stays a notice
    SNS takes (and a row DynamoDB takes)."""
    assert cloud.send(song_request(request_id="\\" * 240_000)) == [Outcome.REJECTED]
    (note,) = cloud.notifications()
    assert note["status"] == "FAILED"
    assert note["request_id"] is None, "not a valid one: not echoed"
    assert len(note["error"]) < 1100
    assert note["error"].startswith("invalid song request: 'request_id' must be a string")
