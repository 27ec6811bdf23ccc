"""When songs are checked: the likely window and the checks it leads to."""

from __future__ import annotations

import random

import pytest

from lyrics_to_song.check_timing import (
    CHECKS_PER_WINDOW,
    EARLY_FACTOR,
    MAX_LATE_INTERVAL,
    MIN_INTERVAL,
    MIN_SAMPLES,
    PRIOR_SECONDS,
    LikelyWindow,
    likely_window,
    quantile,
)


def checks_until_seen(window: LikelyWindow, ready: float) -> tuple[int, float]:
    """How many checks find a song ready at `ready` s, and how long after it is seen."""
    age, checks = window.earliest, 1
    while age < ready:
        age = window.next_check(age, checks)
        checks += 1
    return checks, age - ready


def test_until_a_model_has_songs_of_its_own_the_documented_times_are_used() -> None:
    window = likely_window([41.0] * (MIN_SAMPLES - 1))
    assert (window.start, window.end, window.songs) == (*PRIOR_SECONDS, 0)


def test_the_window_is_learned_from_the_models_recent_songs() -> None:
    times = [float(t) for t in range(40, 61)]  # 21 songs of 40-60 s
    window = likely_window(times)
    assert window.songs == 21
    assert window.start == pytest.approx(quantile(sorted(times), 0.05))
    assert window.end == pytest.approx(quantile(sorted(times), 0.95))
    assert 40 < window.start < 42
    assert 58 < window.end < 60


def test_no_check_before_a_song_can_plausibly_be_ready() -> None:
    window = LikelyWindow(30.0, 90.0, 0)
    assert window.earliest == pytest.approx(30.0 * EARLY_FACTOR)
    assert window.next_check(0.0, 0) == window.earliest
    assert window.next_check(window.earliest - 1, 0) == window.earliest


def test_checks_are_close_together_in_the_window_and_sparser_after_it() -> None:
    window = LikelyWindow(30.0, 90.0, 0)
    in_window = [window.next_check(age, 1) - age for age in (30.0, 50.0, 89.0)]
    assert in_window == [pytest.approx((90.0 - window.earliest) / CHECKS_PER_WINDOW)] * 3
    late = [window.next_check(age, 1) - age for age in (90.0, 120.0, 200.0, 600.0)]
    assert late == sorted(late)
    assert late[0] == pytest.approx(window.interval)
    assert late[-1] == MAX_LATE_INTERVAL


def test_a_narrow_window_never_checks_closer_than_the_floor() -> None:
    assert LikelyWindow(2.0, 3.0, 10).interval == MIN_INTERVAL


def test_songs_of_30_to_90_seconds_are_seen_within_seconds_and_few_checks() -> None:
    window = likely_window([], PRIOR_SECONDS)
    rng = random.Random(5)
    results = [checks_until_seen(window, rng.uniform(30, 90)) for _ in range(2000)]
    checks = [c for c, _ in results]
    late = sorted(delay for _, delay in results)
    assert sum(checks) / len(checks) <= 15
    assert late[int(0.95 * len(late))] <= window.interval


def test_a_window_learned_from_faster_songs_moves_down() -> None:
    window = likely_window([], PRIOR_SECONDS)
    for _ in range(5):  # songs of 10 s, seen at the first check each time
        seen = [window.earliest] * MIN_SAMPLES
        window = likely_window(seen)
    assert window.start < 0.4 * PRIOR_SECONDS[0]
