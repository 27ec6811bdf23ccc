"""Submit: a job's row written with its share of the caps, then exactly one paid API
call; over a cap, the job is held instead (intake.py sorts what comes in into jobs)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from .announce import ended
from .data.caps import MAX_QUEUE_DELAY_SECONDS
from .data.rows import DEFAULT_TENANT, Hold, JobState
from .data.task_table import AlreadyKnown, Started, StartResult
from .errors import (
    Cap,
    ErrorKind,
    InvalidRequest,
    MusicApiError,
    OverBudget,
    RefusedCallback,
    RetryLater,
)
from .observability import count, credits_spent, logger
from .services import Services
from .song_request import MAX_TASK_TOKEN_CHARS, SongRequest, same_song
from .sources import Job, held_retry, reused_job
from .tenants import is_tenant
from .texts import kept_error

CAP_METRICS = {
    Cap.DAILY: "DeferredByDailyCap",
    Cap.IN_FLIGHT: "DeferredByInFlightCap",
    Cap.TENANT_DAILY: "DeferredByTenantCap",
    Cap.TENANT_IN_FLIGHT: "DeferredByTenantCap",
    Cap.TENANT_MONTHLY: "DeferredByTenantBudget",
    Cap.PAUSED: "DeferredByPause",
}


class Outcome(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # the job already has a row: nothing paid
    REJECTED = "rejected"  # unusable input, or the API refused it: FAILED, notified, unpaid
    UNKNOWN = "unknown"  # the submission may have reached the API: UNKNOWN, notified, not resent
    SKIPPED = "skipped"  # nothing to do (s3:TestEvent, a resubmit that may not be)
    HELD = "held"  # a spending cap is reached: HELD, unpaid, tried again later


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


def _room_in_flight(services: Services, tenant: str | None) -> bool:
    """Drop the in-flight holders (the stack's, or a tenant's) whose rows say they ended;
    True if a place is free now, whoever freed it (another record may have dropped the
    ended ones between this one's refusal and its look: it must not wait for nothing)."""
    holders = services.budget.holders(tenant)
    ended = holders - services.table.in_flight(holders)
    services.budget.drop(ended, tenant)
    if ended:
        logger.info(
            "freed the in-flight places of ended jobs",
            extra={"freed": len(ended), "tenant": tenant},
        )
    if tenant is None:
        cap = services.budget.in_flight
    else:
        caps = services.budget.caps_of(tenant)
        cap = caps.in_flight if caps else 0
    return len(holders - ended) < cap


def hold(services: Services, job_id: str, over: OverBudget, write: Callable[[Hold], bool]) -> bool:
    """Hold a job a cap refused (`write` records the hold on its row) and remind the
    queue to try it again when the cap may allow it. False when the row could not take
    the hold (another copy of the message started or ended the job meanwhile).

    The reminder is sent first, with the hold's token: a crash before the hold is
    written leaves a reminder no row matches (dropped), and the message being worked
    comes back and tries again.
    """
    now = services.clock()
    held = Hold(over.cap.value, str(over), now + over.retry_after, now, uuid.uuid4().hex)
    defer(services, held_retry(job_id, held.token), over.retry_after)
    if not write(held):
        return False
    logger.info("job held by a cap", extra={"reason": held.reason, "retry_in": over.retry_after})
    return True


def defer(services: Services, body: str, delay: int) -> None:
    """Put a reminder on the jobs queue, to be seen in `delay` seconds.

    A new message starts its receive count again, so a wait of hours (the daily cap)
    never ends in the dead-letter queue.
    """
    services.sqs.send_message(
        QueueUrl=services.settings.jobs_queue_url, MessageBody=body, DelaySeconds=delay
    )


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
    row = services.table.reject(
        job.job_id,
        source=job.source,
        source_name=job.source_name,
        error=reason,
        now=now,
        lease_seconds=services.settings.submit_lease_seconds,
        tenant=tenant if is_tenant(tenant) else DEFAULT_TENANT,
        callback_url=_usable_callback(services, callback_url),
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
        attempt = start_within_caps(
            services,
            job.job_id,
            request.tenant,
            lambda now: services.table.start(
                job.job_id,
                source=job.source,
                source_name=job.source_name,
                request_json=request_json,
                model=request.model,
                now=now,
                lease_seconds=services.settings.submit_lease_seconds,
                reservation=services.budget.reserve(
                    job.job_id, now, terms.caps, services.settings.price.credits
                ),
                tenant=request.tenant,
                price=services.settings.price,
                callback_url=callback_url,
                created_at=created_at,
                request_id=job.request_id,
            ),
        )
    except OverBudget as over:
        written = hold(
            services,
            job.job_id,
            over,
            lambda held: services.table.hold(
                job.job_id,
                held,
                source=job.source,
                source_name=job.source_name,
                request_json=request_json,
                model=request.model,
                tenant=request.tenant,
                callback_url=callback_url,
                request_id=job.request_id,
            ),
        )
        return Outcome.HELD if written else already_known(services, job, request, request_json)
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


def pay(services: Services, job: Job, attempt: Started, request: SongRequest) -> Outcome:
    """Call the API for a job whose SUBMITTING row this attempt holds."""
    try:
        task_id = services.api.submit(request)
    except MusicApiError as exc:
        return _submission_failed(services, job, attempt, request, exc)
    except Exception as exc:
        # A bug or an unforeseen error mid-call: whether the API got it is not known.
        logger.exception("unexpected error during the submission")
        reason = f"outcome unknown: unexpected {type(exc).__name__} during the API call"
        return _settle(services, job, attempt, request, state=JobState.UNKNOWN, error=reason)
    logger.thread_safe_append_keys(task_id=task_id)
    now = services.clock()
    first_due = now + services.settings.first_poll_delay_seconds
    if services.table.submitted(
        job.job_id,
        attempt.attempt,
        task_id=task_id,
        now=now,
        first_due=first_due,
    ):
        _wake_watch(services, job.job_id, first_due)
    else:
        # Only possible if this call outlived the submit lease and the row was settled
        # as UNKNOWN meanwhile: keep the task id where an operator will find it.
        logger.error("submitted, but the row was already settled; see task_id")
    count("SongsSubmitted")
    credits_spent(services.settings.price.credits, request.tenant)
    logger.info("song submitted", extra={"source": job.source, "model": request.model})
    return Outcome.SUBMITTED


def _wake_watch(services: Services, job_id: str, first_due: float) -> None:
    """Wake a poll run when none will watch by the song's first check, rather than leave
    it to the next scheduled run (docs/how-it-works.md: When songs are checked). Best effort: the
    schedule comes within a minute anyway."""
    url = services.settings.poll_wake_queue_url
    try:
        if url is None or services.poll_watch.until() >= first_due:
            return
        services.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"wake": job_id}))
    except ClientError as exc:
        logger.warning("could not wake a poll run; the schedule will", extra={"error": repr(exc)})


def _submission_failed(
    services: Services, job: Job, attempt: Started, request: SongRequest, exc: MusicApiError
) -> Outcome:
    table = services.table
    log = {"api_status": exc.status, "error": str(exc), "raw_body": exc.raw_body}
    if exc.maybe_accepted:
        # It may have been accepted and billed: never retry blindly (docs/music-api.md, "Errors").
        logger.error("submission outcome unknown: not retried", extra=log)
        reason = f"outcome unknown: {exc}"
        return _settle(services, job, attempt, request, state=JobState.UNKNOWN, error=reason)
    # From here on the API surely did not take the job: nothing was paid.
    services.budget.refund(attempt.day, attempt.tenant, attempt.monthly)
    if exc.kind is ErrorKind.PERMANENT:
        logger.warning("API refused the request", extra=log)
        return _settle(
            services,
            job,
            attempt,
            request,
            state=JobState.FAILED,
            error=f"the API refused the request: {exc}",
        )
    table.release(job.job_id, attempt.attempt)
    if exc.kind is ErrorKind.ACCOUNT:
        logger.error(
            "API account problem: the job waits in the queue until the key or credits are fixed",
            extra=log,
        )
        count("AccountErrors")
    else:
        logger.warning("API busy or unreachable: the job goes back to the queue", extra=log)
        count("TransientErrors")
    raise RetryLater(str(exc))


def _settle(
    services: Services,
    job: Job,
    attempt: Started,
    request: SongRequest,
    *,
    state: JobState,
    error: str,
) -> Outcome:
    """End a submission that cannot go on; announced unless another run settled it first."""
    row = services.table.settle(
        job.job_id,
        attempt.attempt,
        state,
        error=error,
        now=services.clock(),
        lease_seconds=services.settings.submit_lease_seconds,
        tenant=request.tenant,
        model=request.model,
        price=services.settings.price,
    )
    if row is not None:
        ended(services, row)
    return Outcome.UNKNOWN if state is JobState.UNKNOWN else Outcome.REJECTED
