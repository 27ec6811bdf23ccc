"""Producers sharing one stack (tenants): their names, and where a job's comes from
(docs/producers.md)."""

from __future__ import annotations

import re
from collections.abc import Set
from enum import StrEnum
from typing import Any

from .data.rows import DEFAULT_TENANT
from .errors import InvalidRequest

MAX_TENANT_CHARS = 32
# Lower-case letters, digits and inner hyphens: safe as an S3 folder, a metric property,
# an SNS attribute and part of a DynamoDB key. Matched whole (fullmatch): `$` would let a
# final newline through, and `"acme\n"` would be a tenant of its own with caps of none.
_TENANT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


class TenantPolicy(StrEnum):
    """Who may name a tenant (TENANT_POLICY)."""

    OPEN = "open"  # producers are trusted: a job's tenant is the one it names
    BOUND = "bound"  # a queued job's tenant must be one its sender is bound to


def principal_of(sender_id: str) -> str:
    """The IAM unique id in an SQS `SenderId`: a user's (`AIDA…`) as it is, a role's
    without its session (`AROA…:session-name` -> `AROA…`)."""
    return sender_id.removeprefix("AWS:").split(":", 1)[0]


def sender_tenant(named: Any, bound: Set[str], sender: str | None) -> str:
    """Under TenantPolicy=bound, the tenant of a job its sender sent: the one it names,
    if the sender is bound to it; else, naming none, the sender's only tenant (or the
    default tenant when it is among them). A sender bound to none may submit for the
    default tenant alone. InvalidRequest says why not: nothing is paid."""
    allowed = bound or {DEFAULT_TENANT}
    who = f"sender {sender}" if sender else "a sender with no SenderId"
    if named is not None:
        tenant = check_tenant(named, "'tenant'")
        if tenant not in allowed:
            raise InvalidRequest(
                f"{who} may not submit for tenant {tenant}; it may for "
                f"{', '.join(sorted(allowed))} (TenantPolicy=bound)"
            )
        return tenant
    if DEFAULT_TENANT in allowed:
        return DEFAULT_TENANT
    if len(allowed) == 1:
        return next(iter(allowed))
    raise InvalidRequest(
        f"{who} may submit for {', '.join(sorted(allowed))}: the request must name one as 'tenant'"
    )


def is_tenant(value: Any) -> bool:
    return isinstance(value, str) and bool(_TENANT.fullmatch(value))


def check_tenant(value: Any, where: str) -> str:
    if not is_tenant(value):
        raise InvalidRequest(
            f"{where} must be a tenant name: 1 to {MAX_TENANT_CHARS} lower-case letters, "
            f"digits or inner hyphens; got {value!r}"
        )
    return str(value)


def file_tenant(
    key: str, metadata_tenant: str | None, *, from_key: bool, policy: TenantPolicy
) -> str:
    """A lyric file's tenant.

    With TENANT_FROM_KEY=prefix the key names it (its first folder, or the default
    tenant at the bucket's top), since a bucket policy can limit who writes where: the
    `tenant` metadata may only repeat it. Otherwise, under TenantPolicy=open, the
    metadata names it, else it is the default one; under bound, anyone who may write
    to the bucket could write metadata, so every file is the default tenant's and
    metadata naming another is refused. Metadata is taken as written (empty: none):
    `"acme "` is no tenant.
    """
    named = (
        check_tenant(metadata_tenant, "the file's 'tenant' metadata") if metadata_tenant else None
    )
    if not from_key:
        if policy is TenantPolicy.BOUND and named not in (None, DEFAULT_TENANT):
            raise InvalidRequest(
                f"the file's 'tenant' metadata names {named}, but under TenantPolicy=bound "
                "only a lyric file's folder can name a tenant (TenantFromKey=prefix)"
            )
        return named or DEFAULT_TENANT
    folder, slash, _ = key.partition("/")
    tenant = (
        check_tenant(
            folder, f"the first folder of '{key}' (TENANT_FROM_KEY=prefix names tenants by it)"
        )
        if slash
        else DEFAULT_TENANT
    )
    if named is not None and named != tenant:
        raise InvalidRequest(
            f"the file's 'tenant' metadata names {named}, but with TENANT_FROM_KEY=prefix "
            f"'{key}' belongs to tenant {tenant}: write it under {named}/ instead"
        )
    return tenant
