"""The functions' logic against moto (in-process), provisioned from template.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from local_cloud.emulator import MusicApiEmulator
from local_cloud.stack import Stack, provision
from lyrics_to_song.config import load_settings
from lyrics_to_song.music_api import MusicApiClient
from lyrics_to_song.services import Services, api_key_source
from lyrics_to_song.task_rows import Row, TaskTable
from support import FakeClock, s3_notification


@dataclass
class Cloud:
    stack: Stack
    services: Services
    emulator: MusicApiEmulator
    clock: FakeClock
    watch_url: str

    def notifications(self) -> list[dict[str, Any]]:
        """Everything the topic has published since the last call."""
        sqs = self.stack.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.watch_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                body = json.loads(envelope["Message"])
                body["_status_attribute"] = envelope["MessageAttributes"]["status"]["Value"]
                found.append(body)
                sqs.delete_message(QueueUrl=self.watch_url, ReceiptHandle=message["ReceiptHandle"])

    def rows(self) -> list[Row]:
        items = self.stack.client("dynamodb").scan(TableName=self.stack.tasks_table)["Items"]
        return [Row.from_item(item) for item in items]

    def only_row(self) -> Row:
        (row,) = self.rows()
        return row

    def put_lyrics(self, key: str, body: bytes, **kwargs: Any) -> dict[str, Any]:
        """Upload a lyric file; return the S3 notification the bucket would send."""
        s3 = self.stack.client("s3")
        s3.put_object(Bucket=self.stack.lyrics_bucket, Key=key, Body=body, **kwargs)
        head = s3.head_object(Bucket=self.stack.lyrics_bucket, Key=key)
        return s3_notification(self.stack.lyrics_bucket, key, head["ETag"].strip('"'), len(body))


@pytest.fixture
def cloud(
    clock: FakeClock, emulator: MusicApiEmulator, api: MusicApiClient, sleeps: list[float]
) -> Iterator[Cloud]:
    with mock_aws():
        stack = provision(endpoint_url=None)
        sm = stack.client("secretsmanager")
        sm.put_secret_value(SecretId=stack.secret_arn, SecretString=emulator.api_key)
        env = {**stack.environments["PollFunction"], "MUSIC_API_BASE_URL": "http://api.test"}
        settings = load_settings(env)
        services = Services(
            settings=settings,
            table=TaskTable(stack.client("dynamodb"), stack.tasks_table),
            s3=stack.client("s3"),
            sns=stack.client("sns"),
            # The same in-process transport, with the key read from the stack's secret.
            api=MusicApiClient(
                "http://api.test", api_key_source(settings, sm), http=api.http, sleep=sleeps.append
            ),
            clock=clock,
        )
        sqs = stack.client("sqs")
        watch_url = sqs.create_queue(QueueName="watch")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=watch_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stack.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn)
        yield Cloud(stack, services, emulator, clock, watch_url)
