"""Starting a job and paying for it: its SUBMITTING row written with its share of the
caps, then exactly one API call (submit.py and admission.py start jobs; both pay here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from botocore.exceptions import ClientError

from .announce import ended
from .data.caps import TenantCaps
from .data.rows import JobState, Row
from .data.task_table import Started, StartResult
from .errors import ErrorKind, MusicApiError, RetryLater
from .observability import count, credits_spent, logger
from .services import Services
from .song_request import SongRequest
from .sources import Job
from .texts import kept_error


class Outcome(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # the job already has a row: nothing paid
    REJECTED = "rejected"  # unusable input, or the API refused it: FAILED, notified, unpaid
    UNKNOWN = "unknown"  # the submission may have reached the API: UNKNOWN, notified, not resent
    SKIPPED = "skipped"  # nothing to do (s3:TestEvent, a resubmit that may not be)
    HELD = "held"  # a cap, a pause or earlier jobs hold it: HELD in its tenant's line, unpaid
    CANCELLED = "cancelled"  # a held job cancelled: CANCELLED, notified, unpaid


def row_writer(
    services: Services,
    job: Job,
    request: SongRequest,
    *,
    caps: TenantCaps | None,
    callback_url: str | None,
    created_at: float | None,
    request_json: str,
) -> Callable[[float], StartResult]:
    """The write of a job's SUBMITTING row at `now`, with its reservation (`caps`: its
    tenant's); `created_at`: when it first waited, if it did. `request_json`: the
    request as its row keeps it (a waiting job's row is replaced only by the same)."""

    def write(now: float) -> StartResult:
        return services.table.start(
            job.job_id,
            source=job.source,
            source_name=job.source_name,
            request_json=request_json,
            model=request.model,
            now=now,
            lease_seconds=services.settings.submit_lease_seconds,
            reservation=services.budget.reserve(
                job.job_id, now, caps, services.settings.price.credits
            ),
            tenant=request.tenant,
            price=services.settings.price,
            callback_url=callback_url,
            created_at=created_at,
            request_id=job.request_id,
        )

    return write


def restart_writer(
    services: Services, job_id: str, caps: TenantCaps | None
) -> Callable[[float], StartResult]:
    """The write at `now` that takes an ended job back to SUBMITTING for its owner's
    resubmission, with its reservation (`caps`: its tenant's)."""

    def write(now: float) -> StartResult:
        return services.table.restart(
            job_id,
            now=now,
            lease_seconds=services.settings.submit_lease_seconds,
            reservation=services.budget.reserve(job_id, now, caps, services.settings.price.credits),
            max_resubmits=services.settings.max_resubmits,
            price=services.settings.price,  # a resubmission pays today's price
        )

    return write


def pay(
    services: Services,
    job: Job,
    attempt: Started,
    request: SongRequest,
    from_line: Row | None = None,
) -> Outcome:
    """Call the API for a job whose SUBMITTING row this attempt holds (`from_line`: its
    HELD row as it was, when admission started it from its tenant's line)."""
    try:
        task_id = services.api.submit(request)
    except MusicApiError as exc:
        return _submission_failed(services, job, attempt, request, exc, from_line=from_line)
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
    services: Services,
    job: Job,
    attempt: Started,
    request: SongRequest,
    exc: MusicApiError,
    *,
    from_line: Row | None,
) -> Outcome:
    table = services.table
    log = {"api_status": exc.status, "error": kept_error(str(exc)), "raw_body": exc.raw_body}
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
    # No message brings a job from the line back: it goes back to its place, as it was,
    # and its tenant is marked as waiting again (an admission may have forgotten it when
    # it took this job, its last one), so the next admission finds it.
    if from_line is None:
        table.release(job.job_id, attempt.attempt)
    elif table.back_in_line(job.job_id, attempt.attempt, from_line):
        services.line.mark(request.tenant, services.clock())
    if exc.kind is ErrorKind.ACCOUNT:
        logger.error(
            "API account problem: the job waits in the queue until the key or credits are fixed",
            extra=log,
        )
        count("AccountErrors")
    else:
        logger.warning("API busy or unreachable: the job goes back to the queue", extra=log)
        count("TransientErrors")
    if from_line is not None:
        return Outcome.HELD
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
