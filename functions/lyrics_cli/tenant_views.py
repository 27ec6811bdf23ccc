"""What `lyrics-to-song tenants` prints: a table for people, dicts for `--json`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .tenant_admin import TenantView


def _state(view: TenantView) -> str:
    tenant = view.tenant
    return "removed" if not tenant.known else "paused" if tenant.paused_at else "active"


def _caps(view: TenantView, defaults: tuple[int, int] | None) -> str:
    caps = view.tenant.caps
    if caps is not None:
        return f"{caps.per_day}/day, {caps.in_flight} at once"
    return f"defaults ({defaults[0]}/day, {defaults[1]} at once)" if defaults else "defaults"


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tenants_text(views: list[TenantView], defaults: tuple[int, int] | None) -> str:
    rows = [("TENANT", "STATE", "CAPS", "SENDERS", "UNDER WAY", "CALLBACK", "REGISTERED")]
    for view in views:
        tenant = view.tenant
        registered = _when(tenant.registered_at)
        if tenant.registered_at is None and tenant.known:
            registered = "always" if tenant.name == "default" else "before the registry"
        rows.append(
            (
                tenant.name,
                _state(view),
                _caps(view, defaults),
                str(len(view.senders)),
                str(view.under_way),
                "yes" if tenant.callback_url else "-",
                registered,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def tenant_dict(view: TenantView) -> dict[str, Any]:
    tenant = view.tenant
    caps = tenant.caps
    return {
        "tenant": tenant.name,
        "state": _state(view),
        "caps": {"per_day": caps.per_day, "in_flight": caps.in_flight} if caps else None,
        "callback_url": tenant.callback_url,
        "senders": view.senders,
        "under_way": view.under_way,
        "registered_at": tenant.registered_at,
        "paused_at": tenant.paused_at,
        "removed_at": tenant.removed_at,
    }
