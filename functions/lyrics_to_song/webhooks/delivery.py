"""The webhook function's work: one signed POST per attempt, and what comes of it
(docs/webhooks.md: Delivery).

What is sent, and where, is the job's row's (its callback_url, the body kept when the
webhook was queued), signed with its tenant's secret (signing.py). A 2xx ends a webhook
as delivered, a 410 Gone as refused by the receiver, and so does an address that may
not be called. Anything else (any other answer, a redirect, never followed, a timeout,
no connection) is tried again after a growing, jittered wait, or the receiver's
Retry-After if longer, until the retry window since the ending has passed: the first
attempt to fail after that gives it up. The row records every attempt; the song, the
notification and the job's state are never touched.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..config import WebhookSettings
from ..data.receivers import Health, Receivers
from ..data.rows import DEFAULT_TENANT, Row, Webhook, WebhookState
from ..data.task_table import TaskTable
from ..data.webhook_keys import WebhookKeys, WebhookKeyStore
from ..data.webhook_rows import WebhookAttempt
from ..errors import RefusedCallback
from ..http_transport import NO_ENCODING, call_deadline, retry_after
from ..observability import count, logger
from ..texts import without_queries
from .queue import WebhookMessage
from .signing import legacy_secret, signed_headers, tenant_secret

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# The longest wait between two attempts, and the longest Retry-After honoured as asked
# (SQS hides a message for at most 12 hours).
MAX_RETRY_SECONDS = 5 * 3600
MAX_RETRY_AFTER_SECONDS = 6 * 3600
USER_AGENT = "lyrics-to-song-webhooks/1"
ENDED_METRICS = {
    WebhookState.DELIVERED: "WebhooksDelivered",
    WebhookState.REFUSED: "WebhooksRefused",
    WebhookState.GIVEN_UP: "WebhooksGivenUp",
}


@dataclass
class WebhookServices:
    settings: WebhookSettings
    table: TaskTable
    keys: WebhookKeyStore | None  # the generations of tenants' secrets; None: never rotated
    sqs: SQSClient
    http: httpx.Client  # with every connection's address checked, redirects not followed
    secret: Callable[[], str]  # the stack's root key; tenants' secrets are derived from it
    states: Callable[[], Any]  # the Step Functions client, made on first use
    # The root key's previous version (after `webhook rotate-root`), if it has one.
    previous_secret: Callable[[], str | None] = field(default=lambda: None)
    # The Secrets Manager client, made on first use: the operator's requests alone need it.
    secrets: Callable[[], Any] = field(default=lambda: None)
    clock: Callable[[], float] = field(default=time.time)
    # The webhook-timestamp a receiver checks against its own clock: the wall's, always.
    wall: Callable[[], float] = field(default=time.time)
    jitter: Callable[[float, float], float] = field(default=random.uniform)
    # Which receivers do not answer (data/receivers.py); None: every one is tried.
    receivers: Receivers | None = None


@dataclass(frozen=True)
class Answer:
    """What one POST came to."""

    state: WebhookState  # PENDING: worth trying again
    text: str
    retry_after: float | None = None
    seconds: float = 0.0  # how long the POST took
    answered: bool = True  # False: a timeout, or no connection (the receiver may be down)


def deliver(services: WebhookServices, message: WebhookMessage) -> float | None:
    """One attempt; the seconds until the next one, or None when there is none to make
    (delivered, refused, given up, or no longer this message's to make)."""
    logger.thread_safe_append_keys(job_id=message.job_id, delivery_id=message.delivery_id)
    row = services.table.get(message.job_id)
    hook = row.webhook if row else None
    if hook is None or hook.delivery_id != message.delivery_id or hook.state.ended:
        logger.info(
            "webhook already settled, or its job is gone: nothing to send",
            extra={"webhook_state": hook.state.value if hook else None},
        )
        return None
    now = services.clock()
    assert row is not None
    body = hook.body
    if body is None and message.url is not None and message.url == row.callback_url:
        body = message.body  # queued by an earlier version
    if body is None or row.callback_url is None:
        logger.error("webhook without a body or a callback on its row: dropped")
        count("WebhookMessagesUnreadable")
        return None
    receiver = receiver_of(row.callback_url)
    health = services.receivers.health(receiver) if services.receivers else Health()
    held_back = _held_back(services, receiver, health, now)
    if held_back is not None and now < hook.queued_at + services.settings.retry_window_seconds:
        logger.info("its receiver did not answer lately: this webhook waits, not tried")
        count("WebhooksHeldForReceiver")
        return held_back
    if held_back is not None:
        answer = Answer(WebhookState.PENDING, f"not tried: {receiver} did not answer lately")
    else:
        delivery = Delivery(message.delivery_id, row.callback_url, body, _secrets(services, row))
        answer = post(services, delivery)
        _note(services, receiver, health, answer, now)
    attempt, wait = _verdict(services.settings, services.jitter, hook, answer, now)
    if services.table.webhook_attempted(message.job_id, hook, attempt) is None:
        logger.info("another copy of this webhook recorded an attempt first: this one stops")
        return None
    log = {"attempts": hook.attempts + 1, "answer": answer.text, "url": _shown(row.callback_url)}
    if attempt.state is WebhookState.PENDING:
        logger.warning("webhook not delivered: tried again later", extra={**log, "wait": wait})
        count("WebhookRetries")
        return wait
    count(ENDED_METRICS[attempt.state])
    if attempt.state is WebhookState.DELIVERED:
        logger.info("webhook delivered", extra=log)
    elif attempt.state is WebhookState.REFUSED:
        logger.warning("webhook refused by its receiver: not tried again", extra=log)
    else:
        logger.error("webhook given up: the retry window has passed", extra=log)
    return None


def receiver_of(url: str) -> str:
    """A callback's receiver: its host and port."""
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"


def _held_back(
    services: WebhookServices, receiver: str, health: Health, now: float
) -> float | None:
    """The wait before this webhook's next look, while its receiver is down and another
    attempt probes it; None: try now (up, or this attempt is the probe)."""
    if services.receivers is None or health.failures == 0:
        return None
    if health.down_until > now:
        return round(health.down_until - now + services.jitter(1, 5))
    lease = services.settings.timeout_seconds + 5
    if services.receivers.take_probe(receiver, health, now, lease):
        return None
    return round(lease + services.jitter(1, 5))


def _note(
    services: WebhookServices, receiver: str, health: Health, answer: Answer, now: float
) -> None:
    """Mark the receiver down after no answer, up again after any."""
    if services.receivers is None:
        return
    if not answer.answered:
        until = services.receivers.failed(receiver, health, now)
        logger.warning(
            "receiver did not answer: its webhooks wait",
            extra={"receiver": receiver, "until": until},
        )
        count("ReceiversDown")
    elif health.failures:
        services.receivers.answered(receiver)
        logger.info("receiver answers again", extra={"receiver": receiver})


def _shown(url: str) -> str:
    """The URL for a log line, without its query: receivers often put a token there."""
    return str(httpx.URL(url).copy_with(query=None))


def _secrets(services: WebhookServices, row: Row) -> list[str]:
    """The secrets that sign for the job's tenant now (docs/webhooks.md: Checking a
    webhook): its current one; during its rotation the one before; during the root key's
    rotation, its current one of the previous root; and for `default` after an upgrade,
    for a while, the root itself, the secret its receivers held before."""
    now = services.clock()
    keys = services.keys.keys(row.tenant) if services.keys else WebhookKeys()
    root = services.secret()
    found = [tenant_secret(root, row.tenant, g) for g in keys.signing(now)]
    if services.keys is not None and now < services.keys.root_previous_until():
        previous = services.previous_secret()
        if previous is not None:
            found.append(tenant_secret(previous, row.tenant, keys.generation))
    if row.tenant == DEFAULT_TENANT and now < keys.legacy_until:
        found.append(legacy_secret(root))
    return found


@dataclass(frozen=True)
class Delivery:
    """What one attempt sends: the row's, signed with its tenant's secrets."""

    delivery_id: str
    url: str
    body: str
    secrets: list[str]


def post(services: WebhookServices, delivery: Delivery) -> Answer:
    """POST the body, signed for this attempt's time; the receiver's body is not read."""
    body = delivery.body.encode()
    stamp = int(services.wall())
    headers = {
        **signed_headers(delivery.secrets, delivery.delivery_id, stamp, body),
        "User-Agent": USER_AGENT,
        **NO_ENCODING,
    }
    started = time.monotonic()
    answer = _send(services, delivery.url, body, headers)
    return dataclasses.replace(answer, seconds=round(time.monotonic() - started, 3))


def _send(services: WebhookServices, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    timeout = services.settings.timeout_seconds
    try:
        with (
            call_deadline(timeout),  # the whole POST, however slowly the receiver answers
            services.http.stream("POST", url, content=body, headers=headers) as reply,
        ):
            return _answer(reply)
    except RefusedCallback as exc:
        return Answer(WebhookState.REFUSED, f"not sent: {exc}")
    except httpx.TimeoutException:
        return Answer(WebhookState.PENDING, f"no answer within {timeout:g} s", answered=False)
    except httpx.ConnectError as exc:
        text = without_queries(f"could not connect: {exc}")[:300]
        return Answer(WebhookState.PENDING, text, answered=False)
    except httpx.HTTPError as exc:
        text = f"no usable answer: {type(exc).__name__} {exc}"
        return Answer(WebhookState.PENDING, without_queries(text)[:300])


def _answer(reply: httpx.Response) -> Answer:
    status = f"{reply.status_code} {reply.reason_phrase}".strip()
    if reply.is_success:
        return Answer(WebhookState.DELIVERED, status)
    code = reply.status_code
    if code == 410:  # Gone: the receiver asks for no more
        return Answer(WebhookState.REFUSED, status)
    if 300 <= code < 400:
        where = without_queries(reply.headers.get("location", ""))[:200]
        status = f"{status} to {where} (redirects are not followed)"
    return Answer(WebhookState.PENDING, status, retry_after(reply.headers.get("retry-after")))


def _verdict(
    settings: WebhookSettings,
    jitter: Callable[[float, float], float],
    hook: Webhook,
    answer: Answer,
    now: float,
) -> tuple[WebhookAttempt, float]:
    """What to record of the attempt, and the wait before the next one."""
    if answer.state is not WebhookState.PENDING:
        return WebhookAttempt(answer.state, answer.text, now, seconds=answer.seconds), 0.0
    window_ends = hook.queued_at + settings.retry_window_seconds
    if now >= window_ends:
        given_up = WebhookAttempt(WebhookState.GIVEN_UP, answer.text, now, seconds=answer.seconds)
        return given_up, 0.0
    wait = next_wait(settings.first_retry_seconds, hook.attempts + 1, jitter)
    wait = min(wait, max(1.0, window_ends - now))  # the last try falls at the window's end
    if answer.retry_after is not None:
        wait = max(wait, min(answer.retry_after, MAX_RETRY_AFTER_SECONDS))
    wait = round(wait)
    pending = WebhookAttempt(
        WebhookState.PENDING, answer.text, now, next_at=now + wait, seconds=answer.seconds
    )
    return pending, wait


def next_wait(first: float, attempts: int, jitter: Callable[[float, float], float]) -> float:
    """After the n-th failed attempt: `first` doubled n-1 times, at most an hour, of
    which a random half is taken off (so receivers coming back are not met all at once)."""
    full = min(MAX_RETRY_SECONDS, first * 2 ** min(attempts - 1, 20))
    return max(1.0, jitter(full / 2, full))
