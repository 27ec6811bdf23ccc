"""A Step Functions workflow asks for a song and waits for it (docs/step-functions.md):
the example workflow, run by moto's interpreter against the stack's functions."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core.config import default_user_config

from local_cloud.workflow import execution_end
from lyrics_to_song.data.caps import TenantCaps, TenantStore
from lyrics_to_song.data.rows import DEFAULT_TENANT, JobState
from lyrics_to_song.payment import Outcome
from lyrics_to_song.webhooks.delivery import WebhookServices
from lyrics_to_song.webhooks.task_callbacks import TaskMessage, answer
from lyrics_to_song.webhooks.task_heartbeats import Beats, send_heartbeats
from tests.conftest import API_URL
from tests.docs_text import ROOT
from tests.integration.moto_cloud import Cloud
from tests.support import song_request

EXAMPLE = ROOT / "examples" / "step-functions" / "song-for-a-video.asl.json"
ROLE = "arn:aws:iam::123456789012:role/workflow"


# The example's HeartbeatSeconds, lowered so that a missed heartbeat shows in seconds.
HEARTBEAT_SECONDS = 2


def _machine(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, heartbeat_seconds: int) -> str:
    """The example state machine, executed by moto, and the stack allowed to answer it."""
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    definition = EXAMPLE.read_text().replace("${JobsQueueUrl}", cloud.stack.jobs_queue_url)
    definition = definition.replace(
        '"HeartbeatSeconds": 900', f'"HeartbeatSeconds": {heartbeat_seconds}'
    )
    sfn = cloud.stack.client("stepfunctions")
    arn = sfn.create_state_machine(name="soundtrack", definition=definition, roleArn=ROLE)[
        "stateMachineArn"
    ]
    allowed = frozenset({arn})
    settings = dataclasses.replace(cloud.services.settings, callback_state_machines=allowed)
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    return str(arn)


@pytest.fixture
def workflow(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> str:
    return _machine(cloud, monkeypatch, 900)


@pytest.fixture
def beating(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> str:
    """The example, its task failing when no heartbeat comes for HEARTBEAT_SECONDS."""
    return _machine(cloud, monkeypatch, HEARTBEAT_SECONDS)


def _queued(cloud: Cloud, url: str, key: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The bodies holding `key` on a queue, waited for (the workflow's message comes from
    moto's interpreter, on a thread of its own); the others are taken off too."""
    sqs = cloud.stack.client("sqs")
    ends = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < ends:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        found = [body for m in got if key in (body := json.loads(m["Body"]))]
        time.sleep(0 if got else 0.05)
    return found


def _start(cloud: Cloud, machine: str) -> str:
    """Start the workflow and submit the song request it sends; the execution's ARN."""
    sfn = cloud.stack.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=machine, name="video-7", input=json.dumps(song_request())
    )["executionArn"]
    (request,) = _queued(cloud, cloud.stack.jobs_queue_url, "task_token")
    assert request["state_machine"] == machine
    assert cloud.send(request) == [Outcome.SUBMITTED]
    return str(execution)


def _run_song(cloud: Cloud, machine: str, hooks: WebhookServices) -> dict[str, Any]:
    """Start the workflow, let the stack make (or fail) the song, answer the task."""
    execution = _start(cloud, machine)
    _finish(cloud, hooks)
    return execution_end(cloud.stack, execution, 10)


def _finish(cloud: Cloud, hooks: WebhookServices) -> None:
    """Let the stack make (or fail) the song and answer the task."""
    cloud.clock.advance(31)
    cloud.poll()
    (body,) = _queued(cloud, cloud.stack.refs["TaskAnswerQueue"], "kind")
    message = TaskMessage.read(body)
    assert message is not None
    assert answer(hooks.table, hooks.states, message, 30) is None


def test_the_workflow_gets_the_song_s_bucket_and_key(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    done = _run_song(cloud, workflow, hooks)
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    row = cloud.only_row()
    assert output == {
        "bucket": cloud.stack.songs_bucket,
        "key": row.song_key,
        "job_id": row.job_id,
    }
    assert row.task is not None
    assert (row.task.state, row.task.attempts) == ("sent", 1)


def test_a_failed_song_fails_the_task_with_song_failed_and_the_reason(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    cloud.emulator.faults.fail_tasks = True
    client = hooks.states()
    sent: list[dict[str, Any]] = []

    def failure(**call: Any) -> Any:
        sent.append(call)  # moto keeps the error, not the cause: the call shows it
        return client.send_task_failure(**call)

    spy = type("Spy", (), {"send_task_failure": staticmethod(failure)})()
    hooks = dataclasses.replace(hooks, states=lambda: spy)
    done = _run_song(cloud, workflow, hooks)
    assert done["status"] == "FAILED", "the example's Catch leads to its Fail state"
    assert done["error"] == "NoSoundtrack"
    history = cloud.stack.client("stepfunctions").get_execution_history(
        executionArn=done["executionArn"]
    )["events"]
    (caught,) = [e for e in history if e["type"] == "FailStateEntered"]
    song_error = json.loads(caught["stateEnteredEventDetails"]["input"])["song_error"]
    assert song_error["Error"] == "Song.Failed", "what the Catch caught"
    (call,) = sent
    assert call["error"] == "Song.Failed"
    assert "generation failed" in call["cause"], "the job's reason"


def _answer_owed_again(cloud: Cloud, workflow: str, hooks: WebhookServices) -> TaskMessage:
    """A song made and its task answered; then a second answer recorded as owed for the
    same task (a new notice id), and its message."""
    done = _run_song(cloud, workflow, hooks)
    assert done["status"] == "SUCCEEDED"
    row = cloud.only_row()
    assert row.task is not None
    cloud.services.table.task_queued(row.job_id, row.task.notice_id + "x", "{}")
    return TaskMessage(row.job_id, row.task.notice_id + "x")


def test_an_answer_sent_again_after_a_crash_ends_recorded_not_tried_for_ever(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    # As if the function had died between sending the answer and recording it.
    again = _answer_owed_again(cloud, workflow, hooks)
    assert answer(hooks.table, hooks.states, again, 30) is None, "not tried again"
    after = cloud.only_row().task
    assert after is not None
    assert after.state == "refused"
    assert after.answer is not None
    assert after.answer.startswith(("InvalidToken", "TaskTimedOut", "TaskDoesNotExist"))


def test_a_token_of_a_state_machine_not_listed_is_refused_before_payment(
    cloud: Cloud, workflow: str
) -> None:
    other = workflow.replace(":soundtrack", ":someone-else")
    body = song_request(task_token="AAAA" * 10, state_machine=other)
    assert cloud.send(body) == [Outcome.REJECTED]
    row = cloud.only_row()
    assert row.state is JobState.FAILED
    assert f"state machine {other} is not one this stack answers" in str(row.error)
    assert cloud.emulator.submissions == []
    settings = dataclasses.replace(cloud.services.settings, callback_state_machines=frozenset())
    cloud.services = dataclasses.replace(cloud.services, settings=settings)
    refused = song_request(task_token="BBBB", state_machine=workflow, request_id="r2")
    assert cloud.send(refused) == [Outcome.REJECTED]
    assert cloud.emulator.submissions == [], "the feature off: refused, unpaid"


def test_status_shows_how_the_task_was_answered(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    from lyrics_cli import views

    _run_song(cloud, workflow, hooks)
    row = cloud.only_row()
    assert "workflow   Step Functions task sent" in views.describe(row, "songs")
    assert views.job_dict(row, "songs")["workflow"] == {
        "state": "sent",
        "attempts": 1,
        "answer": "sent",
    }


def test_a_request_refused_for_bad_input_still_answers_its_task(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    sfn = cloud.stack.client("stepfunctions")
    too_long = song_request(lyrics="la " * 2000)  # past the model's 3,500 characters
    execution = sfn.start_execution(
        stateMachineArn=workflow, name="video-8", input=json.dumps(too_long)
    )["executionArn"]
    (request,) = _queued(cloud, cloud.stack.jobs_queue_url, "task_token")
    assert cloud.send(request) == [Outcome.REJECTED]
    assert cloud.emulator.submissions == [], "nothing paid"
    (body,) = _queued(cloud, cloud.stack.refs["TaskAnswerQueue"], "kind")
    message = TaskMessage.read(body)
    assert message is not None
    assert answer(hooks.table, hooks.states, message, 30) is None
    done = execution_end(cloud.stack, execution, 10)
    assert (done["status"], done["error"]) == ("FAILED", "NoSoundtrack"), "its Catch ran"
    assert cloud.only_row().task is not None


def _beat(cloud: Cloud, hooks: WebhookServices) -> Beats:
    """One pass of the heartbeats' schedule, on the test's clock."""
    since = cloud.clock() - hooks.settings.heartbeat_stale_seconds
    return send_heartbeats(hooks.table, hooks.states, due_since=since, time_left=lambda: 60.0)


@pytest.mark.slow
def test_heartbeats_keep_a_workflow_waiting_while_its_song_is_made(
    cloud: Cloud, beating: str, hooks: WebhookServices
) -> None:
    execution = _start(cloud, beating)
    for _ in range(3 * HEARTBEAT_SECONDS):  # a beat every 0.5 s: 1.5 times HeartbeatSeconds
        assert _beat(cloud, hooks) == Beats(sent=1)
        time.sleep(0.5)
    sfn = cloud.stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    _finish(cloud, hooks)
    done = execution_end(cloud.stack, execution, 10)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["key"] == cloud.only_row().song_key


@pytest.mark.slow
def test_a_job_no_poll_keeps_up_with_gets_no_heartbeat_and_its_workflow_learns(
    cloud: Cloud, beating: str, hooks: WebhookServices
) -> None:
    execution = _start(cloud, beating)
    # No poll run: the job's first check is soon overdue by more than the stale limit.
    cloud.clock.advance(hooks.settings.heartbeat_stale_seconds + 60)
    assert _beat(cloud, hooks) == Beats(), "nothing sent for a job nobody is making"
    done = execution_end(cloud.stack, execution, 3 * HEARTBEAT_SECONDS)
    assert (done["status"], done["error"]) == ("FAILED", "NoSoundtrack"), "its Catch ran"
    history = cloud.stack.client("stepfunctions").get_execution_history(executionArn=execution)[
        "events"
    ]
    (caught,) = [e for e in history if e["type"] == "FailStateEntered"]
    song_error = json.loads(caught["stateEnteredEventDetails"]["input"])["song_error"]
    # AWS names it States.HeartbeatTimeout or States.Timeout (moto): the example catches both.
    assert song_error["Error"] in ("States.HeartbeatTimeout", "States.Timeout")
    assert cloud.only_row().state is JobState.PENDING, "the job itself goes on"


@pytest.mark.slow
def test_a_workflow_that_gave_up_takes_no_heartbeat_and_the_job_goes_on(
    cloud: Cloud, beating: str, hooks: WebhookServices
) -> None:
    execution = _start(cloud, beating)
    done = execution_end(cloud.stack, execution, 3 * HEARTBEAT_SECONDS)  # none sent: it gives up
    assert done["status"] == "FAILED"
    assert _beat(cloud, hooks) == Beats(gone=1), "refused, counted, not an error"
    assert cloud.only_row().state is JobState.PENDING


def test_ended_and_tokenless_jobs_get_no_heartbeat(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    assert cloud.send(song_request(request_id="plain")) == [Outcome.SUBMITTED]
    _run_song(cloud, workflow, hooks)  # ended, its task answered
    assert _beat(cloud, hooks) == Beats(), "a job without a token, and an ended one"


def test_a_job_waiting_in_line_beats_all_the_while_it_waits(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).put(
        TenantCaps(DEFAULT_TENANT, per_day=1, in_flight=10)
    )
    assert cloud.send(song_request(request_id="first")) == [Outcome.SUBMITTED]
    sfn = cloud.stack.client("stepfunctions")
    sfn.start_execution(stateMachineArn=workflow, name="video-9", input=json.dumps(song_request()))
    (request,) = _queued(cloud, cloud.stack.jobs_queue_url, "task_token")
    assert cloud.send(request) == [Outcome.HELD]
    held = next(row for row in cloud.rows() if row.state is JobState.HELD)
    assert held.hold is not None
    assert held.line_at is not None
    assert _beat(cloud, hooks) == Beats(sent=1), "a cap is the stack's pacing: it beats on"
    cloud.clock.advance(hooks.settings.heartbeat_stale_seconds + 3600)
    assert _beat(cloud, hooks) == Beats(sent=1), "however long it waits in line"
    cloud.clock.advance(86_400)
    assert cloud.watch().admitted == 1
    started = cloud.services.table.get(held.job_id)
    assert started is not None
    assert started.state is not JobState.HELD


def test_the_schedule_s_event_sends_the_heartbeats(
    cloud: Cloud, workflow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local_cloud.runtime import LocalContext, scheduler_event
    from lyrics_to_song import webhook_handler

    _start(cloud, workflow)
    env = {**cloud.stack.environments["WebhookFunction"], "MUSIC_API_BASE_URL": API_URL}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    webhook_handler.services.cache_clear()
    try:
        event = scheduler_event(cloud.stack.refs["WebhookFunction"])
        found = webhook_handler.handler(event, LocalContext("webhooks", 60))
    finally:
        webhook_handler.services.cache_clear()
    assert found == {"sent": 1, "gone": 0, "failed": 0, "skipped": 0}


def test_an_answer_refused_for_want_of_permission_is_recorded_not_retried(
    cloud: Cloud, workflow: str, hooks: WebhookServices
) -> None:
    message = _answer_owed_again(cloud, workflow, hooks)
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
        "SendTaskSuccess",
    )

    class Refusing:
        def send_task_success(self, **_: object) -> None:
            raise denied

    assert answer(hooks.table, Refusing, message, 30) is None, "final: no retry"
    after = cloud.only_row().task
    assert after is not None
    assert (after.state, after.attempts) == ("refused", 1)
    assert after.answer is not None
    assert after.answer.startswith("AccessDeniedException")


def test_heartbeats_read_only_the_rows_that_may_carry_a_task_token(
    cloud: Cloud, workflow: str, hooks: WebhookServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog in line costs the pass nothing: it reads the open rows and the waiting
    ones with a token, never the rest of the line."""
    cloud.services.budget = dataclasses.replace(cloud.services.budget, in_flight=1)
    token = {"task_token": "A" * 40, "state_machine": workflow}
    assert cloud.send(song_request(request_id="running", **token)) == [Outcome.SUBMITTED]
    for n in range(40):
        assert cloud.send(song_request(request_id=f"w{n}", lyrics=f"w {n}")) == [Outcome.HELD]
    waiting = song_request(request_id="waits-with-a-token", lyrics="t", **token)
    assert cloud.send(waiting) == [Outcome.HELD]
    read: list[int] = []
    batch_get = hooks.table.client.batch_get_item

    def counted(**kwargs: Any) -> Any:
        read.append(sum(len(t["Keys"]) for t in kwargs["RequestItems"].values()))
        return batch_get(**kwargs)

    monkeypatch.setattr(hooks.table.client, "batch_get_item", counted)
    beats = _beat(cloud, hooks)
    assert beats.sent + beats.gone == 2, "the running job's task and the waiting one's"
    assert sum(read) == 2, "two rows read, of 42 under way"
