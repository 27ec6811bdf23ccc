"""The backlog benchmark's in-memory tables (tests/memory_dynamodb.py) give what moto gives:
for a whole backlog through the real intake and admission, and call by call for every
kind of request the line makes, refusals included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_cloud.stack import Stack, provision
from tests.bench.backlog import simulate
from tests.memory_dynamodb import MemoryDynamoDB

pytestmark = pytest.mark.slow

_HEX = re.compile(r"[0-9a-f]{32}")
_METADATA = ("ResponseMetadata", "ConsumedCapacity", "ItemCollectionMetrics")


def comparable(value: Any) -> Any:
    """A DynamoDB answer with what may differ between equal stores evened out: numbers'
    spelling, sets' order, and the random tokens a run draws (uuid4 hex)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((kind, raw),) = value.items()
            if kind == "N":
                return ("N", Decimal(raw).normalize())
            if kind == "SS":
                return (kind, sorted(comparable(v) for v in raw))
            if kind == "NS":
                return (kind, sorted(Decimal(v).normalize() for v in raw))
        return {k: comparable(v) for k, v in value.items() if k not in _METADATA}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, str):
        return _HEX.sub("<token>", value)
    return value


def test_a_backlog_ends_the_same_on_both_to_the_last_item() -> None:
    memory = simulate(60, 6, places=4, store="memory")
    moto = simulate(60, 6, places=4, store="moto-copies")
    assert len(memory.starts) == 66
    assert memory.starts == moto.starts, "the same jobs started, in the same order"
    assert memory.measures() == moto.measures()
    for name, items in moto.items.items():
        key = "job_id" if "job_id" in items[0] else "counter"

        def by_key(item: dict[str, Any], key: str = key) -> str:
            return str(item[key]["S"])

        assert comparable(sorted(memory.items[name], key=by_key)) == comparable(
            sorted(items, key=by_key)
        ), name


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield provision(None, stack_name="memory-check")


def answer(client: Any, operation: str, request: dict[str, Any]) -> Any:
    """What a store answered: its answer, or its error's code and cancellation reasons."""
    try:
        return comparable(getattr(client, operation)(**request))
    except ClientError as exc:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        return ("error", exc.response["Error"]["Code"], reasons)


def table_call(table: str, operation: str, **request: Any) -> tuple[str, dict[str, Any]]:
    return operation, {"TableName": table, **request}


def line_query(
    tasks: str, more: str, values: dict[str, Any] | None = None, **request: Any
) -> tuple[str, dict[str, Any]]:
    """A query of tenant a's line (`more`: a further key condition)."""
    return table_call(
        tasks,
        "query",
        IndexName="line-by-tenant",
        KeyConditionExpression="line_tenant = :t" + more,
        ExpressionAttributeValues={":t": s("a"), **(values or {})},
        **request,
    )


def job(n: int, **fields: dict[str, str]) -> dict[str, Any]:
    return {"job_id": {"S": f"j{n}"}, **fields}


def s(text: str) -> dict[str, str]:
    return {"S": text}


def n(number: float) -> dict[str, str]:
    return {"N": str(number)}


def calls(tasks: str, spending: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests of every shape the line sends, each refused and allowed."""
    counter = {"counter": s("day")}
    waiting = [
        table_call(
            tasks,
            "put_item",
            Item=job(i, line_tenant=s("a" if i % 3 else "b"), line_at=n(100 - i), state=s("HELD")),
        )
        for i in range(7)
    ]
    return [
        *waiting,
        table_call(
            tasks, "put_item", Item=job(0), ConditionExpression="attribute_not_exists(job_id)"
        ),
        table_call(
            tasks,
            "update_item",
            Key=job(1),
            UpdateExpression="SET #s = :s, held_since = if_not_exists(held_since, :t), "
            "created_at = if_not_exists(line_at, :t) REMOVE line_tenant, line_at",
            ConditionExpression="attribute_not_exists(job_id) OR (#s = :held AND line_at < :t)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":s": s("SUBMITTING"), ":held": s("HELD"), ":t": n(1000)},
            ReturnValues="ALL_NEW",
        ),
        table_call(
            tasks,
            "update_item",
            Key=job(2),
            UpdateExpression="SET #s = :s",
            ConditionExpression="#s IN (:a, :b) AND NOT attribute_exists(attempt)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":s": s("X"), ":a": s("PENDING"), ":b": s("DONE")},
        ),
        table_call(
            tasks,
            "update_item",
            Key=job(3),
            UpdateExpression="SET c = if_not_exists(c, :zero) + if_not_exists(d, :one), "
            "e = :one - :one",
            ExpressionAttributeValues={":zero": n(0), ":one": n(1.5)},
            ReturnValues="ALL_OLD",
        ),
        line_query(tasks, "", ScanIndexForward=True, Limit=3),
        line_query(tasks, " AND line_at < :at", {":at": n(97)}, Select="COUNT"),
        line_query(
            tasks,
            "",
            ScanIndexForward=False,
            ExclusiveStartKey={**job(2), "line_tenant": s("a"), "line_at": n(98)},
        ),
        table_call(
            tasks,
            "get_item",
            Key=job(4),
            ConsistentRead=True,
            ProjectionExpression="line_at, #s",
            ExpressionAttributeNames={"#s": "state"},
        ),
        ("batch_get_item", {"RequestItems": {tasks: {"Keys": [job(4), job(9), job(6)]}}}),
        table_call(
            spending,
            "update_item",
            Key=counter,
            UpdateExpression="ADD holders :job SET expires_at = :one",
            ConditionExpression="attribute_not_exists(holders) OR size(holders) < :cap "
            "OR contains(holders, :id)",
            ExpressionAttributeValues={
                ":job": {"SS": ["j1"]},
                ":one": n(1),
                ":cap": n(2),
                ":id": s("j1"),
            },
        ),
        table_call(
            spending,
            "update_item",
            Key=counter,
            UpdateExpression="ADD holders :job, submitted :one",
            ExpressionAttributeValues={":job": {"SS": ["j2", "j3"]}, ":one": n(1)},
        ),
        table_call(
            spending,
            "update_item",
            Key=counter,
            UpdateExpression="ADD holders :job",
            ConditionExpression="size(holders) < :cap OR contains(holders, :id)",
            ExpressionAttributeValues={":job": {"SS": ["j4"]}, ":cap": n(3), ":id": s("j4")},
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": tasks, "Item": job(20, state=s("SUBMITTING"))}},
                    {
                        "Update": {
                            "TableName": spending,
                            "Key": counter,
                            "UpdateExpression": "ADD submitted :one",
                            "ConditionExpression": "submitted < :cap",
                            "ExpressionAttributeValues": {":one": n(1), ":cap": n(1)},
                        }
                    },
                ]
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": tasks, "Item": job(21, state=s("SUBMITTING"))}},
                    {
                        "ConditionCheck": {
                            "TableName": spending,
                            "Key": counter,
                            "ConditionExpression": "contains(holders, :id) AND begins_with(#c, :d)",
                            "ExpressionAttributeNames": {"#c": "counter"},
                            "ExpressionAttributeValues": {":id": s("j3"), ":d": s("da")},
                        }
                    },
                    {
                        "Update": {
                            "TableName": spending,
                            "Key": {"counter": s("month")},
                            "UpdateExpression": "ADD spent :one",
                            "ConditionExpression": "attribute_not_exists(spent) "
                            "OR spent BETWEEN :zero AND :one",
                            "ExpressionAttributeValues": {":one": n(1), ":zero": n(0)},
                        }
                    },
                ]
            },
        ),
        table_call(
            spending,
            "update_item",
            Key=counter,
            UpdateExpression="DELETE holders :jobs",
            ExpressionAttributeValues={":jobs": {"SS": ["j1", "j2", "j3"]}},
            ReturnValues="ALL_NEW",
        ),
        table_call(
            spending,
            "update_item",
            Key=counter,
            UpdateExpression="REMOVE #w SET #i = :now",
            ConditionExpression="#w = :stamp",
            ExpressionAttributeNames={"#w": "w:a", "#i": "i:a"},
            ExpressionAttributeValues={":stamp": s("1/x"), ":now": n(5)},
        ),
        table_call(
            tasks, "delete_item", Key=job(6), ConditionExpression="attribute_exists(job_id)"
        ),
        table_call(tasks, "scan"),
        table_call(spending, "scan"),
    ]


def test_each_kind_of_request_is_answered_as_moto_answers_it(stack: Stack) -> None:
    ddb = stack.client("dynamodb")
    tasks, spending = stack.tasks_table, stack.refs["SpendingTable"]
    memory = MemoryDynamoDB.copy_of(ddb, [tasks, spending])
    for operation, request in calls(tasks, spending):
        expected = answer(ddb, operation, request)
        got = answer(memory, operation, request)
        if operation == "scan":
            expected = sorted(expected["Items"], key=repr)
            got = sorted(got["Items"], key=repr)
        assert got == expected, (operation, request)


def test_what_it_does_not_know_it_refuses_rather_than_answer_wrongly() -> None:
    memory = MemoryDynamoDB(exceptions=None)
    with pytest.raises(NotImplementedError):
        memory.get_item(TableName="t", Key={}, Select="ALL")
    with pytest.raises(NotImplementedError):
        memory.get_paginator("list_tables")
