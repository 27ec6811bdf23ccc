"""Lambda entry point of the submit function: SQS batches, or S3 notifications directly."""

from __future__ import annotations

import asyncio
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

from .config import load_settings
from .errors import RetryLater
from .intake import handle_message, handle_s3_event
from .observability import count, logger, metrics, tracer
from .services import Services, build_services
from .sources import is_s3_notification

# Leave room for one more API call (its read timeout) plus the row writes.
MIN_REMAINING_MS = 40_000
# The records of a batch (at most 10) are submitted at once, each in its own thread.
BATCH_WORKERS = 10

processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_workers = ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="submit")


@cache
def services() -> Services:
    """Settings checked and clients built once per cold start."""
    return build_services(load_settings())


def _submit_record(record: SQSRecord, context: LambdaContext) -> list[str]:
    logger.thread_safe_clear_keys()
    try:
        if context.get_remaining_time_in_millis() < MIN_REMAINING_MS:
            raise RetryLater("too little time left in this invocation to start a paid call")
        sender = record.attributes.get("SenderId")  # SQS sets it: a producer cannot
        queue = services().settings.lyric_files_queue_arn
        from_bucket = queue is not None and record.event_source_arn == queue
        outcomes = handle_message(
            services(), record.body, record.message_id, sender, from_bucket=from_bucket
        )
        return [o.value for o in outcomes]
    finally:
        logger.thread_safe_clear_keys()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    count("RecordsReceived", len(event.get("Records", [])))
    if is_s3_notification(event):
        return {"outcomes": [o.value for o in handle_s3_event(services(), event)]}
    services()  # fail fast, once, on bad configuration

    async def record_handler(record: SQSRecord) -> list[str]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_workers, _submit_record, record, context)

    response = async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
