"""Webhooks: 20 healthy receivers and one that never answers, each sent 100 notices an
hour; how long the healthy receivers' webhooks wait to be delivered.

A model on a simulated clock of the webhook function as its event source drives it (2
batches of up to 5 at once, a message hidden until its next attempt), with the
stack's own schedule (`next_wait`, `down_for`) and timeout: a healthy receiver answers
in 0.1 s, the dead one never (each attempt takes the 10 s timeout). Measured: the
design now (a batch's records at once, a receiver that does not answer marked down and
its webhooks left untried but for one probe a period) against the one before (a
batch's records one after another, every webhook of the dead receiver tried each time).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from lyrics_to_song.data.receivers import down_for
from lyrics_to_song.webhooks.delivery import next_wait

from .common import Result, sized

RECEIVERS = 21  # receiver 0 never answers
PER_HOUR = 100  # notices to each receiver
SPAN = sized(3600, 3600, 360)  # seconds of notices
TIMEOUT = 10.0  # WEBHOOK_TIMEOUT_SECONDS
ANSWER = 0.1  # a healthy receiver's answer
LOOK = 0.005  # reading a receiver's mark
FIRST_RETRY = 30.0
BATCH, POLLERS = 5, 2
P95_TARGET = 5.0


@dataclass
class _Message:
    receiver: int
    sent: float
    visible: float
    attempts: int = 0


def _notices(seed: int) -> list[_Message]:
    draw = random.Random(seed)
    found = []
    for receiver in range(RECEIVERS):
        at = draw.expovariate(PER_HOUR / 3600)
        while at < SPAN:
            found.append(_Message(receiver, at, at))
            at += draw.expovariate(PER_HOUR / 3600)
    return found


def simulate(*, isolated: bool, seed: int = 3) -> list[float]:
    """The healthy receivers' delays (delivery minus sending), in seconds."""
    waiting = _notices(seed)
    delays: list[float] = []
    pollers = [0.0] * POLLERS  # when each is free again
    down_until, failures = 0.0, 0
    horizon = SPAN + 3600  # an hour to drain what the last notices left
    while waiting:
        poller = min(range(POLLERS), key=pollers.__getitem__)
        now = max(pollers[poller], min(m.visible for m in waiting))
        if now > horizon:
            break
        visible = sorted((m for m in waiting if m.visible <= now), key=lambda m: m.visible)
        batch = visible[:BATCH]
        took: list[float] = []
        clock = now
        for message in batch:
            dead = message.receiver == 0
            if isolated and dead and now < down_until:  # a probe took the period's try
                message.visible = max(down_until, now) + 3.0  # waits, untried
                took.append(LOOK)
                continue
            spent = (TIMEOUT if dead else ANSWER) + (LOOK if isolated else 0.0)
            start = now if isolated else clock
            clock = start + spent
            took.append(spent)
            if dead:
                message.attempts += 1
                message.visible = (
                    start
                    + spent
                    + next_wait(FIRST_RETRY, message.attempts, lambda low, high: (low + high) / 2)
                )
                if isolated:
                    failures += 1
                    down_until = start + spent + down_for(failures)
            else:
                delays.append(start + spent - message.sent)
                waiting.remove(message)
        pollers[poller] = now + (max(took) if isolated else sum(took)) if took else now + 1.0
    return delays


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def run() -> list[Result]:
    now, before = simulate(isolated=True), simulate(isolated=False)
    p95, was = _p95(now), _p95(before)
    return [
        Result(
            f"webhooks: {RECEIVERS - 1} healthy receivers and one that never answers, "
            f"{PER_HOUR} notices an hour each (model, simulated clock)",
            f"healthy p95 delay {p95:.2f} s, worst {max(now):.1f} s",
            f"one at a time, no breaker: p95 {was:.2f} s, worst {max(before):.1f} s",
            f"{p95 / was:.3f}x" if was else "-",
            f"<= {P95_TARGET:.0f} s",
            p95 <= P95_TARGET,
        )
    ]
