"""How many webhooks of refused requests a tenant's receivers get in an hour
(docs/webhooks.md: Refused requests): a refusal costs nothing to send, so a flood of
bad requests with a callback that never answers could keep the webhook function busy
for everyone. Counted per tenant and UTC hour in the spending table
(`refusal-hooks#<tenant>#<hour>`), within REFUSAL_WEBHOOKS_PER_HOUR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .items import item_of, to_attr

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PREFIX = "refusal-hooks#"


@dataclass(frozen=True)
class RefusalWebhooks:
    client: DynamoDBClient
    table_name: str
    per_hour: int

    def take(self, tenant: str, now: float) -> bool:
        """One more of the tenant's refusal webhooks this hour: False when its hour's
        share is spent (the refusal is still announced, without a webhook)."""
        hour = int(now // 3600)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=item_of({"counter": f"{PREFIX}{tenant}#{hour}"}),
                UpdateExpression="ADD sent :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(sent) OR sent < :cap",
                ExpressionAttributeValues={
                    ":one": to_attr(1),
                    ":cap": to_attr(self.per_hour),
                    ":expires": to_attr((hour + 2) * 3600),
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
