"""Lambda entry point of the poll function: the schedule's runs, and the runs a
submission wakes through the poll-wake queue (SQS)."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .config import load_settings
from .observability import count, logger, metrics, tracer
from .poll import watch
from .services import Services, build_services


@cache
def services() -> Services:
    """Settings checked and clients built once per cold start."""
    return build_services(load_settings())


def _is_wake(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return isinstance(records, list) and any(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    woken = _is_wake(event)
    report = watch(services(), context.get_remaining_time_in_millis, woken=woken)
    count("TasksDue", report.due)
    result: dict[str, Any] = dataclasses.asdict(report)
    logger.info("poll run done", extra={**result, "woken": woken})
    if woken:
        result["batchItemFailures"] = []  # a wake is spent once a run has looked
    return result
