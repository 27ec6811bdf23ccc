"""Cancelling a job that waits in its tenant's line: it ends CANCELLED, unpaid, and is
announced once, as any ending; a waiting resubmission is withdrawn, unpaid, its job
left with its ending (docs/producers.md: Cancelling a job).

A job the API took is paid for whatever happens next: it is never cancelled (its song
is kept when it ends), and neither is one already ended.
"""

from __future__ import annotations

from .announce import ended
from .data.rows import Row
from .observability import count, logger
from .services import Services


def cancelled_reason(who: str) -> str:
    return f"cancelled by {who} while it waited in line: nothing was paid"


def cancel_waiting(services: Services, row: Row, who: str) -> Row | None:
    """End `row`'s job CANCELLED if it still waits, and announce it (a waiting
    resubmission is withdrawn instead: its job keeps the ending it had, announced
    already); the row after, or None when it no longer waits (started, ended or
    cancelled meanwhile)."""
    if row.resubmission_waits:
        if not services.table.leave_line(row):
            return None
        logger.info("resubmission withdrawn while it waited", extra={"job_id": row.job_id})
        return services.table.get(row.job_id)
    now = services.clock()
    done = services.table.cancel(
        row,
        reason=cancelled_reason(who),
        now=now,
        announce_by=now + services.settings.submit_lease_seconds,
    )
    if done is None:
        return None
    logger.info("job cancelled while it waited", extra={"job_id": row.job_id, "by": who})
    ended(services, done)
    return done


def cancel_for_tenant(services: Services, job_id: str, tenant: str) -> bool:
    """A producer's `{"cancel": job}`, for `tenant`, the one its sender may act for:
    only that tenant's waiting jobs are cancelled. True if it was."""
    row = services.table.get(job_id)
    if row is None or row.tenant != tenant or not row.waits:
        why = "no job of this tenant" if row is None or row.tenant != tenant else "not waiting"
        logger.warning("cancel not done", extra={"job_id": job_id, "why": why})
        count("CancelsRefused")
        return False
    return cancel_waiting(services, row, f"a producer of tenant {tenant}") is not None
