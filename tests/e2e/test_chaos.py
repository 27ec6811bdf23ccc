"""A smaller chaos run (`make chaos` runs the full one): every promise under faults."""

from __future__ import annotations

import os

import pytest

from local_cloud.emulator_faults import HOSTILE_FAULTS
from tests.chaos.harness import ChaosRun, ChaosSettings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_every_promise_holds_under_faults_duplicates_overlap_and_kills() -> None:
    # Fewer jobs than `make chaos`, so more faults each, enough that every kind shows up.
    settings = ChaosSettings(
        jobs=40,
        seed=11,
        api_fault_rate=0.3,
        broken_download_rate=0.25,
        kill_rate=0.1,
        hostile_rate=0.1,
        resubmits=3,
        timeout=300,
    )
    outcome = ChaosRun(settings, say=print).run()
    print(outcome.table())
    assert outcome.failures == []
    # The run was hard enough to mean something.
    assert sum(outcome.kills.values()) > 0
    assert outcome.duplicates_sent > 0
    assert outcome.overlapping_poll_runs > 0
    assert outcome.deferred > 0
    assert "CANCELLED" in {row.state.value for row in outcome.rows.values()}, "a cancel landed"
    assert outcome.resubmitted
    assert outcome.notices_resent > 0, "some notices went out twice and were told apart"
    assert outcome.injected["cut"] > 0
    assert outcome.injected["broken download"] > 0
    assert sum(outcome.injected[kind] for kind in HOSTILE_FAULTS) > 0, "answers built to hurt"
    assert 0 < outcome.peak_mb <= 512, "held under the functions' memory, harness and all"
    states = {row.state.value for row in outcome.rows.values()}
    assert {"COMPLETED", "FAILED"} <= states
    # Overlapping invocations set the functions' environment; none of it stays behind.
    assert "AWS_ENDPOINT_URL" not in os.environ
