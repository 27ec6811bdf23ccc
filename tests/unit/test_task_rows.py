"""Transactions on the tasks table meeting what real DynamoDB answers and moto does not."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lyrics_to_song import task_rows
from lyrics_to_song.task_rows import TaskTable, TransactionRefused

PUT = {"Put": {"TableName": "t", "Item": {"job_id": {"S": "j"}}}}
CAP = {"Update": {"TableName": "s", "Key": {"counter": {"S": "c"}}, "UpdateExpression": "x"}}


def cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr("lyrics_to_song.task_rows.time.sleep", lambda seconds: None)
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield TaskTable(client, "t"), stubber
        stubber.assert_no_pending_responses()


def test_a_conflict_with_another_transaction_is_tried_again(table: Any) -> None:
    tasks, stubber = table
    cancelled(stubber, "None", "TransactionConflict")
    cancelled(stubber, "TransactionConflict", "None")
    stubber.add_response("transact_write_items", {})
    assert tasks._write_with(PUT, [CAP]) is True


def test_a_lasting_conflict_goes_back_to_the_caller(table: Any) -> None:
    tasks, stubber = table
    for _ in range(task_rows.CONFLICT_ATTEMPTS):
        cancelled(stubber, "None", "TransactionConflict")
    with pytest.raises(tasks.client.exceptions.TransactionCanceledException):
        tasks._write_with(PUT, [CAP])


def test_a_refused_cap_is_not_mistaken_for_a_conflict(table: Any) -> None:
    tasks, stubber = table
    cancelled(stubber, "None", "ConditionalCheckFailed")
    with pytest.raises(TransactionRefused) as refused:
        tasks._write_with(PUT, [CAP])
    assert refused.value.failed == [0]


def test_an_existing_row_wins_over_a_full_cap(table: Any) -> None:
    tasks, stubber = table
    cancelled(stubber, "ConditionalCheckFailed", "ConditionalCheckFailed")
    assert tasks._write_with(PUT, [CAP]) is False
