"""Producers sharing one stack (tenants): their names, and where a job's comes from
(README: Producers and what they spend)."""

from __future__ import annotations

import re
from typing import Any

from .data.rows import DEFAULT_TENANT
from .errors import InvalidRequest

MAX_TENANT_CHARS = 32
# Lower-case letters, digits and inner hyphens: safe as an S3 folder, a metric property,
# an SNS attribute and part of a DynamoDB key. Matched whole (fullmatch): `$` would let a
# final newline through, and `"acme\n"` would be a tenant of its own with caps of none.
_TENANT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


def is_tenant(value: Any) -> bool:
    return isinstance(value, str) and bool(_TENANT.fullmatch(value))


def check_tenant(value: Any, where: str) -> str:
    if not is_tenant(value):
        raise InvalidRequest(
            f"{where} must be a tenant name: 1 to {MAX_TENANT_CHARS} lower-case letters, "
            f"digits or inner hyphens; got {value!r}"
        )
    return str(value)


def file_tenant(key: str, metadata_tenant: str | None, *, from_key: bool) -> str:
    """A lyric file's tenant.

    With TENANT_FROM_KEY=prefix the key names it (its first folder, or the default
    tenant at the bucket's top), since a bucket policy can limit who writes where: the
    `tenant` metadata may only repeat it. Otherwise the metadata names it, else it is the
    default one. Metadata is taken as written (empty: none): `"acme "` is no tenant.
    """
    named = (
        check_tenant(metadata_tenant, "the file's 'tenant' metadata") if metadata_tenant else None
    )
    if not from_key:
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
