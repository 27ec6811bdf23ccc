"""A poll run keeps watching for most of its minute, and a submission wakes one when
nobody watches: songs are announced seconds after they are ready."""

from __future__ import annotations

import json

from lyrics_to_song.check_timing import likely_window
from lyrics_to_song.data.rows import JobState
from tests.integration.moto_cloud import Cloud


def wakes(cloud: Cloud) -> list[dict[str, object]]:
    """The messages on the poll-wake queue (taken off it)."""
    sqs = cloud.stack.client("sqs")
    url = cloud.services.settings.poll_wake_queue_url
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_run_watches_until_the_song_is_ready_and_announces_it_within_seconds(
    cloud: Cloud,
) -> None:
    job_id = cloud.submit()
    started = cloud.clock.now
    report = cloud.watch()
    (task,) = cloud.emulator.tasks.values()
    row = cloud.services.table.get(job_id)
    assert row is not None
    assert row.state is JobState.COMPLETED
    assert report.completed == 1
    assert report.sweeps > 2, "it slept between sweeps instead of returning"
    window = likely_window([], cloud.services.settings.typical_song_seconds)
    assert (row.finished_at or 0) - task.ready_at <= window.interval + 0.01
    assert cloud.clock.now - started < cloud.services.settings.poll_watch_seconds
    assert len(cloud.notifications()) == 1


def test_an_idle_run_returns_at_once(cloud: Cloud) -> None:
    started = cloud.clock.now
    report = cloud.watch()
    assert (report.sweeps, cloud.clock.now) == (1, started)


def test_a_run_returns_before_the_next_scheduled_one(cloud: Cloud) -> None:
    cloud.emulator.faults.never_finish = True
    cloud.submit()
    started = cloud.clock.now
    report = cloud.watch()
    assert report.running > 1
    assert cloud.clock.now - started <= cloud.services.settings.poll_watch_seconds
    assert cloud.services.table.next_due() is not None, "the song is still followed"


def test_a_submission_wakes_a_run_only_when_nobody_watches(cloud: Cloud) -> None:
    first = cloud.submit(request_id="first")
    assert wakes(cloud) == [{"wake": first}]
    cloud.services.poll_watch.hold(cloud.clock.now + 58)  # a run watches the next minute
    cloud.submit(request_id="second")
    assert wakes(cloud) == [], "the watching run will see it"


def test_a_woken_run_does_nothing_while_another_watches(cloud: Cloud) -> None:
    cloud.submit()
    cloud.clock.advance(31)
    cloud.services.poll_watch.hold(cloud.clock.now + 30)
    assert cloud.watch(woken=True).sweeps == 0
    cloud.clock.advance(31)
    assert cloud.watch(woken=True).completed == 1, "once that watch is over, it takes over"


def test_a_run_that_leaves_early_says_nobody_watches(cloud: Cloud) -> None:
    cloud.submit()
    cloud.watch()  # the song ends; nothing is open; the run leaves before its minute is up
    assert cloud.services.poll_watch.until() <= cloud.clock.now
    wakes(cloud)
    later = cloud.submit(request_id="later")
    assert wakes(cloud) == [{"wake": later}]
