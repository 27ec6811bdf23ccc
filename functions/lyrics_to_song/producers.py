"""Who a queued job is for: the tenant it names, checked against its sender under
TenantPolicy=bound (docs/producers.md)."""

from __future__ import annotations

from typing import Any

from .data.rows import DEFAULT_TENANT
from .errors import InvalidRequest
from .services import Services
from .tenants import TenantPolicy, check_tenant, principal_of, sender_tenant


def queued_tenant(services: Services, named: Any, sender: str | None) -> str:
    """A queued job's tenant: the one it names (the default naming none), which under
    TenantPolicy=bound its sender must be bound to (docs/producers.md). InvalidRequest
    says why not.

    The submit function's own messages name their tenant as their producer did: before
    jobs were held as rows, it put a job over a cap back on the queue as it came (a
    message only its role can send)."""
    principal = principal_of(sender) if sender else None
    own = principal is not None and principal == services.settings.own_sender
    if services.settings.tenant_policy is TenantPolicy.OPEN or own:
        return DEFAULT_TENANT if named is None else check_tenant(named, "'tenant'")
    bound = services.senders.tenants(principal) if principal else frozenset[str]()
    return sender_tenant(named, bound, sender)


def sender_home(services: Services, sender: str | None) -> str:
    """Whose side a refusal of the sender's request is on, and whose secret signs its
    webhook: the tenant it submits for naming none, or, bound to several without
    `default`, the first of its registered ones by name (`default` when none is)."""
    try:
        return queued_tenant(services, None, sender)
    except InvalidRequest:
        principal = principal_of(sender) if sender else None
        bound = services.senders.tenants(principal) if principal else frozenset[str]()
        known = sorted(t for t in bound if services.budget.terms_of(t).known)
        return known[0] if known else DEFAULT_TENANT
