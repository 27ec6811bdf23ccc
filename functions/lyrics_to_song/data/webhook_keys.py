"""Which secrets sign a tenant's webhooks now (docs/webhooks.md: Checking a webhook).

Every tenant's secret is derived from the stack's root key (webhooks/signing.py), by
its generation. What changes at run time is kept in the spending table:

- on the tenant's item (`caps#<tenant>`): `webhook_generation` and, during a rotation,
  `webhook_previous_until` (the generation before signs too until then); and on
  `default`'s alone, `webhook_legacy_until`: while it is in the future, `default`'s
  deliveries are also signed with the root key itself, the secret `default`'s receivers
  held before every tenant's was derived (set once, on upgrade, by `tenants import`);
- on `webhook-root`: `previous_until`, while the root key's previous version (Secrets
  Manager's AWSPREVIOUS) signs too after `webhook rotate-root`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .items import item_of, to_attr, whole

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROOT_ITEM = "webhook-root"
_TENANT_PREFIX = "caps#"  # the tenant's item (data/caps.py, data/tenant_registry.py)


@dataclass(frozen=True)
class WebhookKeys:
    """Which generations of a tenant's secret sign: the current one, and during a
    rotation the one before, until `previous_until`; for `default` after an upgrade, the
    root itself until `legacy_until`."""

    generation: int = 0
    previous_until: float = 0.0
    legacy_until: float = 0.0

    def signing(self, now: float) -> list[int]:
        during = self.generation > 0 and now < self.previous_until
        return [self.generation] + ([self.generation - 1] if during else [])


@dataclass(frozen=True)
class WebhookKeyStore:
    client: DynamoDBClient
    table_name: str

    def keys(self, tenant: str) -> WebhookKeys:
        item = self.client.get_item(
            TableName=self.table_name,
            Key=item_of({"counter": _TENANT_PREFIX + tenant}),
            ProjectionExpression="webhook_generation, webhook_previous_until, webhook_legacy_until",
        ).get("Item", {})
        return WebhookKeys(
            whole(item, "webhook_generation") or 0,
            float(whole(item, "webhook_previous_until") or 0),
            float(whole(item, "webhook_legacy_until") or 0),
        )

    def rotate(self, tenant: str, previous_until: float) -> WebhookKeys:
        """A new generation of the tenant's secret; the one it replaces signs too until
        `previous_until`."""
        found = self.client.update_item(
            TableName=self.table_name,
            Key=item_of({"counter": _TENANT_PREFIX + tenant}),
            UpdateExpression="SET webhook_generation = if_not_exists(webhook_generation, :zero)"
            " + :one, webhook_previous_until = :until",
            ExpressionAttributeValues={
                ":zero": to_attr(0),
                ":one": to_attr(1),
                ":until": to_attr(int(previous_until)),
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return WebhookKeys(
            whole(found, "webhook_generation") or 0,
            float(whole(found, "webhook_previous_until") or 0),
            float(whole(found, "webhook_legacy_until") or 0),
        )

    def keep_legacy(self, until: float) -> bool:
        """Let `default`'s old secret, the root key, sign its deliveries too until `until`:
        once, on upgrade (False when it was set before)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=item_of({"counter": _TENANT_PREFIX + "default"}),
                UpdateExpression="SET webhook_legacy_until = :until",
                ConditionExpression="attribute_not_exists(webhook_legacy_until)",
                ExpressionAttributeValues={":until": to_attr(int(until))},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def root_previous_until(self) -> float:
        """Until when the root key's previous version signs too (0: it does not)."""
        item = self.client.get_item(
            TableName=self.table_name, Key=item_of({"counter": ROOT_ITEM})
        ).get("Item", {})
        return float(whole(item, "previous_until") or 0)

    def set_root_previous_until(self, until: float) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item=item_of({"counter": ROOT_ITEM, "previous_until": int(until)}),
        )
