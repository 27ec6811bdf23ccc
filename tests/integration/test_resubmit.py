"""The explicit resubmission: `{"resubmit": "job-…"}` on the jobs queue pays again, on purpose."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lyrics_to_song.data.rows import JobState
from lyrics_to_song.errors import RetryLater
from lyrics_to_song.intake import handle_message
from lyrics_to_song.payment import Outcome
from tests.integration.moto_cloud import Cloud
from tests.support import song_request


def unknown_job(cloud: Cloud) -> str:
    """A job whose first submission got a 502: UNKNOWN, notified, not resent."""
    cloud.emulator.faults.server_error = 1
    cloud.emulator.faults.server_error_status = 502
    assert handle_message(cloud.services, json.dumps(song_request(request_id="r1")), "m1") == [
        Outcome.UNKNOWN
    ]
    (note,) = cloud.notifications()
    assert (note["status"], note["type"]) == ("UNKNOWN", "song.unknown")
    assert note["notice_id"] == f"{note['job_id']}_1"
    return str(note["job_id"])


def resubmit(cloud: Cloud, job_id: str) -> list[Outcome]:
    return handle_message(cloud.services, json.dumps({"resubmit": job_id}), "m-resubmit")


def test_an_unknown_job_is_resubmitted_and_finishes(cloud: Cloud) -> None:
    job_id = unknown_job(cloud)
    assert resubmit(cloud, job_id) == [Outcome.SUBMITTED]
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.PENDING
    assert row.resubmits == 1
    assert row.error is None
    assert len(cloud.emulator.submissions) == 1, "paid once: the first call never arrived"
    cloud.clock.advance(31)
    cloud.poll()
    (note,) = cloud.notifications()
    assert (note["job_id"], note["status"]) == (job_id, "COMPLETED")
    assert note["error"] is None
    assert note["notice_id"] == f"{job_id}_2", "a new ending is a new notice"


@pytest.mark.parametrize("state", ["PENDING", "COMPLETED"])
def test_a_running_or_finished_job_is_not_resubmitted(cloud: Cloud, state: str) -> None:
    handle_message(cloud.services, json.dumps(song_request()), "m1")
    job_id = cloud.only_row().job_id
    if state == "COMPLETED":
        cloud.clock.advance(31)
        cloud.poll()
        cloud.notifications()
    assert resubmit(cloud, job_id) == [Outcome.SKIPPED]
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state.value == state
    assert len(cloud.emulator.submissions) == 1


def test_a_job_without_a_valid_request_or_an_unknown_id_is_not_resubmitted(cloud: Cloud) -> None:
    handle_message(cloud.services, json.dumps({"prompt": "no lyrics"}), "m1")
    rejected = cloud.only_row()
    assert rejected.state is JobState.FAILED
    assert resubmit(cloud, rejected.job_id) == [Outcome.SKIPPED]
    assert resubmit(cloud, "job-does-not-exist") == [Outcome.SKIPPED]
    assert cloud.emulator.submissions == []


def test_a_refused_resubmission_puts_the_job_back_as_it_was(cloud: Cloud) -> None:
    job_id = unknown_job(cloud)
    cloud.emulator.faults.rate_limit_prompt = "indie"  # every attempt answers 429
    with pytest.raises(RetryLater):
        resubmit(cloud, job_id)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.UNKNOWN
    assert row.notified
    assert row.previous_state is None
    assert row.resubmits == 0, "the ending it went back to keeps its number"
    assert cloud.notifications() == [], "nothing ended, so nothing is announced"
    due, _ = cloud.services.table.due(cloud.clock.now + 10_000, 10)
    assert due == [], "the row is out of the due index again"
    cloud.emulator.faults.rate_limit_prompt = ""
    assert resubmit(cloud, job_id) == [Outcome.SUBMITTED], "the redelivered message goes through"


def test_a_job_is_resubmitted_at_most_max_resubmits_times(cloud: Cloud) -> None:
    settings = dataclasses.replace(cloud.services.settings, max_resubmits=2)
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    cloud.emulator.faults.fail_tasks = True  # every song fails: the owner keeps trying
    job_id = cloud.submit()
    outcomes = [Outcome.SUBMITTED]
    for _ in range(4):
        if outcomes[-1] is Outcome.SUBMITTED:
            cloud.clock.advance(31)
            cloud.poll()
            assert cloud.notifications()[-1]["status"] == "FAILED"
        outcomes.append(resubmit(cloud, job_id)[0])
    outcomes.pop(0)
    assert outcomes == [Outcome.SUBMITTED, Outcome.SUBMITTED, Outcome.SKIPPED, Outcome.SKIPPED]
    assert len(cloud.emulator.submissions) == 3, "the first submission and two resubmissions"
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert (row.state, row.resubmits) == (JobState.FAILED, 2)


def test_a_job_refused_for_its_content_is_resubmitted_only_with_force(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    from local_cloud.stack import register_outputs
    from lyrics_cli.main import main
    from lyrics_cli.stack_target import ExitCode

    cloud.emulator.faults.fail_tasks = True  # "generation failed: lyrics rejected by moderation"
    job_id = cloud.submit()
    cloud.clock.advance(31)
    assert cloud.poll().failed == 1
    register_outputs(cloud.stack)
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name, "resubmit", job_id, "--yes"]
    capsys.readouterr()
    assert main(cli) == ExitCode.ENDED_BADLY
    said = capsys.readouterr().err
    assert "its content was refused" in said
    assert "resubmit it anyway with --force" in said
    sqs = cloud.stack.client("sqs")
    queued = sqs.receive_message(QueueUrl=cloud.stack.jobs_queue_url, MaxNumberOfMessages=10)
    assert queued.get("Messages", []) == [], "nothing asked, nothing paid"
    assert main([*cli, "--force"]) == ExitCode.OK
    (message,) = sqs.receive_message(QueueUrl=cloud.stack.jobs_queue_url)["Messages"]
    assert json.loads(message["Body"]) == {"resubmit": job_id}
