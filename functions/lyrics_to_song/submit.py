"""Submit: a job's row written with its share of the caps, then exactly one paid API
call; over a cap, the job is held instead (intake.py sorts what comes in into jobs)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .admission import admit
from .announce import ended
from .data.caps import MAX_QUEUE_DELAY_SECONDS
from .data.rows import DEFAULT_TENANT, Hold
from .data.task_table import AlreadyKnown, Started, StartResult
from .errors import (
    Cap,
    InvalidRequest,
    OverBudget,
    RefusedCallback,
    RetryLater,
)
from .observability import count, logger
from .payment import Outcome, pay, row_writer
from .places import live_holders
from .services import Services
from .song_request import MAX_TASK_TOKEN_CHARS, SongRequest, same_song
from .sources import Job, reused_job
from .tenants import is_tenant
from .texts import kept_error

CAP_METRICS = {
    Cap.DAILY: "DeferredByDailyCap",
    Cap.IN_FLIGHT: "DeferredByInFlightCap",
    Cap.TENANT_DAILY: "DeferredByTenantCap",
    Cap.TENANT_IN_FLIGHT: "DeferredByTenantCap",
    Cap.TENANT_MONTHLY: "DeferredByTenantBudget",
    Cap.PAUSED: "DeferredByPause",
    Cap.LINE: "DeferredBehindLine",
}


def start_within_caps(
    services: Services, job_id: str, tenant: str, write: Callable[[float], StartResult]
) -> Started | None:
    """Write the SUBMITTING row (`write(now)`) with its share of the caps: the stack's,
    and its tenant's own if it has some.

    None when the job already has a row. When an in-flight cap refuses, the places of
    jobs that have ended since are freed and the write is tried again; a cap still
    reached raises OverBudget, and nothing was written or paid.
    """
    freed: set[Cap] = set()
    while True:
        now = services.clock()
        result = write(now)
        if isinstance(result, Started):
            return result
        if isinstance(result, AlreadyKnown):
            return None
        if result.cap in (Cap.IN_FLIGHT, Cap.TENANT_IN_FLIGHT) and result.cap not in freed:
            freed.add(result.cap)
            if _room_in_flight(services, tenant if result.cap is Cap.TENANT_IN_FLIGHT else None):
                continue
        over = services.budget.over(result.cap, now, tenant)
        logger.warning(
            "spending cap reached: the job is held, unpaid",
            extra={
                "cap": over.cap.value,
                "tenant": tenant,
                "reason": str(over),
                "retry_in": over.retry_after,
            },
        )
        count(CAP_METRICS[over.cap])
        raise over


def paused(services: Services, tenant: str) -> OverBudget:
    """Why a paused tenant's new job waits: held, unpaid, until `tenants resume` (which
    tries its held jobs at once) or the next look."""
    count(CAP_METRICS[Cap.PAUSED])
    reason = f"tenant {tenant} is paused by the stack's operator"
    logger.info("tenant paused: the job is held, unpaid", extra={"tenant": tenant})
    return OverBudget(Cap.PAUSED, reason, MAX_QUEUE_DELAY_SECONDS)


def behind(tenant: str) -> OverBudget:
    """Why a new job joins its tenant's line rather than start: earlier ones wait there
    (first in, first out: docs/producers.md, Held jobs)."""
    count(CAP_METRICS[Cap.LINE])
    return OverBudget(Cap.LINE, f"earlier jobs of tenant {tenant} wait for a place", 0)


def _room_in_flight(services: Services, tenant: str | None) -> bool:
    """Drop the in-flight holders (the stack's, or a tenant's) whose rows say they ended;
    True if a place is free now, whoever freed it (another record may have dropped the
    ended ones between this one's refusal and its look: it must not wait for nothing)."""
    live = live_holders(services, tenant)
    if tenant is None:
        cap = services.budget.in_flight
    else:
        caps = services.budget.caps_of(tenant)
        cap = caps.in_flight if caps else 0
    return len(live) < cap


def join_line(
    services: Services,
    job: Job,
    request: SongRequest,
    why: OverBudget,
    *,
    request_json: str,
    callback_url: str | None,
    created_at: float | None,
) -> bool:
    """Put a new job in its tenant's line (data/line.py), unpaid: it starts when a place
    is free and its turn comes (admission.py), with no reminder of its own. False when
    its row could not take the hold (another copy started or ended it meanwhile).

    The row is written before the tenant is marked as waiting, so an admission that
    sees the mark finds the row."""
    since = services.clock() if created_at is None else created_at
    held = Hold(why.cap.value, str(why), 0.0, since, uuid.uuid4().hex)
    written = services.table.hold(
        job.job_id,
        held,
        source=job.source,
        source_name=job.source_name,
        request_json=request_json,
        model=request.model,
        tenant=request.tenant,
        callback_url=callback_url,
        request_id=job.request_id,
        task_token=request.task_token is not None,
    )
    if written:
        services.line.mark(request.tenant, services.clock())
        logger.info("job waits in its tenant's line", extra={"reason": held.reason})
    return written


def reject(
    services: Services,
    job: Job,
    reason: str,
    tenant: Any = DEFAULT_TENANT,
    callback_url: Any = None,
    *,
    asked: Mapping[str, Any] | None = None,
) -> Outcome:
    """End a job whose input is unusable; `tenant` and `callback_url`, the ones it
    named, if they are usable (a caller outside AWS hears why through its webhook), and
    the Step Functions task in `asked` (the request as sent), if this stack may answer it."""
    now = services.clock()
    logger.warning("job rejected", extra={"reason": kept_error(reason), "source": job.source})
    owner = tenant if is_tenant(tenant) else DEFAULT_TENANT
    hook = _usable_callback(services, callback_url)
    if hook is not None and not services.refusal_hooks.take(owner, now):
        logger.warning("refusal webhooks of this tenant's hour spent: none for this one")
        count("RefusalWebhooksDropped")
        hook = None
    row = services.table.reject(
        job.job_id,
        source=job.source,
        source_name=job.source_name,
        error=reason,
        now=now,
        lease_seconds=services.settings.submit_lease_seconds,
        tenant=owner,
        callback_url=hook,
        request_json=_answerable_task(services, asked or {}),
        request_id=job.request_id,
    )
    if row is None:
        return Outcome.DUPLICATE
    count("SongsRejected")
    ended(services, row)
    return Outcome.REJECTED


def _callback_url(
    services: Services, own: str | None, default: str | None = None, tenant: str = DEFAULT_TENANT
) -> str | None:
    """The job's callback: its own, else its tenant's default; checked, text and
    addresses, before anything is paid (RefusedCallback says why not)."""
    url = own or default
    if url is None:
        return None
    where = "'callback_url'" if own else f"tenant {tenant}'s default callback_url"
    if services.settings.webhook_queue_url is None:
        raise RefusedCallback(f"{where} is set, but this stack sends no webhooks")
    rules = services.settings.callback_rules
    checked = rules.check_url(url, where)
    rules.check_resolved(checked, services.resolve, where)
    return checked


def _answerable_task(services: Services, asked: Mapping[str, Any]) -> str | None:
    """What a rejected job keeps so the task waiting for it hears why: its token and state
    machine, when they are well formed and the state machine is one this stack answers."""
    token, machine = asked.get("task_token"), asked.get("state_machine")
    if not (isinstance(token, str) and 0 < len(token) <= MAX_TASK_TOKEN_CHARS):
        return None
    if machine not in services.settings.callback_state_machines:
        return None
    return json.dumps({"task_token": token, "state_machine": machine})


def _refused_task(services: Services, request: SongRequest) -> str | None:
    """Why the request's Step Functions task may not wait for its song, if it may not
    (docs/step-functions.md): before anything is paid."""
    if request.task_token is None:
        return None
    allowed = services.settings.callback_state_machines
    if not allowed:
        return "'task_token' is given, but this stack answers no Step Functions tasks"
    if request.state_machine not in allowed:
        return (
            f"state machine {request.state_machine} is not one this stack answers "
            "(CallbackStateMachines)"
        )
    if services.settings.webhook_queue_url is None:
        return "'task_token' is given, but this stack has no webhook function to answer it"
    return None


def _usable_callback(services: Services, url: Any) -> str | None:
    """A rejected request's callback, if it is one that may be called; else None."""
    if url is None:
        return None
    try:
        return _callback_url(services, url)
    except (InvalidRequest, RetryLater):
        return None


def submit_request(
    services: Services, job: Job, request: SongRequest, created_at: float | None = None
) -> Outcome:
    """Write the row, then pay: the order that makes a redelivery harmless. Over a cap,
    the job is HELD instead (`created_at`: when it was first held)."""
    logger.thread_safe_append_keys(job_id=job.job_id)
    request_json = json.dumps(request.as_item(), ensure_ascii=False, sort_keys=True)
    terms = services.budget.terms_of(request.tenant)
    if not terms.known:
        count("RequestsRefusedForTenant")
        reason = (
            f"invalid song request: tenant {request.tenant} is not a tenant of this stack "
            "(its operator adds one with `lyrics-to-song tenants add`)"
        )
        return reject(services, job, reason, DEFAULT_TENANT, asked=request.as_item())
    try:
        callback_url = _callback_url(
            services, request.callback_url, terms.callback_url, request.tenant
        )
    except RefusedCallback as exc:
        reason = f"invalid song request: {exc}"
        return reject(services, job, reason, request.tenant, asked=request.as_item())
    refused = _refused_task(services, request)
    if refused is not None:
        return reject(services, job, f"invalid song request: {refused}", request.tenant)
    try:
        if terms.paused:
            raise paused(services, request.tenant)
        if terms.waiting:
            raise behind(request.tenant)
        attempt = start_within_caps(
            services,
            job.job_id,
            request.tenant,
            row_writer(
                services,
                job,
                request,
                caps=terms.caps,
                callback_url=callback_url,
                created_at=created_at,
                request_json=request_json,
            ),
        )
    except OverBudget as over:
        if not join_line(
            services,
            job,
            request,
            over,
            request_json=request_json,
            callback_url=callback_url,
            created_at=created_at,
        ):
            return already_known(services, job, request, request_json)
        if over.cap is Cap.LINE:
            admit(services, if_room=True)  # a place may be free for its tenant's line
        return Outcome.HELD
    if attempt is None:
        return already_known(services, job, request, request_json)
    return pay(services, job, attempt, request)


def already_known(services: Services, job: Job, request: SongRequest, request_json: str) -> Outcome:
    """The job has a row: a copy of its request is a duplicate, nothing paid. A
    `request_id` its tenant used for another request is refused, unpaid, in a job of its
    own that says so; the first job is left as it is (docs/inputs.md: Job identity)."""
    existing = services.table.get(job.job_id)
    state = existing.state.value if existing else None
    if job.request_id is None or existing is None or same_song(existing.request_json, request_json):
        logger.info("job already known: not submitted again", extra={"state": state})
        count("DuplicatesSkipped")
        return Outcome.DUPLICATE
    count("RequestIdsReused")
    reason = (
        f"invalid song request: request_id {job.request_id!r} of tenant {request.tenant} "
        f"was used for another request (job {existing.job_id}, {state}); "
        "a new song needs a new request_id"
    )
    refusal = reused_job(job, request.tenant, request_json)
    return reject(services, refusal, reason, request.tenant, asked=request.as_item())
