"""Transactions on the tasks table meeting what real DynamoDB answers and moto does not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lyrics_to_song.data import items
from lyrics_to_song.data.caps import Budget
from lyrics_to_song.data.task_table import AlreadyKnown, CapReached, Started, TaskTable
from lyrics_to_song.errors import Cap

NOW = 1_800_000_000.0


def cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]},
    )


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TaskTable, Budget, Stubber]]:
    monkeypatch.setattr("lyrics_to_song.data.items.time.sleep", lambda seconds: None)
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield TaskTable(client, "t"), Budget(client, "s", per_day=5, in_flight=2), stubber
        stubber.assert_no_pending_responses()


def start(tasks: TaskTable, budget: Budget | None) -> Any:
    """The job's first row, with its reservation (without one: outside the caps)."""
    return tasks.start(
        "job-1",
        source="sqs:r1",
        source_name="r1",
        request_json="{}",
        model="minimax-music",
        now=NOW,
        lease_seconds=60,
        reservation=budget.reserve("job-1", NOW) if budget else None,
    )


def test_a_conflict_with_another_transaction_is_tried_again(table: Any) -> None:
    tasks, budget, stubber = table
    cancelled(stubber, "None", "TransactionConflict", "None")
    cancelled(stubber, "TransactionConflict", "None", "None")
    stubber.add_response("transact_write_items", {})
    assert isinstance(start(tasks, budget), Started)


def test_a_lasting_conflict_goes_back_to_the_caller(table: Any) -> None:
    tasks, budget, stubber = table
    for _ in range(items.CONFLICT_ATTEMPTS):
        cancelled(stubber, "None", "TransactionConflict", "None")
    with pytest.raises(tasks.client.exceptions.TransactionCanceledException):
        start(tasks, budget)


@pytest.mark.parametrize(
    ("codes", "cap"),
    [
        (("None", "ConditionalCheckFailed", "None"), Cap.DAILY),
        (("None", "None", "ConditionalCheckFailed"), Cap.IN_FLIGHT),
    ],
)
def test_a_refused_cap_is_not_mistaken_for_a_conflict(
    table: Any, codes: tuple[str, ...], cap: Cap
) -> None:
    tasks, budget, stubber = table
    cancelled(stubber, *codes)
    assert start(tasks, budget) == CapReached(cap)


def test_an_existing_row_wins_over_a_full_cap(table: Any) -> None:
    tasks, budget, stubber = table
    cancelled(stubber, "ConditionalCheckFailed", "ConditionalCheckFailed", "None")
    assert start(tasks, budget) == AlreadyKnown()


def test_a_row_seeded_outside_the_caps_is_one_conditional_put(table: Any) -> None:
    tasks, _, stubber = table
    stubber.add_response("put_item", {})
    stubber.add_client_error("put_item", service_error_code="ConditionalCheckFailedException")

    assert isinstance(start(tasks, None), Started)
    assert start(tasks, None) == AlreadyKnown()
