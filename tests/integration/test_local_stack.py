"""The local stack is built from template.yaml, not from a second description."""

from __future__ import annotations

import json

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
