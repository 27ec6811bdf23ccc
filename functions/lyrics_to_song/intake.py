"""What comes to the submit function, followed top-down: an SQS message (or S3
notifications sent straight to it) is read once, at the edge, into one typed value
(sources.py); `decide` turns each into one Decision (decisions.py) in one place; `act`
carries it out, at most one paid call each (submit.py, resubmit.py).

    message ──read_message──► request | lyric files | resubmit | cancel | held retry | admit
                              | unreadable
            ──decide────────► Submission | Refusal | Resubmission | Cancellation | Admission
                              | Nothing
            ──act───────────► submitted, held, duplicate, rejected, unknown, cancelled or skipped
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .admission import admit
from .cancel import cancel_for_tenant
from .data.rows import JobState
from .decisions import (
    Admission,
    Cancellation,
    Decision,
    Nothing,
    Refusal,
    Resubmission,
    Submission,
)
from .errors import InvalidRequest
from .file_jobs import decide_file
from .observability import count, logger
from .payment import Outcome
from .producers import queued_tenant, sender_home
from .resubmit import resubmit
from .services import Services
from .song_request import parse_request
from .sources import (
    AdmitNudge,
    CancelRequest,
    HeldRetry,
    Job,
    LyricObject,
    Message,
    QueuedRequest,
    ResubmitRequest,
    UnreadableMessage,
    job_id_for,
    lyric_objects,
    read_message,
)
from .submit import reject, submit_request

FORGED = (
    "a lyric-file notification came on the jobs queue, where producers send: only the "
    "lyrics bucket's own notifications make lyric-file jobs, so no file was read"
)


def handle_message(
    services: Services,
    body: str,
    message_id: str,
    sender: str | None = None,
    *,
    from_bucket: bool = False,
) -> list[Outcome]:
    """One SQS message (`sender`: its SenderId). `from_bucket`: it came from the queue S3
    alone may send to, the one path a lyric-file notification is acted on from
    (LYRIC_FILES_QUEUE_ARN); one from any other queue is refused as forged."""
    found = read_message(body, message_id, sender)
    if isinstance(found, list) and not from_bucket:
        forged = Job(job_id_for("forged:" + body), f"sqs:message/{message_id}", "message")
        count("ForgedNotificationsRefused")
        return [act(services, Refusal(forged, FORGED, sender_home(services, sender)))]
    values = found if isinstance(found, list) else [found]
    return [act(services, decide(services, value)) for value in values]


def handle_s3_event(services: Services, event: dict[str, Any]) -> list[Outcome]:
    """S3 notifications delivered to the function directly (not through a queue)."""
    return [act(services, decide(services, obj)) for obj in lyric_objects(event)]


def decide(
    services: Services,
    found: LyricObject | Message | None,
) -> Decision:
    """The one place where what came in becomes what is done."""
    if found is None:
        return Nothing("an s3:TestEvent")
    if isinstance(found, UnreadableMessage):
        return Refusal(found.job, found.reason)
    if isinstance(found, QueuedRequest):
        return decide_request(services, found)
    if isinstance(found, ResubmitRequest):
        return decide_resubmit(services, found)
    if isinstance(found, CancelRequest):
        return decide_cancel(services, found)
    if isinstance(found, HeldRetry):
        return decide_held(services, found)
    if isinstance(found, AdmitNudge):
        return Admission(found.why)
    return decide_file(services, found)


def act(services: Services, decision: Decision) -> Outcome:
    if isinstance(decision, Submission):
        return submit_request(services, decision.job, decision.request, decision.created_at)
    if isinstance(decision, Refusal):
        logger.thread_safe_append_keys(job_id=decision.job.job_id)
        return reject(
            services,
            decision.job,
            decision.reason,
            decision.tenant,
            decision.callback_url,
            asked=decision.asked,
        )
    if isinstance(decision, Resubmission):
        return resubmit(services, decision.job_id, decision.tenant)
    if isinstance(decision, Cancellation):
        logger.thread_safe_append_keys(job_id=decision.job_id)
        done = cancel_for_tenant(services, decision.job_id, decision.tenant)
        return Outcome.CANCELLED if done else Outcome.SKIPPED
    if isinstance(decision, Admission):
        started = admit(services).started
        logger.info("admission asked for", extra={"why": decision.why, "started": started})
        return Outcome.SKIPPED
    logger.info("nothing to do", extra={"why": decision.why})
    return Outcome.SKIPPED


def decide_request(services: Services, queued: QueuedRequest) -> Submission | Refusal:
    """A producer's request: for the tenant it names, which its sender must be bound to
    (docs/producers.md), and checked whole before anything is paid."""
    body = queued.body
    callback_url = body.get("callback_url")
    try:
        tenant = queued_tenant(services, body.get("tenant"), queued.sender)
    except InvalidRequest as exc:
        count("RequestsRefusedForTenant")
        own = sender_home(services, queued.sender)  # the refusal is its own tenant's
        reason = f"invalid song request: {exc}"
        return Refusal(queued.refused_job(), reason, own, callback_url, asked=body)
    job = queued.job_for(tenant)
    try:
        request = parse_request(body, services.settings.model)
    except InvalidRequest as exc:
        reason = f"invalid song request: {exc}"
        return Refusal(job, reason, tenant, callback_url, asked=body)
    return Submission(job, dataclasses.replace(request, tenant=tenant))


def decide_resubmit(services: Services, request: ResubmitRequest) -> Resubmission | Nothing:
    """`{"resubmit": job}` from a producer: allowed to the job's own tenant only."""
    tenant = _senders_tenant(services, request, "resubmit", "ResubmitsRefused")
    if tenant is None:
        return Nothing("a resubmit its sender may not ask for")
    return Resubmission(request.job_id, tenant)


def decide_cancel(services: Services, request: CancelRequest) -> Cancellation | Nothing:
    """`{"cancel": job}` from a producer: allowed to the job's own tenant only."""
    tenant = _senders_tenant(services, request, "cancel", "CancelsRefused")
    if tenant is None:
        return Nothing("a cancel its sender may not ask for")
    return Cancellation(request.job_id, tenant)


def _senders_tenant(
    services: Services, request: ResubmitRequest | CancelRequest, what: str, metric: str
) -> str | None:
    """The tenant a producer's request about a job is for, which its sender must be
    bound to (the job must then be that tenant's); None, logged and counted, if not."""
    try:
        return queued_tenant(services, request.tenant, request.sender)
    except InvalidRequest as exc:
        logger.warning(f"{what} refused", extra={"job_id": request.job_id, "reason": str(exc)})
        count(metric)
        return None


def decide_held(services: Services, retry: HeldRetry) -> Submission | Resubmission | Nothing:
    """A reminder to try a held job again: taken only when the row still holds its token
    (so that copies of it, or one sent by anyone, cannot multiply the tries)."""
    logger.thread_safe_append_keys(job_id=retry.job_id)
    row = services.table.get(retry.job_id)
    if row is None or row.hold is None or row.hold.token != retry.token:
        return Nothing("a reminder for a job no longer held by it")
    if row.state is not JobState.HELD:
        return Resubmission(row.job_id, None)
    assert row.request_json is not None  # a HELD row keeps what it asks for
    request = parse_request(json.loads(row.request_json), services.settings.model)
    job = Job(row.job_id, row.source, row.source_name, row.request_id)
    return Submission(job, dataclasses.replace(request, tenant=row.tenant), row.created_at)
