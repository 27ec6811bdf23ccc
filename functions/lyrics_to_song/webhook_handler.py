"""Lambda entry point of the webhook function: batches from the webhooks queue (webhooks
to deliver, and answers owed to Step Functions tasks), the `Heartbeats` schedule (the
tasks' heartbeats while their songs are made), and the operator's requests for
tenants' secrets (webhooks/operator_requests.py).

A webhook to be tried again stays on the queue, hidden until its next attempt
(ChangeMessageVisibility), and is reported as this batch's failure; the others are
deleted by Lambda.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .config import load_webhook_settings
from .errors import RetryLater
from .observability import count, logger, metrics, tracer
from .services import build_webhook_services
from .webhooks.delivery import WebhookServices, deliver
from .webhooks.operator_requests import is_operator_request, operator_request
from .webhooks.queue import WebhookMessage
from .webhooks.task_callbacks import TaskMessage, answer
from .webhooks.task_heartbeats import send_heartbeats

# An attempt is not started with less time left than its timeout and this much more.
SPARE_MS = 5_000
# A message this invocation had no time for is seen again this soon.
NO_TIME_RETRY_SECONDS = 5

# The records of a batch are attempted at once, each in its own thread: a receiver that
# is slow to answer holds back no other receiver's webhook in its batch.
BATCH_WORKERS = 10

processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_workers = ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="webhook")


@cache
def services() -> WebhookServices:
    """Settings checked and clients built once per cold start."""
    return build_webhook_services(load_webhook_settings())


def _queue_of(record: SQSRecord) -> str:
    """The URL of the queue the record came from: the webhooks', or the task answers'."""
    settings = services().settings
    answers = settings.task_answer_queue_url
    if answers and record.event_source_arn.rsplit(":", 1)[-1] == answers.rsplit("/", 1)[-1]:
        return answers
    return settings.queue_url


def _wait_on_queue(record: SQSRecord, seconds: float) -> None:
    services().sqs.change_message_visibility(
        QueueUrl=_queue_of(record),
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=int(seconds),
    )
    raise RetryLater(f"next attempt in {int(seconds)} s")  # hidden until then


def _deliver_record(record: SQSRecord, context: LambdaContext) -> None:
    logger.thread_safe_clear_keys()
    needed_ms = services().settings.timeout_seconds * 1000 + SPARE_MS
    if context.get_remaining_time_in_millis() < needed_ms:
        _wait_on_queue(record, NO_TIME_RETRY_SECONDS)
    try:
        fields = json.loads(record.body)
        task = TaskMessage.read(fields)
        message = None if task else WebhookMessage.from_json(record.body)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.error("unreadable webhook message: dropped", extra={"error": repr(exc)})
        count("WebhookMessagesUnreadable")
        return
    try:
        if task is not None:
            found = services()
            retry = found.settings.first_retry_seconds
            wait = answer(found.table, found.states, task, retry)
        else:
            assert message is not None
            wait = deliver(services(), message)
    except Exception:
        # The table or the secret out of reach, a bug: tried again soon rather than after
        # the queue's 6 minutes; a message that keeps failing ends in the dead-letter queue.
        logger.exception("webhook attempt failed inside the function: tried again soon")
        count("WebhookErrors")
        wait = services().settings.first_retry_seconds
    if wait is not None:
        _wait_on_queue(record, wait)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    found = services()  # fail fast, once, on bad configuration
    if is_operator_request(event):  # lambda:InvokeFunction by the stack's operator
        return operator_request(found, event)
    if event.get("detail-type") == "Scheduled Event":
        beats = send_heartbeats(
            found.table,
            found.states,
            due_since=found.clock() - found.settings.heartbeat_stale_seconds,
            time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        return dataclasses.asdict(beats)

    async def record_handler(record: SQSRecord) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_workers, _deliver_record, record, context)

    response = async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
