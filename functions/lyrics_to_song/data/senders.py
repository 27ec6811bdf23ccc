"""Who may submit for which tenant (docs/producers.md).

One item per sender in the spending table, `sender#<principal>`, whose `tenants` string
set names the tenants it may submit for. A principal is an IAM unique id: a user's
(`AIDA…`) or a role's (`AROA…`, whatever the session), as SQS reports it in a message's
`SenderId`. Read with one GetItem per queued message under TenantPolicy=bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .caps import counter_key
from .items import items_named, strings, to_attr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SENDER_PREFIX = "sender#"


@dataclass(frozen=True)
class SenderStore:
    client: DynamoDBClient
    table_name: str

    def tenants(self, principal: str) -> frozenset[str]:
        """The tenants `principal` may submit for; none when it is bound to none."""
        item = self.client.get_item(
            TableName=self.table_name, Key=counter_key(SENDER_PREFIX + principal)
        ).get("Item", {})
        return frozenset(strings(item, "tenants"))

    def bind(self, principal: str, tenant: str) -> None:
        self._change("ADD", principal, tenant)

    def unbind(self, principal: str, tenant: str) -> None:
        """Take `tenant` from the principal's; an item left with none is gone (DynamoDB
        removes an emptied set)."""
        self._change("DELETE", principal, tenant)

    def _change(self, action: str, principal: str, tenant: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=counter_key(SENDER_PREFIX + principal),
            UpdateExpression=f"{action} tenants :tenant",
            ExpressionAttributeValues={":tenant": to_attr(frozenset([tenant]))},
        )

    def all(self) -> dict[str, frozenset[str]]:
        """Every bound principal and its tenants (a scan: the table holds a few dozen items)."""
        found = {
            principal: frozenset(strings(item, "tenants"))
            for principal, item in items_named(
                self.client, self.table_name, SENDER_PREFIX, having="tenants"
            )
        }
        return dict(sorted(found.items()))
