"""Lambda entry point of the submit function: SQS batches, or S3 notifications directly."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .config import load_settings
from .observability import count, logger, metrics, tracer
from .services import Services, build_services
from .sources import is_s3_notification
from .submit import handle_message, handle_s3_event

# Leave room for one more API call (its read timeout) plus the row writes.
MIN_REMAINING_MS = 40_000

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def services() -> Services:
    """Settings checked and clients built once per cold start."""
    return build_services(load_settings())


class NotEnoughTime(Exception):
    """Too little of the invocation is left to start a paid call: the record goes back."""


def _record_handler(context: LambdaContext) -> Any:
    def handle(record: SQSRecord) -> list[str]:
        logger.remove_keys(["job_id", "task_id"])
        if context.get_remaining_time_in_millis() < MIN_REMAINING_MS:
            raise NotEnoughTime("too little time left in this invocation")
        outcomes = handle_message(services(), record.body, record.message_id)
        return [o.value for o in outcomes]

    return handle


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    count("RecordsReceived", len(event.get("Records", [])))
    if is_s3_notification(event):
        outcomes = handle_s3_event(services(), event)
        return {"outcomes": [o.value for o in outcomes]}
    response = process_partial_response(
        event=event, record_handler=_record_handler(context), processor=processor, context=context
    )
    return dict(response)
