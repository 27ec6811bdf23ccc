"""The functions' logic against moto (in-process), provisioned from template.yaml."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from local_cloud.emulator import MusicApiEmulator
from local_cloud.stack import provision
from local_cloud.watch import subscribe_queue
from lyrics_to_song.config import load_settings, load_webhook_settings
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.music_api import MusicApiClient
from lyrics_to_song.services import api_key_source, build_services, build_webhook_services
from lyrics_to_song.webhooks.delivery import WebhookServices
from tests.conftest import API_URL
from tests.integration.moto_cloud import PRODUCER, PRODUCER_TENANTS, Cloud
from tests.support import FakeClock


@pytest.fixture
def cloud(
    clock: FakeClock, emulator: MusicApiEmulator, api: MusicApiClient, sleeps: list[float]
) -> Iterator[Cloud]:
    with mock_aws():
        stack = provision(endpoint_url=None)
        stack.store_api_key(emulator.api_key)
        env = {
            **stack.environments["PollFunction"],
            "LYRICS_BUCKET_NAME": stack.environments["SubmitFunction"]["LYRICS_BUCKET_NAME"],
            "OWN_SENDER_ID": stack.environments["SubmitFunction"]["OWN_SENDER_ID"],
            "LYRIC_FILES_QUEUE_ARN": stack.environments["SubmitFunction"]["LYRIC_FILES_QUEUE_ARN"],
            "MUSIC_API_BASE_URL": API_URL,
            # Room to check a dozen songs in one sweep; the budget's own tests set theirs.
            "STATUS_CHECKS_PER_MINUTE": "600",
        }
        settings = load_settings(env)
        # The same in-process transport, with the key read from the stack's secret.
        api_client = MusicApiClient(
            API_URL,
            api_key_source(settings, stack.client("secretsmanager")),
            http=api.http,
            downloads=api.downloads,
            sleep=sleeps.append,
        )
        services = build_services(settings, client=stack.client, api=api_client, clock=clock)
        tenants = TenantRegistry(services.budget.client, services.budget.table_name)
        for tenant in PRODUCER_TENANTS:
            tenants.add(tenant, clock.now)
            services.senders.bind(PRODUCER, tenant)
        watch_url = subscribe_queue(stack, "watch")
        sqs = stack.client("sqs")
        # What an automation rule on the default bus would receive.
        events_url = sqs.create_queue(QueueName="events")["QueueUrl"]
        events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        bridge = stack.client("events")
        bridge.put_rule(Name="songs", EventPattern=json.dumps({"source": ["lyrics-to-song"]}))
        bridge.put_targets(Rule="songs", Targets=[{"Id": "queue", "Arn": events_arn}])
        yield Cloud(stack, services, emulator, clock, watch_url, events_url)


@pytest.fixture
def hooks(cloud: Cloud) -> WebhookServices:
    """The webhook function's services on the test's clock, its waits without jitter."""
    stack = cloud.stack
    env = {**stack.environments["WebhookFunction"], "MUSIC_API_BASE_URL": API_URL}
    settings = load_webhook_settings(env)
    services = build_webhook_services(settings, client=stack.client)
    return dataclasses.replace(services, clock=cloud.clock, jitter=lambda low, high: high)
