"""Python values to DynamoDB's and back, the one place that converts them.

Also the two shapes of write the tables use: an update built from plain fields, and a
transaction of several conditional writes that is tried again when it only met another
transaction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class AddAttribute:
    """In an update: add the value of another attribute of the item to this one (either
    counts as 0 while missing), so a sum kept on the row never needs reading first."""

    source: str


# A plain attribute value; None removes the attribute in an update.
Value = str | float | int | bool | frozenset[str] | None


@dataclass(frozen=True)
class AppendEntry:
    """In an update: append one map of plain values to a list attribute (a new list while
    missing), so a log kept on the row never needs reading first."""

    entry: Mapping[str, Value]

    def attr(self) -> dict[str, Any]:
        return {"M": {name: to_attr(value) for name, value in self.entry.items()}}


Fields = Mapping[str, Value | AddAttribute | AppendEntry]
Item = dict[str, Any]

CONFLICT_ATTEMPTS = 5


def to_attr(value: Value) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value. Floats keep milliseconds."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": f"{value:.3f}"}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, frozenset):
        return {"SS": sorted(value)}
    raise TypeError(f"no DynamoDB type for {value!r}")


def item_of(fields: Mapping[str, Value]) -> Item:
    """A whole item; None fields are left out."""
    return {name: to_attr(value) for name, value in fields.items() if value is not None}


def key_text(item: Mapping[str, Any], name: str) -> str:
    """A text attribute every item has (a key, a job's state)."""
    value: str = item[name]["S"]
    return value


def text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def number(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


def whole(item: Mapping[str, Any], name: str) -> int | None:
    value = number(item, name)
    return int(value) if value is not None else None


def flag(item: Mapping[str, Any], name: str) -> bool:
    return bool(item.get(name, {}).get("BOOL", False))


def strings(item: Mapping[str, Any], name: str) -> set[str]:
    return set(item.get(name, {}).get("SS", []))


def update_clause(fields: Fields) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET/REMOVE clauses for plain fields (None removes, AddAttribute adds), with their
    names and values."""
    sets: list[str] = []
    removes: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        elif isinstance(value, AddAttribute):
            names[f"#a{i}"] = value.source
            values[f":zero{i}"] = to_attr(0)
            sets.append(f"#f{i} = if_not_exists(#f{i}, :zero{i}) + if_not_exists(#a{i}, :zero{i})")
        elif isinstance(value, AppendEntry):
            values[f":none{i}"] = {"L": []}
            values[f":f{i}"] = {"L": [value.attr()]}
            sets.append(f"#f{i} = list_append(if_not_exists(#f{i}, :none{i}), :f{i})")
        else:
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = to_attr(value)
    clause = ("SET " + ", ".join(sets) if sets else "") + (
        " REMOVE " + ", ".join(removes) if removes else ""
    )
    return clause.strip(), names, values


def updated(item: Mapping[str, Any], fields: Fields) -> Item:
    """The item as an update of `update_clause(fields)` leaves it, worked out here: a
    transaction returns no values, and reading the row back would cost a read each."""
    after = dict(item)
    for name, value in fields.items():
        if value is None:
            after.pop(name, None)
        elif isinstance(value, AddAttribute):
            total = sum(Decimal(after.get(n, {}).get("N", "0")) for n in (name, value.source))
            after[name] = {"N": str(total)}
        elif isinstance(value, AppendEntry):
            after[name] = {"L": [*after.get(name, {}).get("L", []), value.attr()]}
        else:
            after[name] = to_attr(value)
    return after


def transact(client: DynamoDBClient, writes: Sequence[Mapping[str, Any]]) -> int | None:
    """Write all or none; None when written, else the position of the first refused write.

    A write is refused when its condition fails. A transaction that met another one on
    the same item (every submission updates the caps' two items) is tried again a few
    times after a short random wait; throttling or a lasting conflict is raised, and the
    message is retried later.
    """
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            client.transact_write_items(TransactItems=list(writes))  # type: ignore[arg-type]
        except client.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in codes:
                return codes.index("ConditionalCheckFailed")
            if "TransactionConflict" not in codes or attempt == CONFLICT_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.02, 0.1) * attempt)  # noqa: S311 - jitter
        else:
            return None
    raise AssertionError("unreachable")  # pragma: no cover


def items_named(
    client: DynamoDBClient, table_name: str, prefix: str, having: str | None = None
) -> Iterator[tuple[str, Item]]:
    """The spending table's items whose `counter` starts with `prefix` (and that have the
    attribute `having`), each with its name after the prefix: a scan, for the few dozen
    items of tenants and senders the tools list."""
    condition = "begins_with(#counter, :prefix)" + (
        f" AND attribute_exists({having})" if having else ""
    )
    pages = client.get_paginator("scan").paginate(
        TableName=table_name,
        FilterExpression=condition,
        ExpressionAttributeNames={"#counter": "counter"},
        ExpressionAttributeValues={":prefix": to_attr(prefix)},
    )
    for page in pages:
        for item in page.get("Items", []):
            yield item["counter"]["S"].removeprefix(prefix), item
