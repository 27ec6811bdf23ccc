"""What each job cost and whose it was: recorded on the row, told by every notice."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from local_cloud.stack import register_outputs
from lyrics_cli import spend_report, views
from lyrics_cli.stack_target import CliError, ExitCode, connect
from lyrics_to_song.data.caps import TenantCaps, TenantStore, day_of
from lyrics_to_song.data.rows import JobState, Price
from lyrics_to_song.data.task_table import Started
from lyrics_to_song.payment import Outcome
from lyrics_to_song.tenants import TenantPolicy
from tests.docs_text import README, ROOT
from tests.integration.moto_cloud import Cloud
from tests.samples import json_sample, key_paths, missing_lines, sample
from tests.support import song_request

PRODUCERS = ROOT / "docs" / "producers.md"
NOTIFICATIONS = ROOT / "docs" / "notifications.md"

COST_NOTHING = {
    "status": "not charged",
    "credits": 0,
    "usd": 0.0,
    "maybe_credits": 0,
    "maybe_usd": 0.0,
}


def _price(cloud: Cloud, credits: int, usd: float) -> None:
    settings = dataclasses.replace(cloud.services.settings, price=Price(credits, usd))
    cloud.services = dataclasses.replace(cloud.services, settings=settings)


def _finish(cloud: Cloud) -> None:
    cloud.clock.advance(31)
    cloud.poll()


def test_a_completed_song_costs_its_price_and_every_notice_says_so(cloud: Cloud) -> None:
    job_id = cloud.submit(tenant="team-a")
    _finish(cloud)
    (note,) = cloud.notifications()
    assert note["cost"] == {
        "status": "charged",
        "credits": 30,
        "usd": 0.3,
        "maybe_credits": 0,
        "maybe_usd": 0.0,
    }
    assert note["tenant"] == note["_tenant_attribute"] == "team-a"
    (event,) = cloud.events()
    assert (event["detail"]["tenant"], event["detail"]["cost"]) == ("team-a", note["cost"])
    bucket, _, key = note["song"]["sidecar_s3_uri"].removeprefix("s3://").partition("/")
    sidecar = json.loads(cloud.stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert (sidecar["tenant"], sidecar["cost"]) == ("team-a", note["cost"])
    # What the pages show of them is what they hold: every key, and no other.
    sent = key_paths({k: v for k, v in note.items() if not k.startswith("_")})
    assert key_paths(json_sample(NOTIFICATIONS, "notice")) == sent
    assert key_paths(json_sample(README, "notice")) <= sent, "the README's shortened one"
    # The page's sidecar is the default tenant's, whose request names no tenant.
    shown = key_paths(json_sample(NOTIFICATIONS, "sidecar"))
    assert shown == key_paths(sidecar) - {"request.tenant"}
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.price == Price(30, 0.3)


def test_bad_input_and_refusals_cost_nothing(cloud: Cloud) -> None:
    assert cloud.send(song_request(bitrate=1, tenant="team-b")) == [Outcome.REJECTED]
    cloud.emulator.faults.server_error = 1
    cloud.emulator.faults.server_error_status = 400  # the API refused it: nothing started
    assert cloud.send(song_request(prompt="refused", tenant="team-b")) == [Outcome.REJECTED]
    notes = cloud.notifications()
    assert [(n["status"], n["tenant"], n["cost"]) for n in notes] == [
        ("FAILED", "team-b", COST_NOTHING),
        ("FAILED", "team-b", COST_NOTHING),
    ]


def test_an_unknown_outcome_is_maybe_charged_and_a_resubmission_adds_its_own_price(
    cloud: Cloud,
) -> None:
    cloud.emulator.faults.server_error = 1
    cloud.emulator.faults.server_error_status = 502  # may have been taken and billed
    assert cloud.send(song_request(request_id="r-1")) == [Outcome.UNKNOWN]
    (note,) = cloud.notifications()
    assert note["cost"] == {
        "status": "maybe charged",
        "credits": 0,
        "usd": 0.0,
        "maybe_credits": 30,
        "maybe_usd": 0.3,
    }
    _price(cloud, 40, 0.4)  # the price changed before the owner resubmitted
    assert cloud.send({"resubmit": note["job_id"]}) == [Outcome.SUBMITTED]
    _finish(cloud)
    (again,) = cloud.notifications()
    assert again["status"] == "COMPLETED"
    assert again["cost"] == {
        "status": "charged",
        "credits": 40,
        "usd": 0.4,
        "maybe_credits": 30,
        "maybe_usd": 0.3,
    }, "the first submission keeps its price and its doubt"


def test_a_submission_cut_short_is_maybe_charged_when_the_poll_settles_it(cloud: Cloud) -> None:
    job_id = "job-" + "f" * 32
    started = cloud.services.table.start(
        job_id,
        source="sqs:cut",
        source_name="cut",
        request_json="{}",
        model="minimax-music",
        now=cloud.clock(),
        lease_seconds=120,
        reservation=None,
        tenant="team-c",
        price=Price(30, 0.3),
    )
    assert isinstance(started, Started)
    cloud.clock.advance(121)  # the submit function died during its API call
    cloud.poll()
    (note,) = cloud.notifications()
    assert (note["status"], note["tenant"]) == ("UNKNOWN", "team-c")
    assert note["cost"]["status"] == "maybe charged"
    assert note["cost"]["maybe_credits"] == 30


@pytest.mark.parametrize(
    ("key", "metadata", "rules", "tenant"),
    [
        ("team-a/song.txt", {}, (True, TenantPolicy.BOUND), "team-a"),
        ("team-a/song.txt", {"tenant": "team-a"}, (True, TenantPolicy.BOUND), "team-a"),
        ("team-a/song.txt", {"tenant": "team-b"}, (False, TenantPolicy.OPEN), "team-b"),
        ("team-a/song.txt", {}, (False, TenantPolicy.BOUND), "default"),
        ("song.txt", {}, (True, TenantPolicy.BOUND), "default"),
        ("My Songs/song.txt", {"tenant": "team-c"}, (False, TenantPolicy.OPEN), "team-c"),
    ],
)
def test_a_lyric_files_tenant_comes_from_its_metadata_or_first_folder(
    cloud: Cloud,
    key: str,
    metadata: dict[str, str],
    rules: tuple[bool, TenantPolicy],
    tenant: str,
) -> None:
    """`rules`: TenantFromKey=prefix or not, and the TenantPolicy."""
    from_key, policy = rules
    settings = dataclasses.replace(
        cloud.services.settings, tenant_from_key=from_key, tenant_policy=policy
    )
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    notice = cloud.put_lyrics(key, b"[Verse]\nla la la", Metadata=metadata)
    assert cloud.send(notice) == [Outcome.SUBMITTED]
    assert cloud.only_row().tenant == tenant


def test_under_bound_a_files_metadata_naming_a_tenant_fails_it_unpaid(cloud: Cloud) -> None:
    notice = cloud.put_lyrics("song.txt", b"[Verse]\nla la la", Metadata={"tenant": "shop"})
    assert cloud.send(notice) == [Outcome.REJECTED]
    row = cloud.only_row()
    assert (row.state, row.tenant) == (JobState.FAILED, "default")
    assert "under TenantPolicy=bound only a lyric file's folder can name a tenant" in str(row.error)
    assert cloud.emulator.submissions == []


@pytest.mark.parametrize(
    ("key", "metadata", "reason"),
    [
        ("My Songs/song.txt", {}, "the first folder of 'My Songs/song.txt'"),
        ("song.txt", {"tenant": "Team A"}, "the file's 'tenant' metadata"),
        ("song.txt", {"tenant": "acme "}, "the file's 'tenant' metadata"),
        ("song.txt", {"tenant": "ACME"}, "the file's 'tenant' metadata"),
        ("a" * 33 + "/song.txt", {}, "the first folder of"),
    ],
)
def test_a_tenant_that_is_not_a_name_fails_the_file_before_anything_is_paid(
    cloud: Cloud, key: str, metadata: dict[str, str], reason: str
) -> None:
    settings = dataclasses.replace(cloud.services.settings, tenant_from_key=True)
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    assert cloud.send(cloud.put_lyrics(key, b"la la", Metadata=metadata)) == [Outcome.REJECTED]
    row = cloud.only_row()
    assert row.state is JobState.FAILED
    assert row.error is not None
    assert reason in row.error
    assert "must be a tenant name" in row.error
    assert cloud.emulator.submissions == []


@pytest.mark.parametrize(
    ("key", "named", "belongs_to"),
    [("acme/song.txt", "shop", "acme"), ("song.txt", "shop", "default")],
)
def test_a_file_whose_key_names_its_tenant_cannot_name_another_in_its_metadata(
    cloud: Cloud, key: str, named: str, belongs_to: str
) -> None:
    """A producer limited by a bucket policy to acme/ cannot spend shop's caps."""
    settings = dataclasses.replace(cloud.services.settings, tenant_from_key=True)
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    notice = cloud.put_lyrics(key, b"la la", Metadata={"tenant": named})
    assert cloud.send(notice) == [Outcome.REJECTED]
    row = cloud.only_row()
    assert (row.state, row.tenant) == (JobState.FAILED, belongs_to), "its folder's to hear of"
    assert row.error is not None
    assert f"names {named}, but with TENANT_FROM_KEY=prefix" in row.error
    assert f"belongs to tenant {belongs_to}" in row.error
    assert cloud.emulator.submissions == [], "nothing paid"
    (note,) = cloud.notifications()
    assert note["status"] == "FAILED"


def test_a_request_without_a_tenant_keeps_the_identity_it_had(cloud: Cloud) -> None:
    plain = cloud.submit()
    named = cloud.submit(tenant="team-a", prompt="another")
    rows = {row.job_id: row for row in cloud.rows()}
    assert (rows[plain].tenant, rows[named].tenant) == ("default", "team-a")
    assert "tenant" not in json.loads(rows[plain].request_json or "{}"), "stored as before"
    assert json.loads(rows[named].request_json or "{}")["tenant"] == "team-a"
    assert all("tenant" not in body for body in cloud.emulator.submissions), "not sent to the API"


def test_spend_is_counted_per_day_and_tenant_and_read_back_without_a_scan(cloud: Cloud) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).put(
        TenantCaps("team-a", per_day=50, in_flight=5)
    )
    cloud.submit(tenant="team-a", prompt="a song")
    _finish(cloud)
    assert cloud.send(song_request(bitrate=1, tenant="team-b")) == [Outcome.REJECTED]
    cloud.emulator.faults.server_error = 1
    cloud.emulator.faults.server_error_status = 502
    assert cloud.send(song_request(request_id="doubt")) == [Outcome.UNKNOWN]
    doubt = next(row.job_id for row in cloud.rows() if row.state is JobState.UNKNOWN)
    cloud.notifications()
    assert cloud.send({"resubmit": doubt}) == [Outcome.SUBMITTED]
    _finish(cloud)

    register_outputs(cloud.stack)
    target = connect(cloud.stack.name, region="us-east-1")
    today = day_of(cloud.clock())
    found = spend_report.report(target, [today], tenant=None, by="tenant", now=cloud.clock())
    by_tenant = {
        name: (c.charged_songs, c.charged_credits, c.maybe_credits, c.ended)
        for name, c in found.groups.items()
    }
    assert by_tenant == {
        "team-a": (1, 30, 0, {"COMPLETED": 1}),
        "team-b": (0, 0, 0, {"FAILED": 1}),
        "default": (1, 30, 30, {"UNKNOWN": 1, "COMPLETED": 1}),  # two endings of one job
    }
    assert found.total.charged_usd == pytest.approx(0.6)
    assert found.maybe_jobs == [(doubt, "default", today)]
    # three submissions count against the day: the doubtful one too
    assert [(c.tenant, c.cap, c.used) for c in found.today] == [(None, 200, 3), ("team-a", 50, 1)]
    text = views.spend_text(found)
    assert missing_lines(sample(PRODUCERS, "spend"), text, numbers=True) == [], text
    assert "maybe charged: 1 job(s) whose outcome is unknown" in text
    assert "today: the stack 3 of 200 songs, 197 left" in text
    by_state = spend_report.report(target, [today], tenant=None, by="state", now=cloud.clock())
    assert {name: c.ended[name] for name, c in by_state.groups.items()} == {
        "COMPLETED": 2,
        "FAILED": 1,
        "UNKNOWN": 1,
    }
    only_a = spend_report.report(target, [today], tenant="team-a", by="model", now=cloud.clock())
    assert list(only_a.groups) == ["minimax-music"]
    assert only_a.total.charged_credits == 30


@pytest.mark.parametrize(
    ("month", "since", "says"),
    [
        ("2026-13", None, "--month must be YYYY-MM"),
        ("November", None, "--month must be YYYY-MM"),
        (None, "2026-11-31", "--since must be YYYY-MM-DD"),
        (None, "2027-01-01", "is in the future"),
        (None, "2024-01-01", "at most 400 days"),
    ],
)
def test_a_span_that_cannot_be_read_is_refused(
    month: str | None, since: str | None, says: str
) -> None:
    with pytest.raises(CliError, match=says) as refused:
        spend_report.span(month, since, date(2026, 11, 27))
    assert refused.value.code is ExitCode.USAGE


def test_a_month_is_its_days_and_no_day_after_today() -> None:
    november = spend_report.span("2026-11", None, date(2026, 11, 27))
    assert (november[0], november[-1], len(november)) == ("2026-11-01", "2026-11-27", 27)
    assert len(spend_report.span("2026-02", None, date(2026, 11, 27))) == 28
    assert spend_report.span(None, None, date(2026, 11, 27))[0] == "2026-11-01"


def test_two_tenants_with_the_same_request_id_both_get_their_songs(cloud: Cloud) -> None:
    """Job ids are per tenant: team-a's order-1 does not make team-b's a duplicate."""
    team_a = cloud.submit(tenant="team-a", request_id="order-1")
    team_b = cloud.submit(tenant="team-b", request_id="order-1", prompt="another")
    plain = cloud.submit(request_id="order-1", prompt="a third")
    assert len({team_a, team_b, plain}) == 3
    assert len(cloud.emulator.submissions) == 3, "each paid once"
    again = cloud.send(song_request(tenant="team-a", request_id="order-1"))
    assert again == [Outcome.DUPLICATE], "a tenant's own repeat is still one job"
    assert len(cloud.emulator.submissions) == 3
    rows = {row.job_id: row.tenant for row in cloud.rows()}
    assert rows == {team_a: "team-a", team_b: "team-b", plain: "default"}
    cloud.clock.advance(31)
    assert cloud.poll().completed == 3
