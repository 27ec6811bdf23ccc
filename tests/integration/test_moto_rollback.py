"""The backlog benchmark's moto, its transactions rolled back item by item
(tests/moto_rollback.py), gives what plain moto gives for the calls the line makes."""

from __future__ import annotations

import pytest
from moto import mock_aws

from local_cloud.stack import provision
from tests.bench.backlog import simulate
from tests.moto_rollback import item_rollback

pytestmark = pytest.mark.slow


def test_the_backlog_starts_the_same_jobs_in_the_same_order_as_on_plain_moto() -> None:
    fast = simulate(60, 6, places=4, store="moto")
    plain = simulate(60, 6, places=4, store="moto-copies")
    assert fast.starts == plain.starts
    assert len(fast.starts) == 66
    assert fast.measures() == plain.measures()


def test_a_cancelled_transaction_leaves_every_item_as_it_was() -> None:
    with mock_aws(), item_rollback():
        stack = provision(None, stack_name="rollback")
        ddb = stack.client("dynamodb")
        table = stack.refs["SpendingTable"]
        ddb.put_item(TableName=table, Item={"counter": {"S": "kept"}, "n": {"N": "1"}})
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": {"counter": {"S": "new"}}}},
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"counter": {"S": "kept"}},
                            "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": {"counter": {"S": "absent"}},
                            "ConditionExpression": "attribute_exists(#c)",
                            "ExpressionAttributeNames": {"#c": "counter"},
                        }
                    },
                ]
            )
        items = ddb.scan(TableName=table)["Items"]
        assert [i for i in items if i["counter"]["S"] in ("new", "kept")] == [
            {"counter": {"S": "kept"}, "n": {"N": "1"}}
        ]
