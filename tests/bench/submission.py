"""Submission: a batch of 10 records with the API answering in 300 ms."""

from __future__ import annotations

import json
import os
from functools import partial

from moto import mock_aws

from local_cloud.runtime import LocalContext, environment
from local_cloud.stack import provision
from lyrics_to_song import submit_handler
from lyrics_to_song.data.tenant_registry import TenantRegistry
from tests.support import sqs_event

from .common import Result, emulator_process, median, open_caps, sized, timed

API_SECONDS = 0.3
BATCH = 10
ROUNDS = sized(3, 3, 1)
SONGS = 2 + ROUNDS * (1 + 2 * BATCH)


def run() -> list[Result]:
    with mock_aws(), emulator_process("--delay", "0", "--slow", str(API_SECONDS)) as emulator:
        stack = provision(None, stack_name="bench-submit")
        env = {
            **stack.environments["SubmitFunction"],
            "MUSIC_API_BASE_URL": emulator.url,
            "MUSIC_API_KEY": emulator.api_key,
            "MUSIC_API_KEY_SECRET_ARN": "",
            # The caps are opened: this measures the sending, and a deferred job sends nothing.
            **open_caps(SONGS),
        }
        with environment(env):
            os.environ.pop("MUSIC_API_KEY_SECRET_ARN")
            submit_handler.services.cache_clear()

            def batch(size: int, round_no: int, tenant: str | None = None) -> None:
                bodies = [
                    {"request_id": f"r{round_no}-{size}-{i}", "prompt": "bench", "lyrics": "la"}
                    | ({"tenant": tenant} if tenant else {})
                    for i in range(size)
                ]
                context = LocalContext("bench-submit", 60)
                response = submit_handler.handler(sqs_event(*map(json.dumps, bodies)), context)
                assert response["batchItemFailures"] == [], response

            batch(1, -1)  # cold start outside the measurement
            one = median([timed(partial(batch, 1, r)) for r in range(ROUNDS)])
            ten = median([timed(partial(batch, BATCH, r)) for r in range(ROUNDS)])
            # A registered tenant's jobs: its registry entry and caps come in the one read
            # every submission makes, and its caps join the row's transaction.
            TenantRegistry(stack.client("dynamodb"), stack.refs["SpendingTable"]).add("team-a", 0)
            os.environ["TENANT_POLICY"] = "open"  # the records carry no SenderId to bind
            submit_handler.services.cache_clear()
            batch(1, -1, "team-a")  # its cold start outside the measurement too
            tenant = median([timed(partial(batch, BATCH, r, "team-a")) for r in range(ROUNDS)])
            submit_handler.services.cache_clear()
        assert len(emulator.submissions()) == SONGS, "every record was sent to the API"
    ratio = ten / one
    return [
        Result(
            f"submission, batch of {BATCH}, API {API_SECONDS * 1000:.0f} ms/request",
            f"{ten:.2f} s per batch",
            f"one record {one:.2f} s",
            f"{ratio:.2f}x one request",
            "<= 2x",
            ratio <= 2,
        ),
        Result(
            f"submission, batch of {BATCH} for a registered tenant with caps (open policy)",
            f"{tenant:.2f} s per batch",
            f"the default tenant's {ten:.2f} s",
            f"{tenant / ten:.2f}x",
            "-",
            None,
        ),
    ]
