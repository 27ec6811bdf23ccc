"""The line: held jobs wait per tenant, first in first out, and start as soon as a place
is free, each waiting tenant in its turn (docs/how-it-works.md: The line)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime

import pytest

from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.admission import admit
from lyrics_to_song.data.caps import TenantCaps, TenantStore
from lyrics_to_song.data.rows import JobState, Row
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.errors import Cap
from lyrics_to_song.payment import Outcome
from lyrics_to_song.sources import QueuedRequest, admit_nudge
from tests.integration.moto_cloud import Cloud
from tests.support import song_request


def places(cloud: Cloud, in_flight: int) -> None:
    """The stack's in-flight cap (tenants' own stay at their defaults, 5)."""
    cloud.services.budget = dataclasses.replace(cloud.services.budget, in_flight=in_flight)


def send(cloud: Cloud, tenant: str, n: int, **more: object) -> str:
    """Job n of `tenant` (with `more` fields), sent a second after the one before; its id."""
    body = song_request(
        request_id=f"{tenant}-{n}", lyrics=f"{tenant} song {n}", tenant=tenant, **more
    )
    cloud.clock.advance(1)
    cloud.send(body, f"{tenant}-m{n}")
    return QueuedRequest(body, "m").job_for(tenant).job_id


def row(cloud: Cloud, job_id: str) -> Row:
    found = cloud.services.table.get(job_id)
    assert found is not None
    return found


def started(cloud: Cloud, job_ids: list[str]) -> list[str]:
    return [j for j in job_ids if row(cloud, j).state is not JobState.HELD]


def last_job_and_a_busy_api(cloud: Cloud) -> str:
    """Two places free, one job of team-a's waits (its mark older than its settling
    time), and the API refuses submissions for now; the job's id."""
    places(cloud, 2)
    send(cloud, "team-a", 0)
    send(cloud, "team-a", 1)
    last = send(cloud, "team-a", 2)
    end_songs(cloud)
    cloud.emulator.faults.rate_limit = 10
    return last


def killed(*_: object) -> None:
    """A function killed at this step."""
    raise RuntimeError("killed")


def end_songs(cloud: Cloud) -> None:
    """The songs being made are done; one sweep ends them (no admission in it)."""
    cloud.clock.advance(31)
    cloud.poll()


def test_a_freed_place_goes_to_the_tenant_with_fewest_songs_then_in_order(cloud: Cloud) -> None:
    places(cloud, 2)
    big = [send(cloud, "team-a", n) for n in range(6)]
    small = [send(cloud, "team-b", n) for n in range(2)]
    assert started(cloud, big + small) == big[:2]
    assert row(cloud, small[0]).hold.cap == Cap.IN_FLIGHT.value  # type: ignore[union-attr]
    assert row(cloud, small[1]).hold.cap == Cap.LINE.value  # type: ignore[union-attr]

    end_songs(cloud)
    report = admit(cloud.services)
    assert (report.free, report.started) == (2, 2)
    # Both have none in flight: the earliest head first (team-a's), then team-b's, which
    # then has fewer in flight than team-a: a small tenant waits one place, not the line.
    assert started(cloud, big + small) == [*big[:3], small[0]]
    assert report.outcomes == [Outcome.SUBMITTED, Outcome.SUBMITTED]

    end_songs(cloud)
    admit(cloud.services)
    assert started(cloud, big + small) == [*big[:4], *small]
    for _ in range(2):
        end_songs(cloud)
        admit(cloud.services)
    assert started(cloud, big) == big, "every job of the line started"
    starts = [row(cloud, j).submitted_at or 0 for j in big]
    assert starts == sorted(starts), "a tenant's jobs start in the order they came"
    assert len(cloud.emulator.submissions) == 8, "each paid once"
    assert cloud.services.line.read() == {}, "no tenant waits: the line is forgotten"


def test_a_new_job_joins_behind_its_tenants_waiting_ones(cloud: Cloud) -> None:
    places(cloud, 1)
    first = send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1)
    end_songs(cloud)  # the sweep ended the song; its run's admission has not run yet
    later = send(cloud, "team-a", 2)
    assert row(cloud, later).state is JobState.HELD
    assert row(cloud, later).hold.cap == Cap.LINE.value  # type: ignore[union-attr]
    assert admit(cloud.services).started == 1
    assert row(cloud, waiting).state is JobState.PENDING, "the place went to the first in line"
    assert row(cloud, later).state is JobState.HELD
    assert row(cloud, first).state is JobState.COMPLETED


def test_a_stale_mark_never_holds_a_job_while_a_place_is_free(cloud: Cloud) -> None:
    # e.g. its last waiting job was cancelled a minute ago, and no admission ran since
    cloud.services.line.mark("team-a", cloud.clock.now - 60)
    job_id = send(cloud, "team-a", 0)
    assert row(cloud, job_id).state is JobState.PENDING, "admitted at once, in the same call"
    assert set(cloud.services.line.read()) == {"team-a"}, "just marked: the index may lag"
    cloud.clock.advance(11)
    admit(cloud.services)
    assert cloud.services.line.read() == {}, "an empty line, marked long enough ago"


def test_a_paused_tenant_waits_while_the_others_start(cloud: Cloud) -> None:
    places(cloud, 1)
    running = send(cloud, "team-a", 0)
    paused = send(cloud, "team-b", 0)
    TenantRegistry(cloud.services.budget.client, cloud.services.budget.table_name).pause(
        "team-b", cloud.clock.now
    )
    other = send(cloud, "team-c", 0)
    end_songs(cloud)
    assert admit(cloud.services).started == 1
    assert row(cloud, other).state is JobState.PENDING
    assert row(cloud, paused).state is JobState.HELD, "team-b waits for its resume"
    assert row(cloud, running).state is JobState.COMPLETED


def test_a_raised_cap_starts_the_next_jobs_at_once(cloud: Cloud) -> None:
    store = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    store.put(TenantCaps("team-a", per_day=100, in_flight=1))
    jobs = [send(cloud, "team-a", n) for n in range(4)]
    assert started(cloud, jobs) == jobs[:1]
    store.put(TenantCaps("team-a", per_day=100, in_flight=3))
    # What `caps set` sends after writing the caps: no reminder per job, one look.
    assert cloud.send(admit_nudge("caps of tenant team-a set"), sender=None) == [Outcome.SKIPPED]
    assert started(cloud, jobs) == jobs[:3]


def test_an_api_that_refuses_for_now_puts_the_job_back_at_its_place(cloud: Cloud) -> None:
    places(cloud, 1)
    send(cloud, "team-a", 0)
    waiting = [send(cloud, "team-a", n) for n in (1, 2)]
    place = row(cloud, waiting[0]).line_at
    end_songs(cloud)
    cloud.emulator.faults.rate_limit = 10  # more than the client's tries: surely not taken
    report = admit(cloud.services)
    assert report.outcomes == [Outcome.HELD]
    back = row(cloud, waiting[0])
    assert (back.state, back.line_at, back.attempt) == (JobState.HELD, place, None)
    assert [r.job_id for r in cloud.services.table.waiting("team-a")] == waiting
    cloud.emulator.faults.rate_limit = 0
    assert admit(cloud.services).started == 1
    assert started(cloud, waiting) == waiting[:1], "still first in line"
    assert len(cloud.emulator.submissions) == 2


def test_a_nudge_from_anyone_only_looks(cloud: Cloud) -> None:
    places(cloud, 1)
    send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1)
    for _ in range(3):
        assert cloud.send(json.dumps({"admit": "x" * 10_000}), sender=None) == [Outcome.SKIPPED]
    assert row(cloud, waiting).state is JobState.HELD, "no place is free: nothing starts"
    assert len(cloud.emulator.submissions) == 1


def test_a_waiting_job_shows_its_place_and_when_it_should_start(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    places(cloud, 2)
    register_outputs(cloud.stack)
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name]
    big = [send(cloud, "team-a", n) for n in range(7)]  # 2 start, 5 wait
    small = [send(cloud, "team-b", n) for n in range(2)]  # both wait
    capsys.readouterr()

    assert main([*cli, "status", small[1], "--json"]) == ExitCode.OK
    line = json.loads(capsys.readouterr().out)["line"]
    # Second of team-b's; team-a takes at most two turns before it: fourth overall.
    assert (line["place_in_tenant"], line["tenant_waiting"], line["place_overall"]) == (2, 2, 4)
    start = datetime.fromisoformat(line["expected_start"]).timestamp()
    ready = datetime.fromisoformat(line["expected_ready"]).timestamp()
    assert time.time() < start < ready, "later than now (the command's clock), ready after"

    assert main([*cli, "status", big[6]]) == ExitCode.OK
    shown = capsys.readouterr().out
    assert "in line    place 5 of 5 in tenant team-a's line, about 7 overall; expected to" in (
        shown
    )
    assert main([*cli, "list", "--status", "HELD"]) == ExitCode.OK
    assert "; place 1 of 2, about 2 overall" in capsys.readouterr().out  # team-b's first

    end_songs(cloud)
    admit(cloud.services)  # team-a's next and team-b's first start: the line moves
    capsys.readouterr()  # the functions' log lines
    assert main([*cli, "status", small[1], "--json"]) == ExitCode.OK
    moved = json.loads(capsys.readouterr().out)["line"]
    assert (moved["place_in_tenant"], moved["place_overall"]) == (1, 2)


def test_a_waiting_job_whose_request_no_longer_reads_ends_and_the_line_goes_on(
    cloud: Cloud,
) -> None:
    places(cloud, 1)
    send(cloud, "team-a", 0)
    broken, after = send(cloud, "team-a", 1), send(cloud, "team-a", 2)
    cloud.rewrite_request(broken, '{"prompt": "no lyrics"}')
    cloud.notifications()
    end_songs(cloud)
    assert admit(cloud.services).started == 1
    ended = row(cloud, broken)
    assert ended.state is JobState.FAILED
    assert ended.error is not None
    assert ended.error.startswith("its request no longer reads: ")
    assert row(cloud, after).state is JobState.PENDING, "the next in line took the place"
    notes = {n["job_id"]: n["status"] for n in cloud.notifications()}
    assert notes[broken] == "FAILED"
    assert len(cloud.emulator.submissions) == 2, "nothing paid for it"


def test_the_last_waiting_job_put_back_in_line_is_started_by_the_next_admission(
    cloud: Cloud,
) -> None:
    """Taking a tenant's last waiting job, an admission forgets the tenant; if the API
    then refuses the job for now, it goes back in line and its tenant is marked again."""
    last = last_job_and_a_busy_api(cloud)
    assert admit(cloud.services).outcomes == [Outcome.HELD]
    assert row(cloud, last).state is JobState.HELD
    assert set(cloud.services.line.read()) == {"team-a"}, "marked again"
    cloud.emulator.faults.rate_limit = 0
    assert admit(cloud.services).started == 1
    assert row(cloud, last).state is JobState.PENDING


def test_a_job_another_admission_starts_mid_look_does_not_hide_the_rest_of_the_line(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two admissions at once: between one's look at the index and its read of the rows,
    the other starts the job it saw. The rest of the line still waits: its tenant stays
    marked, and the next admission starts the next job."""
    places(cloud, 1)
    send(cloud, "team-a", 0)
    first, second = send(cloud, "team-a", 1), send(cloud, "team-a", 2)
    end_songs(cloud)  # a place is free; the mark is older than its settling time
    table = cloud.services.table
    read_rows = table._rows
    raced: list[bool] = []

    def other_admission_first(job_ids: list[str]) -> list[Row]:
        if not raced:
            raced.append(True)
            admit(cloud.services)  # the other admission, at that moment
        return read_rows(job_ids)

    monkeypatch.setattr(table, "_rows", other_admission_first)
    admit(cloud.services)
    monkeypatch.setattr(table, "_rows", read_rows)
    assert row(cloud, first).state is JobState.PENDING, "the other admission took it"
    assert set(cloud.services.line.read()) == {"team-a"}, "team-a still waits: not forgotten"
    end_songs(cloud)
    assert admit(cloud.services).started == 1
    assert row(cloud, second).state is JobState.PENDING


def test_a_line_a_crash_left_unmarked_is_found_by_the_next_scheduled_run(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admission took a tenant's last waiting job and forgot the tenant; the API
    refused the job for now, and the function died after putting the job back in line,
    before marking its tenant. The next scheduled poll run finds the line and starts it."""
    last = last_job_and_a_busy_api(cloud)

    monkeypatch.setattr(cloud.services.line, "mark", killed)
    with pytest.raises(RuntimeError, match="killed"):
        admit(cloud.services)
    monkeypatch.undo()
    cloud.emulator.faults.rate_limit = 0
    assert row(cloud, last).state is JobState.HELD, "back at its place"
    assert cloud.services.line.read() == {}, "its tenant unmarked"
    assert admit(cloud.services).started == 0, "an admission sees no waiting tenant"

    report = cloud.watch()  # the next scheduled run
    assert report.admitted == 1
    assert row(cloud, last).submitted_at is not None, "started, and paid once"


def test_a_crash_between_joining_the_line_and_marking_is_mended_by_the_redelivery(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    places(cloud, 1)
    send(cloud, "team-a", 0)
    body = song_request(request_id="team-a-1", lyrics="team-a song 1", tenant="team-a")

    monkeypatch.setattr(cloud.services.line, "mark", killed)
    with pytest.raises(RuntimeError, match="killed"):
        cloud.send(body, "team-a-m1")
    monkeypatch.undo()
    job_id = QueuedRequest(body, "m").job_for("team-a").job_id
    assert row(cloud, job_id).state is JobState.HELD
    assert cloud.services.line.read() == {}
    assert cloud.send(body, "team-a-m1") == [Outcome.HELD], "the message came again"
    assert set(cloud.services.line.read()) == {"team-a"}, "its tenant marked"
    end_songs(cloud)
    assert admit(cloud.services).started == 1
    assert row(cloud, job_id).state is JobState.PENDING


def test_the_scheduled_runs_stop_looking_at_a_tenant_idle_for_a_day(cloud: Cloud) -> None:
    cloud.services.line.mark("team-a", cloud.clock.now - 60)
    admit(cloud.services)  # its line is empty: forgotten, kept as idle
    assert cloud.services.line.marks().idle == {"team-a": cloud.clock.now}
    cloud.watch()
    assert set(cloud.services.line.marks().idle) == {"team-a"}, "looked at, kept a day"
    cloud.clock.advance(86_401)
    cloud.watch()
    assert cloud.services.line.marks().idle == {}


def test_places_of_jobs_the_api_refused_go_to_the_next_in_line_at_once(cloud: Cloud) -> None:
    places(cloud, 2)
    send(cloud, "team-a", 0)
    send(cloud, "team-a", 1)
    refused = [send(cloud, "team-a", n) for n in (2, 3)]
    after = [send(cloud, "team-a", n) for n in (4, 5)]
    end_songs(cloud)
    cloud.emulator.faults.server_error_status = 400
    cloud.emulator.faults.server_error = 2  # the next two submissions: refused outright
    report = admit(cloud.services)
    assert sorted(report.outcomes) == sorted([Outcome.REJECTED] * 2 + [Outcome.SUBMITTED] * 2)
    assert [row(cloud, j).state for j in refused] == [JobState.FAILED] * 2
    assert [row(cloud, j).state for j in after] == [JobState.PENDING] * 2, "in the same admission"
    assert report.free == 2


def test_a_waiting_job_whose_request_was_written_in_another_spelling_starts(cloud: Cloud) -> None:
    """The same request, written by an earlier version in another JSON spelling (keys
    in another order, non-ASCII escaped): its row is started as it is, not blocking
    its tenant's line."""
    places(cloud, 1)
    send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1, prompt="café jazz")
    kept = json.loads(row(cloud, waiting).request_json or "")
    spelled = json.dumps(dict(reversed(list(kept.items()))), ensure_ascii=True, indent=1)
    cloud.rewrite_request(waiting, spelled)
    end_songs(cloud)
    assert admit(cloud.services).started == 1
    assert row(cloud, waiting).state is JobState.PENDING
    assert cloud.emulator.submissions[-1]["prompt"] == "café jazz"


def test_a_tenant_an_earlier_version_marked_beside_its_idle_entry_is_not_reported_unseen(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    places(cloud, 1)
    send(cloud, "team-a", 0)
    waiting = send(cloud, "team-a", 1)
    line = cloud.services.line
    line.client.update_item(  # an earlier version's mark leaves the idle entry in place
        TableName=line.table_name,
        Key={"counter": {"S": "line"}},
        UpdateExpression="SET #idle = :then",
        ExpressionAttributeNames={"#idle": "i:team-a"},
        ExpressionAttributeValues={":then": {"N": "1"}},
    )
    end_songs(cloud)
    cloud.watch()
    assert row(cloud, waiting).submitted_at is not None
    assert "unseen" not in caplog.text, "a marked tenant is no unseen line"
