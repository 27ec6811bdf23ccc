"""Webhooks: a job's callback_url checked before payment, its notice delivered signed,
tried again, refused or given up (docs/webhooks.md), against moto and a real receiver
on loopback."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from local_cloud.receiver import WebhookReceiver, always, failing_first
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song import observability
from lyrics_to_song.data.caps import TenantStore
from lyrics_to_song.data.receivers import Health
from lyrics_to_song.data.rows import JobState, Row, Webhook, WebhookState
from lyrics_to_song.data.webhook_keys import WebhookKeyStore
from lyrics_to_song.payment import Outcome
from lyrics_to_song.webhooks.delivery import WebhookServices, deliver, receiver_of
from lyrics_to_song.webhooks.queue import WebhookMessage
from lyrics_to_song.webhooks.signing import tenant_secret
from tests.conftest import API_URL
from tests.integration.moto_cloud import Cloud
from tests.support import song_request

PUBLIC = "93.184.215.14"  # a public address, only resolved to by the fake DNS, never reached


@pytest.fixture
def receiver(cloud: Cloud) -> Iterator[WebhookReceiver]:
    found = WebhookReceiver(cloud.stack.webhook_secret())
    yield found
    found.stop()


def fake_dns(table: dict[str, str]) -> Any:
    """getaddrinfo for the names of `table`; any other name does not exist."""

    def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]

    return resolve


def queued_webhooks(cloud: Cloud) -> list[WebhookMessage]:
    """Every message on the webhooks queue, taken off it."""
    sqs = cloud.stack.client("sqs")
    url = cloud.stack.refs["WebhookQueue"]
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            found.append(WebhookMessage.from_json(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def finished_song(cloud: Cloud, **request: Any) -> Row:
    """A song made and announced; its row as it then is."""
    job_id = cloud.submit(**request)
    cloud.clock.advance(31)
    cloud.poll()
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.COMPLETED
    assert row.notified
    return row


def deliver_until_done(
    cloud: Cloud, hooks: WebhookServices, message: WebhookMessage
) -> list[float]:
    """Attempts as the queue would make them: each after the wait the last one asked."""
    waits = []
    while (wait := deliver(hooks, message)) is not None:
        waits.append(wait)
        cloud.clock.advance(wait)
    return waits


def webhook_of(cloud: Cloud, job_id: str) -> Webhook:
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.webhook is not None
    return row.webhook


def test_a_receiver_failing_twice_gets_one_delivery_with_one_id_signed_every_time(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    receiver.answers = failing_first(2, status=500)
    row = finished_song(cloud, callback_url=receiver.url)
    (notice,) = cloud.notifications()
    (message,) = queued_webhooks(cloud)

    waits = deliver_until_done(cloud, hooks, message)

    assert [d.answered for d in receiver.deliveries] == [500, 500, 200]
    assert {d.delivery_id for d in receiver.deliveries} == {notice["notice_id"]}
    assert all(d.verified for d in receiver.deliveries), "each attempt is signed afresh"
    assert all(abs(int(d.timestamp) - time.time()) < 60 for d in receiver.deliveries), (
        "each stamped with the wall clock's time when sent, whatever the test's clock says"
    )
    assert list(receiver.accepted()) == [notice["notice_id"]]
    body = receiver.deliveries[-1].notice
    assert body == {k: v for k, v in notice.items() if not k.startswith("_")}, (
        "the notification's body, as SNS carried it"
    )
    assert waits[0] < waits[1], "the waits grow"
    hook = webhook_of(cloud, row.job_id)
    assert (hook.state, hook.attempts, hook.answer) == (WebhookState.DELIVERED, 3, "200 OK")
    assert hook.ended_at == cloud.clock.now
    assert deliver(hooks, message) is None, "a copy of a delivered webhook is dropped"
    assert len(receiver.deliveries) == 3


def test_a_receiver_down_past_the_retry_window_is_given_up_and_nothing_else_changes(
    cloud: Cloud, hooks: WebhookServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    row = finished_song(cloud, callback_url=f"http://127.0.0.1:{port}/hook")
    cloud.notifications()
    (message,) = queued_webhooks(cloud)
    song = cloud.stack.client("s3").get_object(Bucket=cloud.stack.songs_bucket, Key=row.song_key)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.metrics.clear_metrics()
    started = cloud.clock.now

    waits = deliver_until_done(cloud, hooks, message)

    assert cloud.clock.now - started >= hooks.settings.retry_window_seconds, "a day at least"
    assert max(waits) <= 5 * 3600
    after = cloud.services.table.get(row.job_id)
    assert after is not None
    assert after.webhook is not None
    assert after.webhook.state is WebhookState.GIVEN_UP
    # While its receiver is marked down, a look waits without an attempt.
    assert 10 <= after.webhook.attempts <= len(waits) + 1
    assert after.webhook.answer is not None
    assert "could not connect" in after.webhook.answer or "did not answer lately" in (
        after.webhook.answer
    )
    assert observability.metrics.metric_set["WebhooksGivenUp"]["Value"] == [1.0]
    observability.metrics.clear_metrics()
    unchanged = dataclasses.replace(after, webhook=row.webhook)
    assert unchanged == row, "the job, its song and its notice are as they were"
    again = cloud.stack.client("s3").get_object(Bucket=cloud.stack.songs_bucket, Key=row.song_key)
    assert again["ETag"] == song["ETag"]
    assert cloud.notifications() == [], "no second notice"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (410, WebhookState.REFUSED),  # Gone: the one answer that stops it
        (301, WebhookState.PENDING),  # not followed, tried again as any other answer
        (401, WebhookState.PENDING),  # a rotation or a clock skew at the receiver
        (404, WebhookState.PENDING),
        (429, WebhookState.PENDING),
        (408, WebhookState.PENDING),
        (503, WebhookState.PENDING),
    ],
)
def test_what_each_answer_means(
    cloud: Cloud,
    hooks: WebhookServices,
    receiver: WebhookReceiver,
    status: int,
    state: WebhookState,
) -> None:
    receiver.answers = always(status)
    row = finished_song(cloud, callback_url=receiver.url)
    (message,) = queued_webhooks(cloud)
    wait = deliver(hooks, message)
    hook = webhook_of(cloud, row.job_id)
    assert hook.state is state
    assert (wait is None) is (state is not WebhookState.PENDING)
    assert len(receiver.deliveries) == 1, "one POST an attempt; a redirect is not followed"


def test_a_receiver_answering_401_three_times_then_200_gets_it_once(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    """As during a rotation of its secret: every non-2xx is tried again, 410 aside."""
    receiver.answers = failing_first(3, status=401)
    row = finished_song(cloud, callback_url=receiver.url)
    (message,) = queued_webhooks(cloud)
    deliver_until_done(cloud, hooks, message)
    assert [d.answered for d in receiver.deliveries] == [401, 401, 401, 200]
    assert len({d.delivery_id for d in receiver.deliveries}) == 1
    hook = webhook_of(cloud, row.job_id)
    assert (hook.state, hook.attempts, hook.answer) == (WebhookState.DELIVERED, 4, "200 OK")
    assert [a.answer for a in hook.log] == ["401 Unauthorized"] * 3 + ["200 OK"], "all logged"
    assert all(0 < a.seconds < 10 for a in hook.log), "each with how long it took"
    assert [a.at for a in hook.log] == sorted(a.at for a in hook.log)


def test_during_a_rotation_either_secret_verifies_and_after_it_only_the_new_one(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    store = WebhookKeyStore(cloud.services.budget.client, cloud.services.budget.table_name)
    stack = cloud.stack.webhook_secret()
    old, new = tenant_secret(stack, "team-a"), tenant_secret(stack, "team-a", 1)
    assert store.rotate("team-a", cloud.clock.now + 3600).generation == 1
    receiver.answers = failing_first(1, status=503)
    row = finished_song(cloud, callback_url=receiver.url, tenant="team-a")
    (message,) = queued_webhooks(cloud)

    def headers_of(n: int) -> dict[str, str]:
        d = receiver.deliveries[n]
        return {
            "webhook-id": d.delivery_id,
            "webhook-timestamp": d.timestamp,
            "webhook-signature": d.signature,
        }

    assert deliver(hooks, message) is not None  # within the hour: both sign
    assert len(headers_of(0)["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        StandardWebhook(secret).verify(receiver.deliveries[0].body, headers_of(0))
    cloud.clock.advance(3601)  # the overlap is over
    assert deliver(hooks, message) is None
    body = receiver.deliveries[1].body
    assert StandardWebhook(new).verify(body, headers_of(1))["job_id"] == row.job_id
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(old).verify(body, headers_of(1))


def test_recover_resends_what_was_given_up_during_an_outage_with_the_same_id(
    cloud: Cloud,
    hooks: WebhookServices,
    receiver: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from local_cloud.stack import register_outputs
    from lyrics_cli.main import main

    receiver.answers = always(503)  # the receiver's outage
    row = finished_song(cloud, callback_url=receiver.url, tenant="team-a")
    other = finished_song(cloud, callback_url=receiver.url, request_id="delivered-one")
    first, second = queued_webhooks(cloud)
    deliver_until_done(cloud, hooks, first)
    assert webhook_of(cloud, row.job_id).state is WebhookState.GIVEN_UP
    receiver.answers = always(200)
    deliver_until_done(cloud, hooks, second)
    assert webhook_of(cloud, other.job_id).state is WebhookState.DELIVERED
    outage_attempts = len(receiver.deliveries) - 1

    register_outputs(cloud.stack)
    cli = ["--region", "us-east-1", "--stack", cloud.stack.name]
    capsys.readouterr()
    assert main([*cli, "webhook", "recover", "--since", "2020-01-01", "--json"]) == ExitCode.OK
    (recovered,) = json.loads(capsys.readouterr().out)
    assert recovered["delivery_id"] == first.delivery_id
    (message,) = queued_webhooks(cloud)
    assert message == WebhookMessage(first.delivery_id, row.job_id)
    assert deliver(hooks, message) is None
    last = receiver.deliveries[-1]
    assert (last.delivery_id, last.answered, last.verified) == (first.delivery_id, 200, True)
    hook = webhook_of(cloud, row.job_id)
    assert (hook.state, hook.attempts) == (WebhookState.DELIVERED, outage_attempts + 1)
    assert main([*cli, "webhook", "log", row.job_id]) == ExitCode.OK
    logged = capsys.readouterr().out.splitlines()
    assert len(logged) == 1 + outage_attempts + 1 + 1, "a header, each attempt, where it is"
    assert logged[-2].endswith("200 OK")
    assert main([*cli, "webhook", "resend", row.job_id]) == ExitCode.OK, "asked for again"
    assert len(queued_webhooks(cloud)) == 1
    assert main([*cli, "webhook", "resend", row.job_id]) == ExitCode.USAGE, "on its way already"
    assert main([*cli, "webhook", "recover", "--since", "yesterday"]) == ExitCode.USAGE


def test_the_queue_message_cannot_change_what_is_sent_or_where(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    """Whoever can write to the webhooks queue has no signing oracle: what goes out, and
    where, is the row's."""
    row = finished_song(cloud, callback_url=receiver.url)
    (message,) = queued_webhooks(cloud)
    forged = WebhookMessage.from_json(
        json.dumps(
            {
                "delivery_id": message.delivery_id,
                "job_id": message.job_id,
                "url": "https://attacker.example/collect",
                "body": '{"status": "COMPLETED", "forged": true}',
            }
        )
    )
    assert deliver(hooks, forged) is None
    (delivery,) = receiver.deliveries
    assert delivery.notice["job_id"] == row.job_id
    assert "forged" not in delivery.notice
    other = WebhookMessage(message.delivery_id.replace("_1", "_2"), message.job_id)
    assert deliver(hooks, other) is None, "a delivery the row does not hold is not sent"
    assert len(receiver.deliveries) == 1


def test_retry_after_is_honoured(
    cloud: Cloud, hooks: WebhookServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lyrics_to_song.webhooks import delivery as webhook_delivery

    answer = webhook_delivery.Answer(WebhookState.PENDING, "429 Too Many Requests", 1800.0)
    monkeypatch.setattr(webhook_delivery, "post", lambda *args: answer)
    row = finished_song(cloud, callback_url="http://127.0.0.1:9/hook")
    (message,) = queued_webhooks(cloud)
    assert deliver(hooks, message) == 1800, "longer than the 30 s the first wait would be"
    hook = webhook_of(cloud, row.job_id)
    assert hook.next_at == cloud.clock.now + 1800


@pytest.mark.parametrize(
    ("callback_url", "reason"),
    [
        ("https://10.1.2.3/hook", "a private address (10.1.2.3)"),
        ("https://hooks.internal.example/hook", "resolves to a private address (192.168.4.5)"),
        ("https://169.254.169.254/latest", "a link-local address"),
        ("http://hooks.example.com/hook", "must be https"),
        ("https://user:secret@hooks.example.com/hook", "carries credentials"),
        ("https://no-such-host.example/hook", "does not resolve"),
        ("ftp://hooks.example.com/hook", "must be https"),
    ],
)
def test_a_callback_that_may_not_be_called_is_refused_before_payment(
    cloud: Cloud, callback_url: str, reason: str
) -> None:
    cloud.services.resolve = fake_dns(
        {"hooks.internal.example": "192.168.4.5", "hooks.example.com": PUBLIC}
    )
    job_id = cloud.submit(callback_url=callback_url)
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.FAILED
    assert reason in (row.error or ""), row.error
    assert cloud.emulator.submissions == [], "nothing was paid"
    (notice,) = cloud.notifications()
    assert notice["status"] == "FAILED"
    assert reason in notice["error"]
    assert notice["cost"]["status"] == "not charged"
    assert queued_webhooks(cloud) == [], "a callback that may not be called is not called"


def test_on_aws_loopback_is_refused_and_the_allow_list_holds(cloud: Cloud) -> None:
    settings = cloud.services.settings
    cloud.services.resolve = fake_dns({"hooks.example.com": PUBLIC, "other.example.com": PUBLIC})
    deployed = dataclasses.replace(settings.callback_rules, local=False)
    allow_list = dataclasses.replace(deployed, hosts=frozenset({"hooks.example.com"}))
    refused = [
        (deployed, "https://127.0.0.1/hook", "a loopback address"),
        (deployed, "http://127.0.0.1/hook", "must be https"),
        (allow_list, "https://other.example.com/hook", "not one of CALLBACK_HOSTS"),
    ]
    for rules, url, reason in refused:
        cloud.services.settings = dataclasses.replace(settings, callback_rules=rules)
        row = cloud.services.table.get(cloud.submit(callback_url=url))
        assert row is not None
        assert reason in (row.error or ""), (url, row.error)
    assert cloud.emulator.submissions == []
    row = cloud.services.table.get(cloud.submit(callback_url="https://hooks.example.com/hook"))
    assert row is not None
    assert row.state is JobState.PENDING
    assert row.callback_url == "https://hooks.example.com/hook"


def test_an_unusable_request_still_tells_its_callback_why(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    cloud.send({**song_request(callback_url=receiver.url), "bitrate": 7})
    (message,) = queued_webhooks(cloud)
    assert deliver(hooks, message) is None
    (delivery,) = receiver.deliveries
    assert delivery.verified
    assert delivery.notice["status"] == "FAILED"
    assert "'bitrate' must be one of" in delivery.notice["error"]
    assert cloud.emulator.submissions == []


def test_a_lyric_file_names_its_callback_in_front_matter_or_metadata(
    cloud: Cloud, receiver: WebhookReceiver
) -> None:
    front = f"---\ncallback_url: {receiver.url}?from=front\n---\n[Verse]\nla la\n".encode()
    cloud.send(cloud.put_lyrics("front.txt", front))
    cloud.send(
        cloud.put_lyrics(
            "meta.txt", b"[Verse]\nla la la\n", Metadata={"callback_url": receiver.url + "?m=1"}
        )
    )
    urls = {row.source_name: row.callback_url for row in cloud.rows()}
    assert urls == {"front.txt": receiver.url + "?from=front", "meta.txt": receiver.url + "?m=1"}


def test_a_tenant_default_callback_applies_when_a_request_names_none(
    cloud: Cloud, receiver: WebhookReceiver
) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).set_callback(
        "team-a", receiver.url
    )
    own = receiver.url + "?own=1"
    with_default = cloud.services.table.get(cloud.submit(tenant="team-a", lyrics="one"))
    with_own = cloud.services.table.get(
        cloud.submit(tenant="team-a", lyrics="two", callback_url=own)
    )
    other = cloud.services.table.get(cloud.submit(tenant="team-b", lyrics="three"))
    assert with_default is not None
    assert with_default.callback_url == receiver.url
    assert with_own is not None
    assert with_own.callback_url == own
    assert other is not None
    assert other.callback_url is None
    caps = TenantStore(cloud.services.budget.client, cloud.services.budget.table_name)
    assert caps.get("team-a") is None, "a default callback sets no caps"


def test_a_resent_notice_does_not_send_a_delivered_webhook_again(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    from lyrics_to_song.announce import announce

    row = finished_song(cloud, callback_url=receiver.url)
    (message,) = queued_webhooks(cloud)
    deliver(hooks, message)
    delivered = cloud.services.table.get(row.job_id)
    assert delivered is not None
    announce(cloud.services, delivered)  # as after a crash before the row was closed
    assert queued_webhooks(cloud) == []
    assert len(receiver.deliveries) == 1


def test_every_delivery_verifies_with_the_standard_webhooks_library(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    finished_song(cloud, callback_url=receiver.url)
    (message,) = queued_webhooks(cloud)
    deliver(hooks, message)
    (delivery,) = receiver.deliveries
    assert delivery.verified
    headers = {
        "webhook-id": delivery.delivery_id,
        "webhook-timestamp": delivery.timestamp,
        "webhook-signature": delivery.signature,
    }
    secret = tenant_secret(cloud.stack.webhook_secret(), "default")
    notice = StandardWebhook(secret).verify(delivery.body, headers)
    assert notice["notice_id"] == delivery.delivery_id == f"{notice['job_id']}_1"
    assert notice["type"] == "song.completed", "for receivers that route by it"
    assert "." not in delivery.delivery_id, "the separator of the signed text"
    assert delivery.signature.startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(delivery.body + b" ", headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        StandardWebhook(secret).verify(delivery.body, {**headers, "webhook-id": "job-other_1"})
    later = str(int(delivery.timestamp) + 301)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(delivery.body, {**headers, "webhook-timestamp": later})


def test_a_tenants_receiver_refuses_a_notice_signed_for_another_tenant(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    finished_song(cloud, callback_url=receiver.url, tenant="team-a")
    (message,) = queued_webhooks(cloud)
    deliver(hooks, message)
    (delivery,) = receiver.deliveries
    headers = {
        "webhook-id": delivery.delivery_id,
        "webhook-timestamp": delivery.timestamp,
        "webhook-signature": delivery.signature,
    }
    stack = cloud.stack.webhook_secret()
    assert StandardWebhook(tenant_secret(stack, "team-a")).verify(delivery.body, headers)
    for other in (tenant_secret(stack, "team-b"), "whsec_" + stack):
        with pytest.raises(WebhookVerificationError):
            StandardWebhook(other).verify(delivery.body, headers)


@pytest.fixture
def handler_env(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The webhook function's environment as the template gives it, on a fresh cold start."""
    from lyrics_to_song import webhook_handler

    env = {**cloud.stack.environments["WebhookFunction"], "MUSIC_API_BASE_URL": API_URL}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    webhook_handler.services.cache_clear()
    yield
    webhook_handler.services.cache_clear()


def _batch(cloud: Cloud) -> dict[str, Any]:
    from local_cloud.runtime import sqs_record

    url = cloud.stack.refs["WebhookQueue"]
    messages = cloud.stack.client("sqs").receive_message(QueueUrl=url, AttributeNames=["All"])
    arn = cloud.stack.arns["WebhookQueue"]
    return {"Records": [sqs_record(m, arn) for m in messages["Messages"]]}


def test_the_handler_hides_a_failed_attempt_until_its_next_one(
    cloud: Cloud, receiver: WebhookReceiver, handler_env: None
) -> None:
    from local_cloud.runtime import LocalContext
    from lyrics_to_song.webhook_handler import handler

    receiver.answers = always(503)
    finished_song(cloud, callback_url=receiver.url)
    event = _batch(cloud)
    (record,) = event["Records"]
    response = handler(event, LocalContext("webhooks", 60))
    assert response["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
    assert [d.answered for d in receiver.deliveries] == [503]
    sqs = cloud.stack.client("sqs")
    url = cloud.stack.refs["WebhookQueue"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "hidden until its next try"


@pytest.mark.usefixtures("handler_env")
def test_an_error_inside_the_function_is_tried_again_soon(
    cloud: Cloud,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from local_cloud.runtime import LocalContext
    from lyrics_to_song import webhook_handler
    from lyrics_to_song.data.task_table import TaskTable

    finished_song(cloud, callback_url=receiver.url)
    event = _batch(cloud)
    hidden: list[int] = []
    services = webhook_handler.services()
    monkeypatch.setattr(
        services.sqs,
        "change_message_visibility",
        lambda **kwargs: hidden.append(kwargs["VisibilityTimeout"]),
    )

    def unreachable(*args: Any) -> None:
        raise RuntimeError("the table is out of reach")

    monkeypatch.setattr(TaskTable, "get", unreachable)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    caplog.set_level(logging.INFO, logger="lyrics-to-song")  # whatever an earlier test set
    observability.metrics.clear_metrics()
    response = webhook_handler.handler(event, LocalContext("webhooks", 60))
    (record,) = event["Records"]
    assert response["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
    assert hidden == [services.settings.first_retry_seconds]
    assert receiver.deliveries == [], "nothing was sent"
    assert '"WebhookErrors":[1.0]' in capsys.readouterr().out, "counted, for the dashboard"
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.exc_info is not None, "logged with its trace"
    assert "the table is out of reach" in str(logged.exc_info[1])


def test_a_tenant_default_that_may_not_be_called_fails_its_jobs_before_payment(
    cloud: Cloud,
) -> None:
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).set_callback(
        "team-c", "https://10.0.0.9/hook"
    )
    row = cloud.services.table.get(cloud.submit(tenant="team-c"))
    assert row is not None
    assert row.state is JobState.FAILED
    assert (
        "tenant team-c's default callback_url is refused: its host is a private address "
        "(10.0.0.9)" in (row.error or "")
    )
    assert cloud.emulator.submissions == []


def test_a_token_in_the_callback_query_stays_out_of_the_logs(
    cloud: Cloud,
    hooks: WebhookServices,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished_song(cloud, callback_url=receiver.url + "?token=hush-hush")
    (message,) = queued_webhooks(cloud)
    caplog.set_level(logging.INFO, logger="lyrics-to-song")  # whatever an earlier test set
    caplog.clear()
    assert deliver(hooks, message) is None
    (delivered,) = [r for r in caplog.records if r.getMessage() == "webhook delivered"]
    assert delivered.__dict__["url"] == receiver.url
    assert not [r for r in caplog.records if "hush-hush" in str(r.__dict__)]


@pytest.mark.usefixtures("handler_env")
def test_a_record_the_invocation_has_no_time_for_is_seen_again_soon(
    cloud: Cloud, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local_cloud.runtime import LocalContext
    from lyrics_to_song import webhook_handler

    finished_song(cloud, callback_url=receiver.url)
    event = _batch(cloud)
    hidden: list[int] = []
    monkeypatch.setattr(
        webhook_handler.services().sqs,
        "change_message_visibility",
        lambda **kwargs: hidden.append(kwargs["VisibilityTimeout"]),
    )
    # 12 s left: less than one POST's 10 s and the spare 5 s.
    response = webhook_handler.handler(event, LocalContext("webhooks", 12))
    assert len(response["batchItemFailures"]) == 1
    assert hidden == [webhook_handler.NO_TIME_RETRY_SECONDS]
    assert receiver.deliveries == [], "not started without the time to finish"


@pytest.mark.usefixtures("handler_env")
def test_an_unreadable_message_is_dropped_and_counted(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from local_cloud.runtime import LocalContext
    from lyrics_to_song.webhook_handler import handler

    sqs = cloud.stack.client("sqs")
    sqs.send_message(QueueUrl=cloud.stack.refs["WebhookQueue"], MessageBody='{"job_id": 1}')
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    response = handler(_batch(cloud), LocalContext("webhooks", 60))
    assert response["batchItemFailures"] == [], "nothing to try again"
    assert '"WebhookMessagesUnreadable":[1.0]' in capsys.readouterr().out


def test_a_receiver_that_does_not_answer_is_tried_once_a_period_not_once_a_webhook(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    assert hooks.receivers is not None
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/hook"
    rows = [finished_song(cloud, callback_url=dead, request_id=f"d{n}") for n in range(3)]
    messages = {m.job_id: m for m in queued_webhooks(cloud)}
    first, second, third = (messages[r.job_id] for r in rows)

    assert deliver(hooks, first) is not None  # tried: no connection
    for held in (second, third):
        wait = deliver(hooks, held)
        assert wait is not None
        assert 60 <= wait <= 66, "it waits for the receiver's period, untried"
    attempts = [cloud.services.table.get(r.job_id).webhook.attempts for r in rows]  # type: ignore[union-attr]
    assert attempts == [1, 0, 0], "one attempt for three webhooks"
    assert hooks.receivers.health(f"127.0.0.1:{port}").failures == 1

    healthy = finished_song(cloud, callback_url=receiver.url, request_id="ok")
    (ok,) = [m for m in queued_webhooks(cloud) if m.job_id == healthy.job_id]
    assert deliver(hooks, ok) is None, "another receiver's webhook goes at once"
    assert len(receiver.deliveries) == 1

    cloud.clock.advance(70)  # the period is over: one of them probes, the other waits
    assert deliver(hooks, second) is not None
    assert deliver(hooks, third) is not None
    attempts = [cloud.services.table.get(r.job_id).webhook.attempts for r in rows]  # type: ignore[union-attr]
    assert attempts == [1, 1, 0]
    health = hooks.receivers.health(f"127.0.0.1:{port}")
    assert health.failures == 2
    assert health.down_until - cloud.clock.now >= 119, "the period doubles"


def test_a_receiver_that_answers_again_is_up_at_its_probe(
    cloud: Cloud, hooks: WebhookServices, receiver: WebhookReceiver
) -> None:
    assert hooks.receivers is not None
    where = receiver_of(receiver.url)
    hooks.receivers.failed(where, Health(), cloud.clock.now)  # it was down a while ago
    row = finished_song(cloud, callback_url=receiver.url)
    (message,) = queued_webhooks(cloud)
    assert deliver(hooks, message) is not None, "down: it waits"
    cloud.clock.advance(61)
    assert deliver(hooks, message) is None, "the probe is delivered"
    assert hooks.receivers.health(where) == Health(), "up again: the mark is gone"
    after = cloud.services.table.get(row.job_id)
    assert after is not None
    assert after.webhook is not None
    assert after.webhook.state is WebhookState.DELIVERED


def test_refused_requests_webhooks_are_bounded_per_tenant_and_hour(
    cloud: Cloud, receiver: WebhookReceiver
) -> None:
    settings = dataclasses.replace(cloud.services.settings, refusal_webhooks_per_hour=2)
    cloud.services = dataclasses.replace(
        cloud.services,
        settings=settings,
        refusal_hooks=dataclasses.replace(cloud.services.refusal_hooks, per_hour=2),
    )
    for n in range(4):  # no lyrics: refused, unpaid
        body = song_request(request_id=f"bad-{n}", callback_url=receiver.url, tenant="team-a")
        del body["lyrics"]
        assert cloud.send(body) == [Outcome.REJECTED]
    hooked = sorted(str(r.request_id) for r in cloud.rows() if r.webhook is not None)
    assert hooked == ["bad-0", "bad-1"], "two an hour for team-a's refusals"
    assert len(cloud.notifications()) == 4, "every refusal is still announced"
    other = song_request(request_id="bad-b", callback_url=receiver.url, tenant="team-b")
    del other["lyrics"]
    assert cloud.send(other) == [Outcome.REJECTED]
    assert any(r.request_id == "bad-b" and r.webhook for r in cloud.rows()), "per tenant"
    cloud.clock.advance(3600)
    again = song_request(request_id="bad-4", callback_url=receiver.url, tenant="team-a")
    del again["lyrics"]
    assert cloud.send(again) == [Outcome.REJECTED]
    assert any(r.request_id == "bad-4" and r.webhook for r in cloud.rows()), "the next hour"
