"""A tenant's monthly budget in credits (docs/producers.md: A tenant's caps).

`month#YYYY-MM#<tenant>` in the spending table counts the credits of the tenant's
submissions that month (UTC) at the price each was submitted at: taken in the
transaction that writes the job's row, like a song of the daily cap, and given back when
the API surely refused the submission. A job that would pass the budget is held until
the month turns (or the operator raises the budget). A tenant without a budget has no
such item.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .items import Item, item_of, to_attr, whole

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MONTH_PREFIX = "month#"
# Kept past its month long enough for `spend` and `caps show` to read last month's.
MONTH_ITEM_TTL_DAYS = 62


def month_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def month_counter(month: str, tenant: str) -> str:
    return f"{MONTH_PREFIX}{month}#{tenant}"


def _key(month: str, tenant: str) -> Item:
    return item_of({"counter": month_counter(month, tenant)})


@dataclass(frozen=True)
class MonthlySpend:
    """One submission's share of its tenant's budget for a month."""

    tenant: str
    month: str
    budget: int  # credits the tenant may spend that month
    credits: int  # what this submission costs
    table_name: str
    expires_at: int

    def write(self) -> dict[str, Any]:
        """The transaction's update: add the credits unless they would pass the budget."""
        room = self.budget - self.credits
        fits = (
            "attribute_not_exists(credits) OR " if room >= 0 else "attribute_exists(credits) AND "
        )
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": _key(self.month, self.tenant),
                "UpdateExpression": "ADD credits :credits SET expires_at = :expires",
                "ConditionExpression": fits + "credits <= :room",
                "ExpressionAttributeValues": {
                    ":credits": to_attr(self.credits),
                    ":room": to_attr(room),
                    ":expires": to_attr(self.expires_at),
                },
            }
        }


def monthly_spend(
    tenant: str, budget: int | None, credits: int, table_name: str, now: float
) -> MonthlySpend | None:
    """What a submission takes of its tenant's budget, if the tenant has one."""
    if budget is None:
        return None
    expires = datetime.fromtimestamp(now, UTC) + timedelta(days=MONTH_ITEM_TTL_DAYS)
    month = month_of(now)
    return MonthlySpend(tenant, month, budget, credits, table_name, int(expires.timestamp()))


def credits_in(client: DynamoDBClient, table_name: str, month: str, tenant: str) -> int:
    """Credits counted against the tenant's budget that month."""
    item = client.get_item(
        TableName=table_name,
        Key=_key(month, tenant),
        ConsistentRead=True,
    ).get("Item", {})
    return whole(item, "credits") or 0


def give_back(
    client: DynamoDBClient, table_name: str, month: str, tenant: str, credits: int
) -> None:
    """Give back a submission the API surely refused (nothing was paid)."""
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=table_name,
            Key=_key(month, tenant),
            UpdateExpression="ADD credits :minus",
            ConditionExpression="credits >= :credits",
            ExpressionAttributeValues={":minus": to_attr(-credits), ":credits": to_attr(credits)},
        )
