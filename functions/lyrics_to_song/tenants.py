"""Producers sharing one stack (tenants): their names, and where a job's comes from
(README: Producers and what they spend)."""

from __future__ import annotations

import re
from typing import Any

from .data.rows import DEFAULT_TENANT
from .errors import InvalidRequest

MAX_TENANT_CHARS = 32
# Lower-case letters, digits and inner hyphens: safe as an S3 folder, a metric property,
# an SNS attribute and part of a DynamoDB key.
_TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")


def is_tenant(value: Any) -> bool:
    return isinstance(value, str) and bool(_TENANT.match(value))


def check_tenant(value: Any, where: str) -> str:
    if not is_tenant(value):
        raise InvalidRequest(
            f"{where} must be a tenant name: 1 to {MAX_TENANT_CHARS} lower-case letters, "
            f"digits or inner hyphens; got {value!r}"
        )
    return str(value)


def file_tenant(key: str, metadata_tenant: str | None, *, from_key: bool) -> str:
    """A lyric file's tenant: its `tenant` user metadata, else (TENANT_FROM_KEY=prefix)
    the first folder of its key, else the default one."""
    if metadata_tenant is not None and metadata_tenant.strip():
        return check_tenant(metadata_tenant.strip(), "the file's 'tenant' metadata")
    folder, slash, _ = key.partition("/")
    if from_key and slash:
        return check_tenant(
            folder, f"the first folder of '{key}' (TENANT_FROM_KEY=prefix names tenants by it)"
        )
    return DEFAULT_TENANT
