"""Who may submit for which tenant: `lyrics-to-song senders` (docs/producers.md)."""

from __future__ import annotations

import re

from lyrics_to_song.data.senders import SenderStore
from lyrics_to_song.tenants import principal_of

from .stack_target import CliError, Cloud, ExitCode, spending_table_of

# An IAM unique id (AIDA…, AROA…: upper-case letters and digits), or a SenderId with a
# role's session after it, which is cut off: a binding is the role's, whatever its session.
_PRINCIPAL = re.compile(r"[A-Za-z0-9]{8,128}")


def check_sender(value: str) -> str:
    principal = principal_of(value.strip())
    if not _PRINCIPAL.fullmatch(principal):
        raise CliError(
            "--sender must be an IAM user's or role's unique id (AIDA… or AROA…; "
            f"`aws iam get-role --role-name NAME --query Role.RoleId`), got {value!r}",
            ExitCode.USAGE,
        )
    return principal


def _store(cloud: Cloud) -> SenderStore:
    return SenderStore(cloud.dynamodb, spending_table_of(cloud, "bind senders to tenants"))


def change(cloud: Cloud, action: str, tenant: str, sender: str) -> None:
    """Bind `sender` to `tenant` (or unbind it); read at each queued message."""
    store = _store(cloud)
    if action == "bind":
        store.bind(sender, tenant)
    else:
        store.unbind(sender, tenant)


def bindings(
    cloud: Cloud, *, tenant: str | None = None, sender: str | None = None
) -> dict[str, list[str]]:
    """Every bound sender and its tenants; only those that may submit for `tenant`, or
    only `sender`."""
    found = _store(cloud).all()
    return {
        who: sorted(tenants)
        for who, tenants in found.items()
        if (tenant is None or tenant in tenants) and sender in (None, who)
    }
