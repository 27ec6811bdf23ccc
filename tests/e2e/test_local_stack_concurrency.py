"""moto's server under the concurrent requests the functions make."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_cloud.stack import MotoServer, provision

pytestmark = pytest.mark.e2e


def test_refused_transactions_and_writes_at_the_same_time(moto_server: MotoServer) -> None:
    """moto copies and puts back whole tables around a transaction; the stack serializes."""
    stack = provision(moto_server.url, stack_name="concurrency")
    ddb = stack.client("dynamodb")
    table = stack.tasks_table
    for start in range(0, 1000, 25):  # big enough that copying the table takes a while
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"job_id": {"S": f"old-{n}"}}}}
                    for n in range(start, start + 25)
                ]
            }
        )
    no_retries = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    errors: list[str] = []
    refused = 0
    done = threading.Event()

    def keep_refusing() -> None:
        nonlocal refused
        while not done.is_set():
            try:
                no_retries.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": table,
                                "Item": {"job_id": {"S": "old-0"}},
                                "ConditionExpression": "attribute_not_exists(job_id)",
                            }
                        }
                    ]
                )
            except no_retries.exceptions.TransactionCanceledException:
                refused += 1
            except ClientError as exc:
                errors.append(exc.response["Error"]["Code"])

    refuser = threading.Thread(target=keep_refusing)
    refuser.start()
    try:
        for n in range(100):
            ddb.put_item(TableName=table, Item={"job_id": {"S": f"new-{n}"}})
    finally:
        done.set()
        refuser.join()
    assert refused > 0
    assert errors == []
    assert ddb.scan(TableName=table, Select="COUNT")["Count"] == 1100
