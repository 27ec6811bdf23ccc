"""Tenants bound to who sent the job (TenantPolicy=bound, the template's default): a
producer spends its own tenant's caps, never another's."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lyrics_to_song.data.rows import JobState
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.sources import QueuedRequest
from lyrics_to_song.tenants import TenantPolicy
from tests.integration.moto_cloud import Cloud
from tests.support import s3_notification, song_request

ACME = "AROAACMESERVICEROLE1"  # a role's unique id: SQS reports it with the session
SHOP = "AIDASHOPPRODUCERUSER"


@pytest.fixture
def bound(cloud: Cloud) -> Cloud:
    TenantRegistry(cloud.services.budget.client, cloud.services.budget.table_name).add("acme", 0)
    cloud.services.senders.bind(ACME, "acme")
    cloud.services.senders.bind(SHOP, "shop")
    return cloud


def test_a_sender_bound_to_acme_naming_shop_is_refused_unpaid_with_the_reason(
    bound: Cloud,
) -> None:
    body = song_request(tenant="shop", request_id="order-1", callback_url=None)
    assert bound.send(body, sender=f"{ACME}:acme-batch") == ["rejected"]
    row = bound.only_row()
    assert (row.state, row.tenant) == (JobState.FAILED, "acme"), "acme hears of its refusal"
    assert row.error == (
        "invalid song request: sender AROAACMESERVICEROLE1:acme-batch may not submit for "
        "tenant shop; it may for acme (TenantPolicy=bound)"
    )
    assert bound.emulator.submissions == []
    (note,) = bound.notifications()
    assert (note["status"], note["_tenant_attribute"]) == ("FAILED", "acme")

    # The refusal did not take shop's id: shop's own order-1 is made.
    assert bound.send(body, sender=SHOP) == ["submitted"]
    shop_job = QueuedRequest(body, "m").job_for("shop").job_id
    assert bound.services.table.get(shop_job).tenant == "shop"  # type: ignore[union-attr]
    assert len(bound.emulator.submissions) == 1


def test_a_bound_sender_naming_no_tenant_sends_for_its_own(bound: Cloud) -> None:
    assert bound.send(song_request(request_id="r1"), sender=f"{ACME}:any-session") == ["submitted"]
    assert bound.only_row().tenant == "acme", "not the default tenant: no escape from its caps"


def test_an_unbound_sender_may_submit_for_the_default_tenant_only(bound: Cloud) -> None:
    stranger = "AIDASTRANGERUSER0001"
    assert bound.send(song_request(request_id="r1"), sender=stranger) == ["submitted"]
    assert bound.send(song_request(request_id="r2", tenant="acme"), sender=stranger) == ["rejected"]
    assert bound.send(song_request(request_id="r3", tenant="acme"), sender=None) == ["rejected"]
    tenants = sorted((row.tenant, row.state.value) for row in bound.rows())
    assert tenants == [("default", "FAILED"), ("default", "FAILED"), ("default", "PENDING")]
    assert len(bound.emulator.submissions) == 1


def test_under_open_an_unbound_sender_names_any_tenant_as_before(bound: Cloud) -> None:
    settings = dataclasses.replace(bound.services.settings, tenant_policy=TenantPolicy.OPEN)
    bound.services = dataclasses.replace(bound.services, settings=settings)
    assert bound.send(song_request(tenant="shop"), sender="AIDASTRANGERUSER0001") == ["submitted"]
    assert bound.only_row().tenant == "shop"


def test_unbinding_a_sender_takes_its_tenant_away(bound: Cloud) -> None:
    bound.services.senders.unbind(ACME, "acme")
    assert bound.services.senders.tenants(ACME) == frozenset()
    assert bound.send(song_request(tenant="acme"), sender=ACME) == ["rejected"]
    bindings = bound.services.senders.all()
    assert ACME not in bindings
    assert bindings[SHOP] == {"shop"}


def test_a_tenant_resubmitting_another_tenants_job_is_refused(bound: Cloud) -> None:
    bound.emulator.faults.fail_tasks = True
    assert bound.send(song_request(request_id="r1"), sender=SHOP) == ["submitted"]
    bound.clock.advance(31)
    assert bound.poll().failed == 1
    bound.notifications()
    bound.emulator.faults.fail_tasks = False
    job_id = bound.only_row().job_id

    for sender, message in [
        (ACME, {"resubmit": job_id}),
        (ACME, {"resubmit": job_id, "tenant": "shop"}),
        ("AIDASTRANGERUSER0001", {"resubmit": job_id}),
    ]:
        assert bound.send(json.dumps(message), sender=sender) == ["skipped"]
    assert bound.only_row().state is JobState.FAILED
    assert len(bound.emulator.submissions) == 1, "nobody re-paid shop's job"

    assert bound.send({"resubmit": job_id}, sender=SHOP) == ["submitted"]
    assert len(bound.emulator.submissions) == 2


def test_a_request_the_submit_function_put_back_before_jobs_were_held_keeps_its_tenant(
    bound: Cloud,
) -> None:
    """Its own role sent it, which only it can: the tenant is the one its producer named."""
    own = bound.services.settings.own_sender
    assert own is not None, "the template gives the submit function its role's id"
    body = song_request(tenant="acme", request_id="waited-on-a-cap")
    assert bound.send(body, sender=f"{own}:lyrics-to-song-submit") == ["submitted"]
    assert bound.only_row().tenant == "acme"
    assert bound.send(song_request(tenant="acme"), sender="AROAANOTHERROLE00001") == ["rejected"], (
        "any other role is bound as before"
    )


def test_a_forged_lyric_file_notification_makes_nothing_under_another_tenant(
    bound: Cloud,
) -> None:
    """Only the bucket's own notifications, on the queue S3 alone may send to, make
    lyric-file jobs: one put on the jobs queue is refused on its sender's own side."""
    settings = dataclasses.replace(bound.services.settings, tenant_from_key=True)
    bound.services = dataclasses.replace(bound.services, settings=settings)
    real = bound.put_lyrics("shop/real.txt", b"[Verse]\nshop's own song")
    made_up = s3_notification(bound.stack.lyrics_bucket, "shop/never-uploaded.txt")
    for forged in (made_up, real):
        assert bound.send(forged, sender=f"{ACME}:batch", from_bucket=False) == ["rejected"]
    rows = bound.rows()
    assert {(row.tenant, row.state) for row in rows} == {("acme", JobState.FAILED)}
    assert all("only the lyrics bucket's own notifications" in str(row.error) for row in rows)
    notes = bound.notifications()
    assert [n["_tenant_attribute"] for n in notes] == ["acme", "acme"], "never shop's side"
    assert bound.emulator.submissions == []

    assert bound.send(real, message_id="from-s3") == ["submitted"], "the bucket's own: made"
    assert [row.tenant for row in bound.rows() if row.state is JobState.PENDING] == ["shop"]
