"""Lambda entry point of the poll function, invoked by the EventBridge Scheduler schedule."""

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


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = watch(services(), context.get_remaining_time_in_millis)
    count("TasksDue", report.due)
    logger.info("poll run done", extra=dataclasses.asdict(report))
    return dataclasses.asdict(report)
