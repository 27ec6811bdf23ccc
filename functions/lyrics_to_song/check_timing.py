"""When to ask the API about a song: not before it can plausibly be ready, often around the
time songs of its model usually take, sparser after it (docs/how-it-works.md: When songs
are checked).

Pure functions of the times this stack has seen; no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# API in One's own figure for a song: 30-90 s (docs/music-api.md, "Rates and times").
# Used until a model has MIN_SAMPLES finished songs of its own.
PRIOR_SECONDS = (30.0, 90.0)
MIN_SAMPLES = 10
# The likely window runs from the 5th to the 95th percentile of the songs seen.
WINDOW_QUANTILES = (0.05, 0.95)
# The first check comes a little before the window, so that songs getting faster are
# seen early and pull the window down (a first check at the window's start could only
# ever observe songs at that time or later).
EARLY_FACTOR = 0.8
# Checks spread over the window; 15 keeps a 30-90 s window at one check every 4.4 s
# (a song is seen about 2 s after it is ready, on average) and about 9 checks a song.
CHECKS_PER_WINDOW = 15
MIN_INTERVAL = 1.0
MAX_WINDOW_INTERVAL = 20.0
# Past the window, the wait grows by half the time already spent past it, up to a minute.
LATE_GROWTH = 0.5
MAX_LATE_INTERVAL = 60.0


class CheckPolicy(Protocol):
    """Ages are seconds since the API took the job."""

    @property
    def earliest(self) -> float:
        """No status check before this age."""
        ...

    def next_check(self, age: float, checks: int) -> float:
        """The age of the next check, after one at `age` (the `checks`-th) found it running."""
        ...


@dataclass(frozen=True)
class LikelyWindow:
    """When a model's songs are usually ready, and the check policy that follows from it."""

    start: float
    end: float
    songs: int  # finished songs it was learned from; 0: the documented prior

    @property
    def earliest(self) -> float:
        return self.start * EARLY_FACTOR

    @property
    def interval(self) -> float:
        """The spacing of checks within the window."""
        spread = (self.end - self.earliest) / CHECKS_PER_WINDOW
        return min(MAX_WINDOW_INTERVAL, max(MIN_INTERVAL, spread))

    def next_check(self, age: float, checks: int) -> float:
        if age < self.earliest:
            return self.earliest
        if age < self.end:
            return age + self.interval
        late = self.interval + LATE_GROWTH * (age - self.end)
        return age + min(MAX_LATE_INTERVAL, late)

    def expected(self) -> float:
        """A middle estimate of a song's time, for people."""
        return (self.start + self.end) / 2


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolated between neighbours."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def likely_window(
    seconds_to_song: Sequence[float], prior: tuple[float, float] = PRIOR_SECONDS
) -> LikelyWindow:
    """The window learned from a model's recent songs, or the prior until there are enough."""
    if len(seconds_to_song) < MIN_SAMPLES:
        return LikelyWindow(prior[0], prior[1], 0)
    ordered = sorted(seconds_to_song)
    start, end = (quantile(ordered, q) for q in WINDOW_QUANTILES)
    return LikelyWindow(start, max(end, start + MIN_INTERVAL), len(ordered))
