"""The stack's tenants: only a registered one exists (docs/producers.md: A tenant's life).

A tenant is the item `caps#<name>` of the spending table, the one that already holds its
caps, default callback and webhook secret's generation, so the submit function learns
whether a job's tenant exists, and whether it is paused, in the GetItem it makes anyway
(`TenantStore.terms`). The item's fields of the registry:

- `registered_at`: when `tenants add` (or `tenants import`) registered it. An item from
  before the registry (caps, a callback or a secret's generation set by name) has none and
  is a tenant all the same: nothing a stack had is lost on upgrade.
- `paused_at`: while present, its new jobs are held, unpaid.
- `removed_at`: removed; its name is refused until it is added again. The item stays, with
  its secret's generation moved on, so a name added again never signs with a secret an
  earlier owner's receiver knew.

`default` always exists, with or without an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .caps import TENANT_CAPS_PREFIX, TenantCaps, caps_in_item, counter_key
from .items import Item, items_named, number, text, to_attr, whole
from .rows import DEFAULT_TENANT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_KNOWN = "attribute_exists(#counter) AND attribute_not_exists(removed_at)"


@dataclass(frozen=True)
class Tenant:
    """One tenant as the registry holds it."""

    name: str
    registered_at: float | None = None  # None: known from before the registry, or `default`
    paused_at: float | None = None
    removed_at: float | None = None
    caps: TenantCaps | None = None  # its own; None: the defaults for tenants
    callback_url: str | None = None
    webhook_generation: int = 0

    @property
    def known(self) -> bool:
        return self.removed_at is None

    @classmethod
    def from_item(cls, name: str, item: Item) -> Tenant:
        return cls(
            name,
            registered_at=number(item, "registered_at"),
            paused_at=number(item, "paused_at"),
            removed_at=number(item, "removed_at"),
            caps=caps_in_item(name, item),
            callback_url=text(item, "callback_url"),
            webhook_generation=whole(item, "webhook_generation") or 0,
        )


@dataclass(frozen=True)
class TenantRegistry:
    """Data access for the registry's items (the spending table's `caps#<name>`)."""

    client: DynamoDBClient
    table_name: str

    def get(self, name: str) -> Tenant | None:
        """The tenant, removed ones included; None when the name was never one."""
        item = self.client.get_item(
            TableName=self.table_name, Key=counter_key(TENANT_CAPS_PREFIX + name)
        ).get("Item")
        if item is None:
            return Tenant(name) if name == DEFAULT_TENANT else None
        return Tenant.from_item(name, item)

    def all(self) -> list[Tenant]:
        """Every tenant that ever was, `default` first (a scan: a few dozen items)."""
        found = {DEFAULT_TENANT: Tenant(DEFAULT_TENANT)}
        for name, item in items_named(self.client, self.table_name, TENANT_CAPS_PREFIX):
            found[name] = Tenant.from_item(name, item)
        return sorted(found.values(), key=lambda t: (t.name != DEFAULT_TENANT, t.name))

    def add(self, name: str, now: float) -> bool:
        """Register a new tenant (or one removed); False when it exists already."""
        return self._update(
            name,
            "SET registered_at = :now REMOVE removed_at",
            "attribute_not_exists(#counter) OR attribute_exists(removed_at)",
            {":now": now},
        )

    def adopt(self, name: str, now: float) -> bool:
        """Register a tenant a stack knew before the registry (`tenants import`): its
        item, if any, keeps what it holds. False when it was removed since."""
        return self._update(
            name,
            "SET registered_at = if_not_exists(registered_at, :now)",
            "attribute_not_exists(removed_at)",
            {":now": now},
        )

    def pause(self, name: str, now: float) -> bool:
        """Hold the tenant's new jobs from now on; False when it is no tenant."""
        return self._update(name, "SET paused_at = :now", self._exists(name), {":now": now})

    def resume(self, name: str) -> bool:
        return self._update(name, "REMOVE paused_at", self._exists(name), {})

    def remove(self, name: str, now: float) -> bool:
        """Remove a tenant: its name is refused from now on, its caps, callback and pause
        go, and its webhook secret moves on a generation with no overlap (the secret its
        receivers hold signs nothing more). False when it is no tenant."""
        return self._update(
            name,
            "SET removed_at = :now, webhook_previous_until = :zero"
            " ADD webhook_generation :one"
            " REMOVE registered_at, paused_at, per_day, in_flight, callback_url",
            _KNOWN,
            {":now": now, ":zero": 0, ":one": 1},
        )

    @staticmethod
    def _exists(name: str) -> str:
        return "attribute_not_exists(removed_at)" if name == DEFAULT_TENANT else _KNOWN

    def _update(self, name: str, clause: str, condition: str, values: dict[str, Any]) -> bool:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": counter_key(TENANT_CAPS_PREFIX + name),
            "UpdateExpression": clause,
            "ConditionExpression": condition,
        }
        if "#counter" in condition:
            update["ExpressionAttributeNames"] = {"#counter": "counter"}
        if values:
            update["ExpressionAttributeValues"] = {k: to_attr(v) for k, v in values.items()}
        try:
            self.client.update_item(**update)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
