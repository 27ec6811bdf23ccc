"""Spending caps: beyond the daily or the in-flight cap, jobs are HELD, unpaid, and go on
later."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from local_cloud.runtime import LocalContext
from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.admission import admit
from lyrics_to_song.data.caps import TenantCaps, TenantStore, day_of
from lyrics_to_song.data.rows import Hold, JobState
from lyrics_to_song.data.task_table import CapReached, Started, StartResult
from lyrics_to_song.errors import Cap, RetryLater
from lyrics_to_song.intake import handle_message
from lyrics_to_song.payment import Outcome
from lyrics_to_song.resubmit import resubmit
from lyrics_to_song.sources import QueuedRequest
from lyrics_to_song.submit import start_within_caps
from tests.integration.moto_cloud import PRODUCER, Cloud
from tests.support import song_request


def caps(cloud: Cloud, per_day: int = 100, in_flight: int = 100) -> None:
    cloud.services.budget = dataclasses.replace(
        cloud.services.budget, per_day=per_day, in_flight=in_flight
    )


def request(n: int) -> str:
    return json.dumps(song_request(request_id=f"order-{n}", lyrics=f"song number {n}"))


def submit(cloud: Cloud, n: int) -> list[Outcome]:
    return handle_message(cloud.services, request(n), f"m{n}", PRODUCER)


def job_of(body: str, tenant: str = "default") -> str:
    return QueuedRequest(json.loads(body), "m").job_for(tenant).job_id


def hold_of(cloud: Cloud, job_id: str) -> Hold:
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.hold is not None, f"{job_id} is {row.state}, not held"
    return row.hold


def reminders(cloud: Cloud) -> list[dict[str, Any]]:
    """The reminders for held jobs on the jobs queue, delayed ones included (moto keeps
    their delays in real time), taken off in the order sent."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues[
        cloud.stack.jobs_queue_url.rsplit("/", 1)[1]
    ]
    found = [json.loads(m.body) for m in queue._messages]
    queue._messages.clear()
    return [body for body in found if "held" in body]


def test_beyond_the_daily_cap_jobs_are_held_unpaid_until_the_next_day(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    caps(cloud, per_day=3)
    outcomes = [submit(cloud, n) for n in range(5)]
    assert outcomes == [[Outcome.SUBMITTED]] * 3 + [[Outcome.HELD]] * 2
    for n, cap in ((3, Cap.DAILY), (4, Cap.LINE)):
        row = cloud.services.table.get(job_of(request(n)))
        assert row is not None
        assert row.state is JobState.HELD
        assert row.hold is not None
        assert row.hold.cap == cap.value, "the first meets the cap, the next joins behind it"
        assert row.line_at == cloud.clock.now, "it waits in its tenant's line"
        assert row.charge.status == "not charged"
    first = hold_of(cloud, job_of(request(3)))
    assert first.reason.startswith("the stack is at its daily cap, 3 of 3 songs")
    assert len(cloud.emulator.submissions) == 3
    assert cloud.notifications() == [], "a held job is announced when it ends"
    assert cloud.services.budget.submitted_on(day_of(cloud.clock.now)) == 3
    assert "spending cap reached: the job is held, unpaid" in caplog.text

    # A held job costs nothing while it waits: no reminder of its own. The next day, the
    # first scheduled poll run starts both, in the order they came, and pays each once.
    assert reminders(cloud) == []
    assert cloud.watch().admitted == 0, "still today: the day's cap is spent"
    cloud.clock.advance(86_400)
    assert cloud.watch().admitted == 2
    assert cloud.watch().admitted == 0, "a second run finds nothing more to start"
    assert len(cloud.emulator.submissions) == 5
    assert sorted(s["lyrics"] for s in cloud.emulator.submissions[3:]) == [
        "song number 3",
        "song number 4",
    ]
    row = cloud.services.table.get(job_of(request(3)))
    assert row is not None
    assert row.state is JobState.COMPLETED, "made and checked within the same run"
    assert row.hold is None


def test_a_held_job_sent_again_is_still_one_job(cloud: Cloud) -> None:
    caps(cloud, per_day=1)
    assert submit(cloud, 0) == [Outcome.SUBMITTED]
    assert submit(cloud, 1) == [Outcome.HELD]
    first = hold_of(cloud, job_of(request(1)))
    cloud.clock.advance(10)
    assert submit(cloud, 1) == [Outcome.HELD], "the producer's retry finds it held"
    again = hold_of(cloud, job_of(request(1)))
    assert again.since == first.since, "it keeps its place in line"
    assert reminders(cloud) == []
    cloud.clock.advance(86_400)
    assert cloud.watch().admitted == 1
    assert cloud.send(request(1)) == [Outcome.DUPLICATE]
    assert cloud.watch().admitted == 0
    assert len(cloud.emulator.submissions) == 2


def test_a_reminder_sent_by_anyone_else_does_nothing(cloud: Cloud) -> None:
    caps(cloud, per_day=1)
    submit(cloud, 0)
    assert submit(cloud, 1) == [Outcome.HELD]
    job_id = job_of(request(1))
    cloud.clock.advance(86_400)
    forged = {"held": job_id, "token": "guessed"}
    assert cloud.send(forged) == [Outcome.SKIPPED]
    assert cloud.services.table.get(job_id).state is JobState.HELD  # type: ignore[union-attr]
    assert len(cloud.emulator.submissions) == 1


def test_a_runaway_producer_cannot_spend_past_the_cap(cloud: Cloud) -> None:
    caps(cloud, per_day=2)
    event = cloud.put_lyrics("loop.txt", b"[Verse]\nagain and again")
    # The same file, over and over: one job, paid once, never held.
    for i in range(20):
        assert cloud.send(event, f"same{i}")[0] in (
            Outcome.SUBMITTED,
            Outcome.DUPLICATE,
        )
    # New files in a loop: two paid, the rest held.
    held = 0
    for i in range(20):
        new = cloud.put_lyrics(f"loop-{i}.txt", f"[Verse]\nverse {i}".encode())
        held += cloud.send(new, f"new{i}") == [Outcome.HELD]
    assert len(cloud.emulator.submissions) == 2
    assert held == 19


def test_beyond_the_in_flight_cap_jobs_wait_until_a_song_ends(cloud: Cloud) -> None:
    caps(cloud, in_flight=2)
    assert submit(cloud, 0) == [Outcome.SUBMITTED]
    assert submit(cloud, 1) == [Outcome.SUBMITTED]
    assert submit(cloud, 2) == [Outcome.HELD]
    hold = hold_of(cloud, job_of(request(2)))
    assert hold.cap == Cap.IN_FLIGHT.value
    assert hold.reason == "the stack is at its in-flight cap, 2 of 2 songs being made"
    assert len(cloud.emulator.submissions) == 2
    assert reminders(cloud) == [], "it waits in line, not for a reminder"

    cloud.clock.advance(60)  # both songs are done; the poll run ends them, and at once
    report = cloud.watch()  # starts the waiting job on a freed place (and sees it made)
    assert report.admitted == 1
    assert report.completed == 3
    assert len(cloud.emulator.submissions) == 3
    assert submit(cloud, 3) == [Outcome.SUBMITTED]
    running = {r.job_id for r in cloud.rows() if r.state is JobState.PENDING}
    assert running == {job_of(request(3))}
    assert running <= cloud.services.budget.holders()


def test_a_refused_submission_gives_its_song_back_to_the_day(cloud: Cloud) -> None:
    caps(cloud, per_day=1)
    cloud.emulator.faults.server_error = 100
    cloud.emulator.faults.server_error_status = 503  # surely not accepted
    with pytest.raises(RetryLater):
        submit(cloud, 0)
    assert cloud.services.budget.submitted_on(day_of(cloud.clock.now)) == 0
    cloud.emulator.faults.server_error = 0
    assert submit(cloud, 0) == [Outcome.SUBMITTED]  # the retry is not blocked by the cap
    assert cloud.services.budget.submitted_on(day_of(cloud.clock.now)) == 1


def failed_job(cloud: Cloud) -> str:
    """A job the API took and failed (one song of the day's one), notified; its id."""
    cloud.emulator.faults.fail_tasks = True
    assert submit(cloud, 0) == [Outcome.SUBMITTED]
    cloud.clock.advance(60)
    assert cloud.poll().failed == 1
    cloud.emulator.faults.fail_tasks = False
    return cloud.only_row().job_id


def test_a_resubmission_counts_against_the_caps_and_waits_in_line(cloud: Cloud) -> None:
    caps(cloud, per_day=1)
    job_id = failed_job(cloud)
    reminders(cloud)

    assert resubmit(cloud.services, job_id, "default") is Outcome.HELD
    row = cloud.only_row()
    assert row.state is JobState.FAILED, "as it was, nothing paid"
    assert row.hold is not None
    assert row.hold.cap == Cap.DAILY.value
    assert row.line_at is not None, "in its tenant's line"
    assert reminders(cloud) == [], "no reminder of its own"
    cloud.clock.advance(86_400)
    assert cloud.watch().admitted == 1, "the next day's first scheduled run starts it"
    row = cloud.only_row()
    assert (row.hold, row.line_at, row.resubmits) == (None, None, 1)
    assert row.state is JobState.COMPLETED
    assert len(cloud.emulator.submissions) == 2


def test_a_resubmission_the_api_cannot_take_for_now_waits_again_as_it_was(cloud: Cloud) -> None:
    caps(cloud, per_day=1)
    job_id = failed_job(cloud)
    assert resubmit(cloud.services, job_id, "default") is Outcome.HELD
    waiting = cloud.only_row()
    cloud.clock.advance(86_400)
    cloud.emulator.faults.rate_limit = 10
    assert admit(cloud.services).outcomes == [Outcome.HELD]
    again = cloud.only_row()
    assert again.item == waiting.item, "its row exactly as it waited, its ending kept"
    assert cloud.services.budget.submitted_on(day_of(cloud.clock.now)) == 0, "given back"
    cloud.emulator.faults.rate_limit = 0
    assert admit(cloud.services).started == 1
    assert cloud.only_row().state is JobState.PENDING
    assert len(cloud.emulator.submissions) == 2, "paid once for the resubmission"


@pytest.fixture
def handler_module(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The submit function's entry point on this cloud, with one song allowed a day."""
    from lyrics_to_song import submit_handler

    caps(cloud, per_day=1)
    monkeypatch.setattr(submit_handler, "services", lambda: cloud.services)
    logging.getLogger("lyrics-to-song").setLevel(logging.WARNING)
    return submit_handler


def delayed_messages(cloud: Cloud) -> int:
    attributes = cloud.stack.client("sqs").get_queue_attributes(
        QueueUrl=cloud.stack.jobs_queue_url, AttributeNames=["All"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_the_submit_function_holds_waiting_jobs_in_line_without_reminders(
    cloud: Cloud, handler_module: Any
) -> None:
    cloud.stack.client("sqs").purge_queue(QueueUrl=cloud.stack.jobs_queue_url)
    records: list[dict[str, Any]] = [
        {
            "messageId": f"m{n}",
            "receiptHandle": f"r{n}",
            "body": request(n),
            "attributes": {"SenderId": PRODUCER},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": cloud.stack.arns["JobsQueue"],
            "awsRegion": "us-east-1",
        }
        for n in range(3)
    ]

    response = handler_module.handler({"Records": records}, LocalContext("submit", 60))
    assert response["batchItemFailures"] == []  # nothing goes to the dead-letter count
    assert len(cloud.emulator.submissions) == 1
    assert delayed_messages(cloud) == 0
    assert sorted(r.state for r in cloud.rows()) == [JobState.HELD, JobState.HELD, JobState.PENDING]
    held = {r.job_id for r in cloud.rows() if r.state is JobState.HELD}
    assert {r.job_id for r in cloud.services.table.waiting("default")} == held


def test_files_sent_straight_to_the_function_are_held_too(
    cloud: Cloud, handler_module: Any
) -> None:
    sqs = cloud.stack.client("sqs")
    queue = cloud.stack.jobs_queue_url
    first = cloud.put_lyrics("one.txt", b"[Verse]\nfirst")
    second = cloud.put_lyrics("two.txt", b"[Verse]\nsecond")
    sqs.purge_queue(QueueUrl=queue)  # the bucket's own notifications: sent straight instead

    context = LocalContext("submit", 60)
    assert handler_module.handler(first, context)["outcomes"] == ["submitted"]
    assert handler_module.handler(second, context)["outcomes"] == ["held"]
    assert len(cloud.emulator.submissions) == 1
    waiting = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    assert delayed_messages(cloud) == 0, "it waits in line"
    assert waiting.get("Messages", []) == []
    assert len(cloud.services.table.waiting("default")) == 1


def tenant_request(n: int, tenant: str) -> str:
    return json.dumps(song_request(request_id=f"{tenant}-{n}", lyrics=f"song {n}", tenant=tenant))


def submit_for(cloud: Cloud, n: int, tenant: str) -> list[Outcome]:
    return handle_message(cloud.services, tenant_request(n, tenant), f"{tenant}-m{n}", PRODUCER)


def tenant_hold(cloud: Cloud, n: int, tenant: str) -> Hold:
    return hold_of(cloud, job_of(tenant_request(n, tenant), tenant))


def test_one_tenant_at_its_daily_cap_never_holds_back_another(cloud: Cloud) -> None:
    caps(cloud, per_day=100)
    store = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    store.put(TenantCaps("team-a", per_day=2, in_flight=10))
    first = [submit_for(cloud, n, "team-a") for n in range(3)]
    others = [submit_for(cloud, n, "team-b") for n in range(3)]
    assert first == [[Outcome.SUBMITTED]] * 2 + [[Outcome.HELD]]
    hold = tenant_hold(cloud, 2, "team-a")
    assert hold.cap == Cap.TENANT_DAILY.value
    assert hold.reason.startswith("tenant team-a is at its daily cap, 2 of 2 songs for ")
    assert others == [[Outcome.SUBMITTED]] * 3, "team-b has the defaults (200 a day)"
    assert len(cloud.emulator.submissions) == 5
    today = day_of(cloud.clock.now)
    assert cloud.services.budget.submitted_on(today, "team-a") == 2
    assert cloud.services.budget.submitted_on(today) == 5, "the stack's cap counts everyone"


def test_a_tenant_without_caps_of_its_own_has_the_stacks_defaults_for_tenants(
    cloud: Cloud,
) -> None:
    cloud.services.budget = dataclasses.replace(cloud.services.budget, tenant_defaults=(2, 10))
    outcomes = [submit_for(cloud, n, "team-a") for n in range(3)]
    assert outcomes == [[Outcome.SUBMITTED]] * 2 + [[Outcome.HELD]]
    assert tenant_hold(cloud, 2, "team-a").reason.startswith(
        "tenant team-a is at its daily cap, 2 of 2 songs"
    )
    assert submit_for(cloud, 0, "team-b") == [Outcome.SUBMITTED], "each tenant its own"
    assert len(cloud.emulator.submissions) == 3


def test_caps_set_at_noon_count_the_morning(cloud: Cloud) -> None:
    """A tenant's day is counted from its first song, whether it had caps then or not."""
    assert submit_for(cloud, 0, "team-a") == [Outcome.SUBMITTED]
    store = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    store.put(TenantCaps("team-a", per_day=2, in_flight=10))
    later = [submit_for(cloud, n, "team-a") for n in (1, 2)]
    assert later == [[Outcome.SUBMITTED], [Outcome.HELD]], "exactly one more that day"
    assert tenant_hold(cloud, 2, "team-a").cap == Cap.TENANT_DAILY.value
    assert cloud.services.budget.submitted_on(day_of(cloud.clock.now), "team-a") == 2
    assert len(cloud.emulator.submissions) == 2


def test_a_tenants_in_flight_cap_frees_places_as_its_songs_end(cloud: Cloud) -> None:
    store = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    store.put(TenantCaps("team-a", per_day=100, in_flight=1))
    assert submit_for(cloud, 0, "team-a") == [Outcome.SUBMITTED]
    assert submit_for(cloud, 1, "team-a") == [Outcome.HELD]
    hold = tenant_hold(cloud, 1, "team-a")
    assert hold.cap == Cap.TENANT_IN_FLIGHT.value
    assert hold.reason == "tenant team-a is at its in-flight cap, 1 of 1 songs being made"
    assert submit_for(cloud, 0, "team-b") == [Outcome.SUBMITTED]
    cloud.clock.advance(31)
    report = cloud.watch()  # team-a's first song ends: its place comes free, and is taken
    assert report.admitted == 1
    row = cloud.services.table.get(job_of(tenant_request(1, "team-a"), "team-a"))
    assert row is not None
    assert row.state is JobState.COMPLETED, "started, made and checked in the same run"


def test_the_stacks_caps_still_bound_the_sum_of_the_tenants(cloud: Cloud) -> None:
    caps(cloud, per_day=3)
    store = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    for tenant in ("team-a", "team-b"):
        store.put(TenantCaps(tenant, per_day=10, in_flight=10))
    outcomes = [submit_for(cloud, n, t) for n in range(2) for t in ("team-a", "team-b")]
    assert outcomes == [[Outcome.SUBMITTED]] * 3 + [[Outcome.HELD]]
    assert tenant_hold(cloud, 1, "team-b").cap == Cap.DAILY.value


def test_a_refusal_gives_the_song_back_to_the_tenants_day_too(cloud: Cloud) -> None:
    store = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    store.put(TenantCaps("team-a", per_day=1, in_flight=10))
    cloud.emulator.faults.rate_limit = 10  # refused for sure: nothing started
    with pytest.raises(RetryLater):
        handle_message(cloud.services, tenant_request(0, "team-a"), "m0", PRODUCER)
    today = day_of(cloud.clock.now)
    assert cloud.services.budget.submitted_on(today, "team-a") == 0
    cloud.emulator.faults.rate_limit = 0
    assert submit_for(cloud, 0, "team-a") == [Outcome.SUBMITTED]


def test_a_crash_before_the_hold_is_written_leaves_the_message_to_hold_it(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash before the row takes its hold leaves nothing behind; the message,
    redelivered, holds the job in line, and it is started once."""
    caps(cloud, per_day=1)
    assert submit(cloud, 0) == [Outcome.SUBMITTED]
    write = cloud.services.table.hold

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("killed before the hold was written")

    monkeypatch.setattr(cloud.services.table, "hold", crash)
    with pytest.raises(ConnectionError):
        submit(cloud, 1)
    assert cloud.services.table.get(job_of(request(1))) is None, "nothing written, nothing paid"
    monkeypatch.setattr(cloud.services.table, "hold", write)
    assert submit(cloud, 1) == [Outcome.HELD], "the redelivered message"
    cloud.clock.advance(86_400)
    assert cloud.watch().admitted == 1
    assert len(cloud.emulator.submissions) == 2
    assert cloud.services.budget.submitted_on(day_of(cloud.clock.now)) == 1, "counted once"


def test_a_place_another_record_freed_meanwhile_is_taken_not_waited_for(cloud: Cloud) -> None:
    """Two records meet a cap full of ended jobs at once: one frees the places, and the
    other, whose write was refused before that, finds a place free and takes it rather
    than waiting a minute while places stand empty."""
    caps(cloud, in_flight=2)
    assert submit(cloud, 0) == submit(cloud, 1) == [Outcome.SUBMITTED]
    cloud.clock.advance(31)
    assert cloud.poll().completed == 2, "both ended: their places are free to take"
    budget = cloud.services.budget
    budget.drop(budget.holders())  # what the other record did meanwhile
    job_id = job_of(request(2))
    writes: list[float] = []

    def write(now: float) -> StartResult:
        writes.append(now)
        if len(writes) == 1:  # it met the set before the other record emptied it
            return CapReached(Cap.IN_FLIGHT)
        return cloud.services.table.start(
            job_id,
            source="sqs:order-2",
            source_name="order-2",
            request_json="{}",
            model="minimax-music",
            now=now,
            lease_seconds=60,
            reservation=budget.reserve(job_id, now),
        )

    started = start_within_caps(cloud.services, job_id, "default", write)
    assert isinstance(started, Started)
    assert len(writes) == 2


def test_a_resubmission_joins_behind_its_tenants_waiting_jobs(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    caps(cloud, per_day=1)
    job_id = failed_job(cloud)
    assert submit(cloud, 1) == [Outcome.HELD]  # a new job waits for the next day
    cloud.clock.advance(1)
    assert resubmit(cloud.services, job_id, "default") is Outcome.HELD
    assert hold_of(cloud, job_id).cap == Cap.LINE.value, "behind the job that waited first"
    register_outputs(cloud.stack)
    capsys.readouterr()
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name, "status", job_id, "--json"]
    assert main(cli) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "FAILED", "its ending kept while it waits"
    assert (shown["line"]["place_in_tenant"], shown["line"]["tenant_waiting"]) == (2, 2)
    cloud.clock.advance(86_400)
    assert admit(cloud.services).started == 1, "the day's one song"
    first = cloud.services.table.get(job_of(request(1)))
    again = cloud.services.table.get(job_id)
    assert first is not None
    assert first.state is JobState.PENDING, "the first in line"
    assert again is not None
    assert (again.state, again.line_at is not None) == (JobState.FAILED, True), "still waits"


def test_a_resubmission_an_earlier_version_held_starts_on_its_reminder(cloud: Cloud) -> None:
    """The previous version held a resubmission in the due index's HELD shard and sent it
    a reminder: the reminder still starts it (or puts it in line, with none of its own)."""
    caps(cloud, per_day=1)
    job_id = failed_job(cloud)
    reminders(cloud)
    table = cloud.services.table
    token = "0123456789abcdef0123456789abcdef"
    table.client.update_item(  # the previous version's hold_resubmit
        TableName=table.table_name,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET open_shard = :held, due_at = :until, held_cap = :cap, "
        "held_reason = :why, held_until = :until, held_since = :now, held_token = :token "
        "REMOVE expires_at",
        ExpressionAttributeValues={
            ":held": {"S": "HELD"},
            ":until": {"N": str(cloud.clock.now + 900)},
            ":now": {"N": str(cloud.clock.now)},
            ":cap": {"S": Cap.DAILY.value},
            ":why": {"S": "the stack is at its daily cap"},
            ":token": {"S": token},
        },
    )
    reminder = {"held": job_id, "token": token}
    cloud.clock.advance(900)
    assert cloud.send(reminder, sender=None) == [Outcome.HELD], "the day is still spent"
    row = cloud.only_row()
    assert row.line_at is not None, "now in its tenant's line"
    assert reminders(cloud) == [], "with no reminder of its own"
    cloud.clock.advance(86_400)
    assert admit(cloud.services).outcomes == [Outcome.SUBMITTED]
    assert cloud.only_row().resubmits == 1


def test_a_waiting_resubmission_whose_request_no_longer_reads_leaves_the_line(
    cloud: Cloud,
) -> None:
    caps(cloud, per_day=1)
    job_id = failed_job(cloud)
    ended = cloud.only_row()
    assert resubmit(cloud.services, job_id, "default") is Outcome.HELD
    cloud.rewrite_request(job_id, '{"prompt": "no lyrics"}')
    cloud.clock.advance(86_400)
    assert admit(cloud.services).started == 0
    row = cloud.only_row()
    assert (row.state, row.error, row.resubmits) == (ended.state, ended.error, 0), "as it ended"
    assert (row.line_at, row.hold) == (None, None), "out of the line"
    assert len(cloud.emulator.submissions) == 1, "nothing paid for it"
