"""The owner's explicit resubmission of an ended job: it pays again, on purpose
(README: Resubmitting a job)."""

from __future__ import annotations

import dataclasses
import json

from .errors import OverBudget
from .observability import count, logger
from .payment import Outcome, pay
from .services import Services
from .song_request import parse_request
from .sources import Job
from .submit import hold, start_within_caps


def resubmit(services: Services, job_id: str, tenant: str | None) -> Outcome:
    """The owner's explicit resubmission of an UNKNOWN, FAILED, TIMED_OUT or CANCELLED job; `tenant`
    is the sender's, which must be the job's (None: a held resubmission tried again).

    It pays again, on purpose; a job that is running, completed, or whose last
    notification is not out yet is left alone. Over a cap it waits, held, as new jobs do.
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
    try:
        attempt = start_within_caps(
            services,
            job_id,
            row.tenant,
            lambda now: services.table.restart(
                job_id,
                now=now,
                lease_seconds=services.settings.submit_lease_seconds,
                reservation=services.budget.reserve(
                    job_id,
                    now,
                    services.budget.caps_of(row.tenant),
                    services.settings.price.credits,
                ),
                max_resubmits=most,
                price=services.settings.price,  # a resubmission pays today's price
            ),
        )
    except OverBudget as over:
        written = hold(services, job_id, over, lambda h: services.table.hold_resubmit(job_id, h))
        return Outcome.HELD if written else Outcome.SKIPPED
    if attempt is None:
        logger.warning(
            "resubmit refused: only ended, notified jobs with a valid request can be resent",
            extra={"state": row.state.value, "notified": row.notified},
        )
        return Outcome.SKIPPED
    assert row.request_json is not None  # restart requires one
    count("SongsResubmitted")
    logger.info("resubmitting on request", extra={"previous_state": row.state.value})
    request = parse_request(json.loads(row.request_json), services.settings.model)
    request = dataclasses.replace(request, tenant=row.tenant)  # a file's is not in its request
    return pay(services, Job(row.job_id, row.source, row.source_name), attempt, request)
