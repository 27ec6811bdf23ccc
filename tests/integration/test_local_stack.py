"""The local stack is built from template.yaml, not from a second description."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from moto import mock_aws

from local_cloud.stack import provision
from local_cloud.template import load_template
from tests.integration.moto_cloud import Cloud


def test_table_queues_and_notifications_come_from_the_template(cloud: Cloud) -> None:
    template = load_template()["Resources"]
    stack = cloud.stack
    table = stack.client("dynamodb").describe_table(TableName=stack.tasks_table)["Table"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert (
        index["KeySchema"]
        == template["TasksTable"]["Properties"]["GlobalSecondaryIndexes"][0]["KeySchema"]
    )
    ttl = stack.client("dynamodb").describe_time_to_live(TableName=stack.tasks_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"

    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.jobs_queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert attrs["VisibilityTimeout"] == str(
        template["JobsQueue"]["Properties"]["VisibilityTimeout"]
    )
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == stack.arns["JobsDeadLetterQueue"]

    notification = stack.client("s3").get_bucket_notification_configuration(
        Bucket=stack.lyrics_bucket
    )
    assert {c["QueueArn"] for c in notification["QueueConfigurations"]} == {stack.arns["JobsQueue"]}

    env = stack.environments["SubmitFunction"]
    assert env["TASKS_TABLE_NAME"] == stack.tasks_table
    assert env["AUDIO_BUCKET_NAME"] == stack.songs_bucket
    assert env["MUSIC_API_KEY_SECRET_ARN"] == stack.secret_arn
    assert stack.environments["PollFunction"]["POLL_LEASE_SECONDS"] == "300"


def test_detailed_tracing_is_off_unless_the_owner_asks() -> None:
    with mock_aws():
        default = provision(None, stack_name="quiet").environments["PollFunction"]
        detailed = provision(
            None, stack_name="traced", parameters={"DetailedTracing": "true"}
        ).environments["SubmitFunction"]
    assert default["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert detailed["POWERTOOLS_TRACE_DISABLED"] == "false"


@pytest.mark.parametrize(("disabled", "loaded"), [("true", False), ("false", True)])
def test_the_xray_sdk_is_loaded_only_for_detailed_tracing(disabled: str, loaded: bool) -> None:
    code = "import sys, lyrics_to_song.submit_handler; print('aws_xray_sdk' in sys.modules)"
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": disabled, "AWS_LAMBDA_FUNCTION_NAME": "t"}
    out = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(loaded)
