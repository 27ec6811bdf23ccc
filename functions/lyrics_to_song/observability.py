"""Logger, metrics and tracer shared by both functions (Powertools)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "lyrics-to-song"
NAMESPACE = "LyricsToSong"
Handler = TypeVar("Handler", bound=Callable[..., Any])

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


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


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)
