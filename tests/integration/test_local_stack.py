"""The local stack is built from template.yaml, not from a second description."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from local_cloud.stack import provision
from local_cloud.template import load_template
from tests.integration.moto_cloud import Cloud


def test_table_queues_and_notifications_come_from_the_template(cloud: Cloud) -> None:
    template = load_template()["Resources"]
    stack = cloud.stack
    table = stack.client("dynamodb").describe_table(TableName=stack.tasks_table)["Table"]
    indexes = template["TasksTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]} == {
        i["IndexName"]: i["KeySchema"] for i in indexes
    }
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
    assert {c["QueueArn"] for c in notification["QueueConfigurations"]} == {
        stack.arns["LyricFilesQueue"]
    }, "the queue S3 alone may send to, not the jobs queue producers send to"

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


def test_a_message_carries_the_sender_id_of_the_iam_user_or_role_that_sent_it(
    cloud: Cloud,
) -> None:
    """As SQS sets SenderId, which TenantPolicy=bound relies on (moto gives one to all)."""
    iam = cloud.stack.client("iam")
    user = iam.create_user(UserName="shop-producer")["User"]
    key = iam.create_access_key(UserName="shop-producer")["AccessKey"]
    role = iam.create_role(RoleName="acme-producer", AssumeRolePolicyDocument="{}")["Role"]
    session = cloud.stack.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="batch-7")[
        "Credentials"
    ]
    senders = {
        "user": {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": "x"},
        "role": {
            "aws_access_key_id": session["AccessKeyId"],
            "aws_secret_access_key": "x",
            "aws_session_token": session["SessionToken"],
        },
        "anyone": {},
    }
    queue = cloud.stack.jobs_queue_url
    cloud.stack.client("sqs").purge_queue(QueueUrl=queue)
    for name, credentials in senders.items():
        sqs = boto3.client("sqs", region_name="us-east-1", **credentials)
        sqs.send_message(QueueUrl=queue, MessageBody=name)
    received = cloud.stack.client("sqs").receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["SenderId"]
    )["Messages"]
    seen = {m["Body"]: m["Attributes"]["SenderId"] for m in received}
    assert seen["user"] == user["UserId"]
    assert seen["role"] == f"{role['RoleId']}:batch-7"
    assert seen["anyone"] == "AIDAIT2UOQQY3AUEKVGXU", "moto's own, for keys it did not make"
