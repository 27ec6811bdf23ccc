"""moto's server under the concurrent requests the functions make."""

from __future__ import annotations

import json
import os
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_cloud.emulator import MusicApiEmulator
from local_cloud.moto_server import MotoServer
from local_cloud.serve import LocalService
from local_cloud.stack import provision
from lyrics_to_song.data.task_table import TaskTable

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


def test_stopping_the_local_stack_leaves_no_invocation_behind() -> None:
    """A poll run still watching when the stack stops must not keep the functions'
    environment (moto's endpoint among it) set for whatever runs next in the process."""
    before = dict(os.environ)
    emulator = MusicApiEmulator(completion_delay=0.5)
    emulator.faults.never_finish = True  # the poll run has a task to watch for its minute
    service = LocalService(port=0, stack_name="stopping", emulator=emulator, tick_seconds=0.2)
    service.start(lambda note: None)
    table = TaskTable(service.stack.client("dynamodb"), service.stack.tasks_table)
    service.stack.client("sqs").send_message(
        QueueUrl=service.stack.jobs_queue_url,
        MessageBody=json.dumps({"prompt": "drone", "lyrics": "la la"}),
    )
    deadline = time.monotonic() + 30
    while not any(row.polls for row in table.rows()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(row.polls for row in table.rows()), "a poll run is watching the task"
    service.stop()
    assert dict(os.environ) == before
    assert not service.errors
