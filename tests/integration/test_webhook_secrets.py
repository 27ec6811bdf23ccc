"""Webhook secrets walled off: every tenant's, `default`'s included, is derived from the
stack's root key, which no command prints; one tenant's tells nothing of another's; the
root can be rotated, and a stack upgraded from one where `default` signed with the root
keeps its receivers verifying for an overlap."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from local_cloud.receiver import WebhookReceiver
from local_cloud.runtime import LocalContext
from local_cloud.stack import register_outputs
from lyrics_cli.main import main
from lyrics_cli.stack_target import ExitCode
from lyrics_to_song.config import load_webhook_settings
from lyrics_to_song.data.caps import TenantStore
from lyrics_to_song.services import build_webhook_services
from lyrics_to_song.webhooks.delivery import WebhookServices, deliver
from lyrics_to_song.webhooks.signing import legacy_secret, tenant_secret
from tests.conftest import API_URL
from tests.integration.moto_cloud import Cloud
from tests.integration.test_webhooks import finished_song, queued_webhooks
from tests.support import song_request


@pytest.fixture
def receiver(cloud: Cloud) -> Iterator[WebhookReceiver]:
    found = WebhookReceiver(cloud.stack.webhook_secret())
    yield found
    found.stop()


@pytest.fixture
def cli(cloud: Cloud) -> list[str]:
    register_outputs(cloud.stack)
    return ["--region", "us-east-1", "--stack", cloud.stack.name]


def fresh_hooks(cloud: Cloud) -> WebhookServices:
    """The webhook function as a new instance builds it (its secrets read afresh)."""
    env = {**cloud.stack.environments["WebhookFunction"], "MUSIC_API_BASE_URL": API_URL}
    services = build_webhook_services(load_webhook_settings(env), client=cloud.stack.client)
    return dataclasses.replace(services, clock=cloud.clock, jitter=lambda low, high: high)


def verifies(secret: str, delivery: object) -> bool:
    headers = {
        "webhook-id": delivery.delivery_id,  # type: ignore[attr-defined]
        "webhook-timestamp": delivery.timestamp,  # type: ignore[attr-defined]
        "webhook-signature": delivery.signature,  # type: ignore[attr-defined]
    }
    try:
        StandardWebhook(secret).verify(delivery.body, headers)  # type: ignore[attr-defined]
    except WebhookVerificationError:
        return False
    return True


def one_delivery(cloud: Cloud, receiver: WebhookReceiver, tenant: str, name: str) -> object:
    finished_song(cloud, callback_url=receiver.url, tenant=tenant, request_id=name)
    (message,) = queued_webhooks(cloud)
    receiver.deliveries.clear()
    deliver(fresh_hooks(cloud), message)
    (delivery,) = receiver.deliveries
    return delivery


def test_no_command_prints_the_root_key_and_no_tenants_secret_gives_another(
    cloud: Cloud, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    root = cloud.stack.webhook_secret()
    commands = [
        ["webhook", "secret"],
        ["webhook", "secret", "--tenant", "team-a"],
        ["webhook", "rotate", "--tenant", "team-b"],
        ["tenants", "import"],
        ["webhook", "secret"],
        ["tenants", "list"],
        ["tenants", "show", "default"],
        ["webhook", "rotate-root", "--overlap-hours", "1"],
        ["webhook", "secret", "--tenant", "team-a"],
    ]
    for argv in commands:
        for form in ([], ["--json"]):
            assert main([*cli, *argv, *form]) == ExitCode.OK, argv
            said = capsys.readouterr()
            assert root.removeprefix("whsec_") not in said.out + said.err, argv

    default = tenant_secret(root, "default")
    assert default != legacy_secret(root), "default's secret is not the root"
    assert tenant_secret(default, "team-a") != tenant_secret(root, "team-a"), (
        "deriving team-a from default's secret does not give team-a's"
    )


def test_after_an_upgrade_defaults_receivers_verify_with_the_root_for_the_overlap_only(
    cloud: Cloud, cli: list[str], receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    root = cloud.stack.webhook_secret()
    first = one_delivery(cloud, receiver, "default", "before-import")
    assert verifies(tenant_secret(root, "default"), first)
    assert not verifies(legacy_secret(root), first), "not imported: the root signs nothing"

    assert main([*cli, "tenants", "import", "--overlap-hours", "2"]) == ExitCode.OK
    assert main([*cli, "webhook", "secret"]) == ExitCode.OK
    assert "the secret default's receivers held before this version signs too until" in (
        capsys.readouterr().out
    )
    cloud.clock.now = time.time()  # the overlap is set by the wall clock
    during = one_delivery(cloud, receiver, "default", "during")
    assert verifies(legacy_secret(root), during), "old receivers keep verifying"
    assert verifies(tenant_secret(root, "default"), during)
    others = one_delivery(cloud, receiver, "team-a", "others")
    assert not verifies(legacy_secret(root), others), "only default's"

    cloud.clock.advance(2 * 3600 + 1)
    after = one_delivery(cloud, receiver, "default", "after")
    assert verifies(tenant_secret(root, "default"), after)
    assert not verifies(legacy_secret(root), after)


def test_rotating_the_root_changes_every_secret_with_an_overlap(
    cloud: Cloud, cli: list[str], receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    old_root = cloud.stack.webhook_secret()
    cloud.clock.now = time.time()
    assert main([*cli, "webhook", "rotate-root", "--overlap-hours", "1"]) == ExitCode.OK
    capsys.readouterr()
    new_root = cloud.stack.webhook_secret()
    assert new_root != old_root
    assert main([*cli, "webhook", "secret", "--tenant", "team-a", "--json"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["secret"] == tenant_secret(new_root, "team-a")
    assert shown["previous_secret"] == tenant_secret(old_root, "team-a")

    during = one_delivery(cloud, receiver, "team-a", "during")
    assert verifies(tenant_secret(old_root, "team-a"), during)
    assert verifies(tenant_secret(new_root, "team-a"), during)
    cloud.clock.advance(3601)
    after = one_delivery(cloud, receiver, "team-a", "after")
    assert verifies(tenant_secret(new_root, "team-a"), after)
    assert not verifies(tenant_secret(old_root, "team-a"), after)


def test_a_refusal_of_a_sender_bound_to_several_tenants_is_signed_with_one_of_its_own(
    cloud: Cloud, receiver: WebhookReceiver
) -> None:
    several = "AIDASEVERALTENANTS01"
    for tenant in ("team-b", "team-c"):
        cloud.services.senders.bind(several, tenant)
    body = song_request(request_id="r1", callback_url=receiver.url)  # names none: refused
    assert cloud.send(body, sender=several) == ["rejected"]
    row = cloud.only_row()
    assert row.tenant == "team-b", "its own side, not default's"
    (message,) = queued_webhooks(cloud)
    deliver(fresh_hooks(cloud), message)
    (delivery,) = receiver.deliveries
    root = cloud.stack.webhook_secret()
    assert verifies(tenant_secret(root, "team-b"), delivery)
    assert not verifies(tenant_secret(root, "default"), delivery)


class _Invoked:
    """Lambda's Invoke, standing in for the service: the real webhook handler, here."""

    def __init__(self, hooks: WebhookServices) -> None:
        self.hooks = hooks
        self.requests: list[dict[str, object]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, object]:
        from lyrics_to_song import webhook_handler

        request = json.loads(Payload)
        self.requests.append(request)
        answer = webhook_handler.handler(request, LocalContext(FunctionName, 60))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


class _NoRoot:
    """What an operator without secretsmanager:GetSecretValue gets."""

    def __getattr__(self, name: str) -> object:
        def refused(**kwargs: object) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, name)

        return refused


def test_an_operator_who_may_not_read_the_root_gets_secrets_from_the_function(
    cloud: Cloud,
    cli: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The root key never leaves Secrets Manager but for the webhook function: the
    command line asks it (lambda:InvokeFunction), for a tenant's secret and for a new root."""
    from lyrics_cli import commands
    from lyrics_cli.stack_target import connect as real_connect
    from lyrics_to_song import webhook_handler

    cloud.clock.now = time.time()  # the overlap is set by the wall clock
    hooks = fresh_hooks(cloud)
    invoked = _Invoked(hooks)
    monkeypatch.setattr(webhook_handler, "services", lambda: hooks)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # its output is the CLI's

    def connect(*args: object, **kwargs: object) -> object:
        found = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        clients = {"lambda": invoked, "secretsmanager": _NoRoot()}
        return dataclasses.replace(
            found, client=lambda name: clients.get(name) or found.client(name)
        )

    monkeypatch.setattr(commands, "connect", connect)
    old_root = cloud.stack.webhook_secret()
    assert main([*cli, "webhook", "secret", "--tenant", "team-a", "--json"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["secret"] == tenant_secret(old_root, "team-a")
    assert invoked.requests == [{"operator": "secret", "tenant": "team-a"}]

    assert main([*cli, "webhook", "rotate-root", "--overlap-hours", "1"]) == ExitCode.OK
    capsys.readouterr()
    new_root = cloud.stack.webhook_secret()
    assert new_root != old_root, "the function put a new root"
    assert main([*cli, "webhook", "secret", "--tenant", "team-a", "--json"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["secret"] == tenant_secret(new_root, "team-a")
    assert shown["previous_secret"] == tenant_secret(old_root, "team-a")
    assert webhook_handler.handler({"operator": "drop tables"}, LocalContext("f", 60)) == {
        "error": "'operator' must be 'secret' or 'rotate-root'"
    }


def test_webhook_test_sends_a_signed_example_the_tenants_receiver_verifies(
    cloud: Cloud, cli: list[str], receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    root = cloud.stack.webhook_secret()
    # The receiver is on loopback, which only a local stack may call: set as a test can.
    TenantStore(cloud.services.budget.client, cloud.services.budget.table_name).set_callback(
        "team-a", receiver.url
    )
    assert main([*cli, "webhook", "test", "--tenant", "team-a", "--json"]) == ExitCode.OK
    said = json.loads(capsys.readouterr().out)
    assert (said["url"], said["status"], said["delivered"]) == (receiver.url, 200, True)
    (delivery,) = receiver.deliveries
    assert delivery.delivery_id == said["delivery_id"]
    assert verifies(tenant_secret(root, "team-a"), delivery), "standardwebhooks verifies it"
    assert not verifies(tenant_secret(root, "default"), delivery), "signed for team-a alone"
    assert delivery.notice["test"] is True
    assert delivery.notice["tenant"] == "team-a"
    assert main([*cli, "webhook", "test", "--url", receiver.url]) == ExitCode.OK
    assert f"{receiver.url} answered 200" in capsys.readouterr().out
    assert main([*cli, "webhook", "test", "--tenant", "team-b"]) == ExitCode.USAGE
    assert "has no default callback_url: name a receiver with --url" in capsys.readouterr().err
