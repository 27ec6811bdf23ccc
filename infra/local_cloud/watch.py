"""What a subscriber to the stack's notification topic sees, through an SQS queue."""

from __future__ import annotations

import json
from typing import Any

from .stack import Stack


def subscribe_queue(stack: Stack, name: str) -> str:
    """A new SQS queue subscribed to the notification topic; returns its URL."""
    sqs = stack.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    stack.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def read_envelopes(stack: Stack, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS envelope waiting on the queue, each deleted once read."""
    sqs = stack.client("sqs")
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def read_notifications(stack: Stack, queue_url: str) -> list[dict[str, Any]]:
    """Every notification waiting on the queue (the message the function published)."""
    return [json.loads(envelope["Message"]) for envelope in read_envelopes(stack, queue_url)]
