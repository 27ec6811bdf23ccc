"""The owner's explicit resubmission of an ended job: it pays again, on purpose
(README: Resubmitting a job)."""

from __future__ import annotations

import dataclasses
import json
import uuid

from .admission import admit
from .data.rows import Hold, Row
from .errors import Cap, OverBudget
from .observability import count, logger
from .payment import Outcome, pay, restart_writer
from .services import Services
from .song_request import parse_request
from .sources import Job
from .submit import behind, start_within_caps


def resubmit(services: Services, job_id: str, tenant: str | None) -> Outcome:
    """The owner's explicit resubmission of an UNKNOWN, FAILED, TIMED_OUT or CANCELLED job; `tenant`
    is the sender's, which must be the job's (None: a held resubmission tried again).

    It pays again, on purpose; a job that is running, completed, or whose last
    notification is not out yet is left alone. Over a cap, or behind its tenant's
    waiting jobs, it waits in its tenant's line, as new jobs do.
    """
    logger.thread_safe_append_keys(job_id=job_id)
    row = services.table.get(job_id)
    if row is None:
        logger.warning("resubmit asked for a job that does not exist")
        return Outcome.SKIPPED
    if tenant is not None and tenant != row.tenant:
        logger.warning(
            "resubmit refused: the job is another tenant's",
            extra={"tenant": tenant, "job_tenant": row.tenant},
        )
        count("ResubmitsRefused")
        return Outcome.SKIPPED
    most = services.settings.max_resubmits
    if row.resubmits >= most:
        logger.warning(
            "resubmit refused: the job was resubmitted MAX_RESUBMITS times already",
            extra={"resubmits": row.resubmits, "max_resubmits": most},
        )
        return Outcome.SKIPPED
    terms = services.budget.terms_of(row.tenant)
    try:
        if terms.waiting:
            raise behind(row.tenant)
        attempt = start_within_caps(
            services, job_id, row.tenant, restart_writer(services, job_id, terms.caps)
        )
    except OverBudget as over:
        return _join_line(services, row, over)
    if attempt is None:
        return _not_resubmittable(row)
    assert row.request_json is not None  # restart requires one
    count("SongsResubmitted")
    logger.info("resubmitting on request", extra={"previous_state": row.state.value})
    request = parse_request(json.loads(row.request_json), services.settings.model)
    request = dataclasses.replace(request, tenant=row.tenant)  # a file's is not in its request
    return pay(services, Job(row.job_id, row.source, row.source_name), attempt, request)


def _join_line(services: Services, row: Row, why: OverBudget) -> Outcome:
    """Put the resubmission in its tenant's line, unpaid: the job keeps its ending until
    its turn comes (admission.py starts it), with no reminder of its own."""
    now = services.clock()
    held = Hold(why.cap.value, str(why), 0.0, now, uuid.uuid4().hex)
    if not services.table.hold_resubmit(row.job_id, held, row.tenant):
        return _not_resubmittable(row)
    services.line.mark(row.tenant, services.clock())
    logger.info("resubmission waits in its tenant's line", extra={"reason": held.reason})
    if why.cap is Cap.LINE:
        admit(services, if_room=True)  # a place may be free for its tenant's line
    return Outcome.HELD


def _not_resubmittable(row: Row) -> Outcome:
    logger.warning(
        "resubmit refused: only ended, notified jobs with a valid request can be resent",
        extra={"state": row.state.value, "notified": row.notified},
    )
    return Outcome.SKIPPED
