"""The in-flight places: the jobs holding them, and the places of ended jobs freed.

A job takes its places (the stack's, and its tenant's when it has an in-flight cap) in
the transaction that starts it; they are given back when someone next looks after it
ends (docs/how-it-works.md: The line): the submit function when an in-flight cap
refuses a job, and every admission."""

from __future__ import annotations

from .observability import logger
from .services import Services


def live_holders(services: Services, tenant: str | None = None) -> dict[str, str]:
    """The jobs holding the stack's (or `tenant`'s) in-flight places whose rows say they
    are still being submitted or made, with their tenants; the places of the others are
    freed."""
    holders = services.budget.holders(tenant)
    live = services.table.in_flight_tenants(holders)
    ended = holders - set(live)
    services.budget.drop(ended, tenant)
    if ended:
        logger.info(
            "freed the in-flight places of ended jobs",
            extra={"freed": len(ended), "tenant": tenant},
        )
    return live
