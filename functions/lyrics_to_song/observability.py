"""Logger, metrics and tracer shared by both functions (Powertools)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = "lyrics-to-song"
NAMESPACE = "LyricsToSong"
Handler = TypeVar("Handler", bound=Callable[..., Any])

logger = Logger(service=SERVICE)
# httpx logs every request's URL at INFO, and Lambda's JSON logging sets the root logger
# to INFO: presigned audio links and callback URLs carry secrets in their queries.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Both handlers count something on every call; an empty flush means metrics are disabled.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


class HandlerTracer(Protocol):
    """What the handlers use of a tracer."""

    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler: ...


class Untraced:
    """Stands in for Powertools' Tracer while detailed tracing is off."""

    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler:
        return lambda_handler


def detailed_tracing(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in ("true", "1")


def _tracer() -> HandlerTracer:
    """Powertools' Tracer, only when detailed tracing is on (template: DetailedTracing).

    It loads the X-Ray SDK, whose recorder builds two botocore clients at import: about
    a third of each cold start. Lambda's own active tracing records every invocation
    without it.
    """
    if not detailed_tracing():
        return Untraced()
    from aws_lambda_powertools import Tracer

    # Its decorator returns the handler wrapped, with the same signature.
    return cast(HandlerTracer, Tracer(service=SERVICE))


tracer = _tracer()


def _add(name: str, unit: MetricUnit, value: float) -> None:
    # With metrics disabled, Powertools (3.37) still keeps every value, never clears them,
    # and prints them all once a metric holds 100: nothing is added then.
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=unit, value=value)


def count(name: str, value: int = 1) -> None:
    _add(name, MetricUnit.Count, value)


def seconds(name: str, value: float) -> None:
    _add(name, MetricUnit.Seconds, value)


def credits_spent(credits: float, tenant: str) -> None:
    """`CreditsSpent` on its own, with the tenant as a property rather than a dimension:
    logs and Logs Insights can split by it, while CloudWatch keeps one metric, whatever
    the number of tenants (docs/producers.md)."""
    if is_metrics_disabled():
        return
    with single_metric(
        name="CreditsSpent",
        unit=MetricUnit.Count,
        value=credits,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_metadata(key="tenant", value=tenant)
