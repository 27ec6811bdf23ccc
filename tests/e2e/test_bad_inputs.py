"""The bad-input corpus (tests/data/bad_inputs.json) through the whole local stack.

Each input must end as one FAILED job whose reason names the problem, with one
notification, no API call, no retry loop, and no failure of the batch around it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_pipeline import Pipeline

pytestmark = pytest.mark.e2e
CORPUS = json.loads((Path(__file__).parents[1] / "data" / "bad_inputs.json").read_text())["cases"]


def _content(case: dict[str, Any]) -> bytes:
    """A case's file or message: `hex`, or its `text`/`message`, then `repeat` `times`
    times, then `then`."""
    if "hex" in case:
        return bytes.fromhex(str(case["hex"]))
    start = str(case.get("text", case.get("message", "")))
    repeated = str(case.get("repeat", "")) * int(case.get("times", 0))
    return (start + repeated + str(case.get("then", ""))).encode()


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    assert {"file", "message"} <= {k for case in CORPUS for k in case}


def test_every_bad_input_fails_alone_with_its_reason(pipeline: Pipeline) -> None:
    expected: dict[str, str] = {}  # notification source -> reason it must carry
    sqs = pipeline.stack.client("sqs")
    for case in CORPUS:
        if "file" in case:
            pipeline.upload(case["file"], _content(case))
            expected[f"s3://{pipeline.stack.lyrics_bucket}/{case['file']}"] = case["reason"]
        else:
            sent = sqs.send_message(
                QueueUrl=pipeline.stack.jobs_queue_url, MessageBody=_content(case).decode()
            )
            expected[f"sqs:message/{sent['MessageId']}"] = case["reason"]

    batches = 0
    while (batch := pipeline.runtime.deliver_jobs(retry_delay_seconds=0)).received:
        batches += 1
        assert batch.failed == [], "bad input is never retried"
    # Each turn takes a batch of up to 10 from the jobs queue and from the lyric files queue.
    assert batches >= 2, "the inputs went through in several batches of up to 10"
    notes = pipeline.run(expected=len(CORPUS))

    by_source = {n["source"]: n for n in notes}
    assert len(notes) == len(CORPUS), "one notification each"
    assert set(by_source) == set(expected)
    for source, reason in expected.items():
        note = by_source[source]
        assert note["status"] == "FAILED", source
        assert reason in note["error"], (source, note["error"])
    assert pipeline.emulator.submissions == [], "nothing was paid for"
    assert (
        sqs.get_queue_attributes(
            QueueUrl=pipeline.stack.jobs_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
