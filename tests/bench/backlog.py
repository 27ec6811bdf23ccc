"""Backlog: 10,000 songs from one tenant and 10 from another sent a minute later, 20
places, songs of 30-90 s, on a simulated clock.

The submit function's intake and the admission are the real code. Their tables are held
in memory (tests/memory_dynamodb.py: moto takes about 10 ms a call and reads a whole
table for each index query, over an hour at this size); tests/integration/
test_memory_dynamodb.py shows they answer as moto does, call by call and to the last
item of a whole backlog, and a smaller backlog on moto (its transactions rolled back
item by item: tests/moto_rollback.py) is measured beside it. What is simulated: the API
making each song (a seeded 30-90 s), and the poll run noticing it (a sweep every
SWEEP_SECONDS ends the songs that are ready, then admits, as the poll run does after a
sweep that ended songs; each scheduled run admits too).

The baseline is the design before the line, modelled on the same draws: a held job
tried again by its own reminder 60 s after each hold, taking a place only if one is
free at that moment.
"""

from __future__ import annotations

import heapq
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

from moto import mock_aws

from local_cloud.stack import provision
from lyrics_to_song.admission import admit
from lyrics_to_song.config import load_settings
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.intake import handle_message
from lyrics_to_song.services import build_services
from lyrics_to_song.song_request import SongRequest
from lyrics_to_song.sources import QueuedRequest
from tests.memory_dynamodb import MemoryDynamoDB
from tests.moto_rollback import item_rollback
from tests.support import FakeClock

from .common import Result, sized

BIG, SMALL = int(os.environ.get("BENCH_BACKLOG_JOBS") or sized(10_000, 2_000, 40)), 10
ON_MOTO = sized(500, 100, 20)  # the same backlog's size on moto, beside it
PLACES = 20
SONG_SECONDS = (30.0, 90.0)
SMALL_AFTER = 60.0  # the small tenant sends this long after the big one
MESSAGE_SECONDS = 0.005  # the submit function's pace through a burst (2 pollers x 10 threads)
SWEEP_SECONDS = 2.0  # a watching poll run sweeps every 1-5 s
TICK_SECONDS = 60.0  # the schedule
REMINDER_SECONDS = 60  # the design before: a held job's next try (in-flight cap)
WRITES = ("put_item", "update_item", "delete_item")
# A waiting job's writes: its hold and its tenant's mark; the start's transaction (its row,
# the stack's and its tenant's day and in-flight items); the task id once paid; and its
# share of the admissions' freeing of ended jobs' places (the stack's set, its tenant's).
WRITES_PER_JOB = 10
READS = ("get_item",)
Store = Literal["memory", "moto", "moto-copies"]


@dataclass
class Figures:
    """What a run measured."""

    makespan: float  # from the first send to the last song's end
    ideal: float  # the songs' seconds over the places: no schedule ends sooner
    deliveries: Counter[str]  # submit-function deliveries, per job
    small_wait: float  # the small tenant's first send to its first start
    out_of_order: dict[str, float]  # per tenant, the share of its pairs started reversed
    writes: float  # DynamoDB item writes per job (intake and admission)
    reads: float  # DynamoDB items read per job (intake and admission)
    starts: list[str] = field(default_factory=list)  # job ids, in the order they started
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the tables, at the end

    def measures(self) -> tuple[Any, ...]:
        """Every figure a row shows (two runs that agree on these agree on every row)."""
        return (
            self.makespan,
            self.small_wait,
            self.out_of_order,
            self.writes,
            self.reads,
            self.deliveries,
        )


@dataclass
class _Counting:
    """A DynamoDB client whose item reads and writes are counted."""

    client: Any
    writes: int = 0
    reads: int = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.client, name)
        if name in WRITES:
            return self._counted(found, writes=lambda kw, answer: 1)
        if name == "transact_write_items":
            return self._counted(found, writes=lambda kw, answer: len(kw["TransactItems"]))
        if name in READS:
            return self._counted(found, reads=lambda kw, answer: 1)
        if name == "batch_get_item":
            return self._counted(
                found, reads=lambda kw, a: sum(len(t["Keys"]) for t in kw["RequestItems"].values())
            )
        if name == "query":
            return self._counted(found, reads=lambda kw, answer: max(1, answer.get("Count", 0)))
        if name == "get_paginator":
            return lambda operation: _CountedPages(self, found(operation))
        return found

    def _counted(
        self,
        call: Callable[..., Any],
        *,
        writes: Callable[[dict[str, Any], Any], int] | None = None,
        reads: Callable[[dict[str, Any], Any], int] | None = None,
    ) -> Callable[..., Any]:
        def counted(**kwargs: Any) -> Any:
            answer = call(**kwargs)
            self.writes += writes(kwargs, answer) if writes else 0
            self.reads += reads(kwargs, answer) if reads else 0
            return answer

        return counted


@dataclass
class _CountedPages:
    """A paginator whose pages' items are counted as read."""

    counting: _Counting
    paginator: Any

    def paginate(self, **kwargs: Any) -> Any:
        for page in self.paginator.paginate(**kwargs):
            self.counting.reads += max(1, page.get("Count", 0))
            yield page


class _SongMaker:
    """The music API as the admission meets it: it takes a song, which is ready a seeded
    30-90 s later."""

    def __init__(self, clock: FakeClock, durations: dict[str, float]) -> None:
        self.clock = clock
        self.durations = durations
        self.ready: list[tuple[float, str]] = []  # (when, lyrics), a heap
        self.started: dict[str, float] = {}

    def submit(self, request: SongRequest) -> str:
        self.started[request.lyrics] = self.clock.now
        heapq.heappush(
            self.ready, (self.clock.now + self.durations[request.lyrics], request.lyrics)
        )
        return f"task-{len(self.started)}"


def _bodies(big: int, small: int) -> list[tuple[float, str, dict[str, Any]]]:
    """(when sent, tenant, request), in the order sent."""
    sent = [(i * MESSAGE_SECONDS, "big", i) for i in range(big)]
    sent += [(SMALL_AFTER + i * MESSAGE_SECONDS, "small", i) for i in range(small)]
    return [
        (
            at,
            tenant,
            {
                "request_id": f"{tenant}-{n}",
                "prompt": "bench",
                "lyrics": f"{tenant} {n}",
                "tenant": tenant,
            },
        )
        for at, tenant, n in sent
    ]


def _durations(big: int, small: int, seed: int) -> dict[str, float]:
    draw = random.Random(seed)
    names = [f"big {n}" for n in range(big)] + [f"small {n}" for n in range(small)]
    return {name: draw.uniform(*SONG_SECONDS) for name in names}


def simulate(
    big: int, small: int, places: int = PLACES, seed: int = 7, *, store: Store = "memory"
) -> Figures:
    """The line: the real intake and admission code on a simulated clock, its tables in
    memory (tests/memory_dynamodb.py), on moto with its transactions rolled back item by
    item ("moto"), or on plain moto ("moto-copies")."""
    durations = _durations(big, small, seed)
    with mock_aws(), item_rollback() if store == "moto" else nullcontext():
        stack = provision(None, stack_name="bench-backlog")
        tables: Any = stack.client("dynamodb")
        if store == "memory":
            names = [stack.tasks_table, stack.refs["SpendingTable"]]
            tables = MemoryDynamoDB.copy_of(tables, names)
        total = str(big + small)
        env = {
            **stack.environments["SubmitFunction"],
            "MUSIC_API_KEY": "bench",
            "MAX_SONGS_IN_FLIGHT": str(places),
            "TENANT_SONGS_IN_FLIGHT": str(places),
            "MAX_SONGS_PER_DAY": total,
            "TENANT_SONGS_PER_DAY": total,
            "TENANT_POLICY": "open",
        }
        for name in ("MUSIC_API_KEY_SECRET_ARN", "POLL_WAKE_QUEUE_URL"):
            env.pop(name, None)
        clock = FakeClock()
        start = clock.now
        maker = _SongMaker(clock, durations)
        counting = _Counting(tables)
        services = build_services(
            load_settings(env),
            client=lambda name: counting if name == "dynamodb" else stack.client(name),
            api=maker,  # type: ignore[arg-type]
            clock=clock,
        )
        registry = TenantRegistry(tables, stack.refs["SpendingTable"])
        for tenant in ("big", "small"):
            registry.add(tenant, clock.now)
        ender = tables
        deliveries: Counter[str] = Counter()
        jobs: dict[str, str] = {}  # lyrics -> job id
        events: list[tuple[float, int, str, Any]] = []
        for n, (at, _, body) in enumerate(_bodies(big, small)):
            heapq.heappush(events, (start + at, n, "send", body))
        heapq.heappush(events, (start + SWEEP_SECONDS, -1, "sweep", None))
        heapq.heappush(events, (start + TICK_SECONDS, -2, "tick", None))
        ended = 0
        last_end = start
        while ended < big + small:
            at, seq, kind, body = heapq.heappop(events)
            clock.now = max(clock.now, at)
            if kind == "send":
                job_id = QueuedRequest(body, "m").job_for(body["tenant"]).job_id
                jobs[body["lyrics"]] = job_id
                deliveries[job_id] += 1
                handle_message(services, json.dumps(body), f"m{seq}", None)
                continue
            if kind == "sweep":
                done = []
                while maker.ready and maker.ready[0][0] <= clock.now:
                    ready_at, lyrics = heapq.heappop(maker.ready)
                    done.append(lyrics)
                    last_end = max(last_end, ready_at)
                for lyrics in done:
                    ender.update_item(
                        TableName=stack.tasks_table,
                        Key={"job_id": {"S": jobs[lyrics]}},
                        UpdateExpression="SET #s = :done REMOVE open_shard, due_at",
                        ExpressionAttributeNames={"#s": "state"},
                        ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
                    )
                ended += len(done)
                if done:
                    admit(services)
                heapq.heappush(events, (clock.now + SWEEP_SECONDS, -1, "sweep", None))
            else:
                admit(services)
                heapq.heappush(events, (clock.now + TICK_SECONDS, -2, "tick", None))
        writes, reads = counting.writes, counting.reads
        items = {
            name: _scanned(tables, name)
            for name in (stack.tasks_table, stack.refs["SpendingTable"])
        }
    started = maker.started
    order = sorted(started, key=lambda lyrics: (started[lyrics], lyrics))
    return Figures(
        makespan=last_end - start,
        ideal=sum(durations.values()) / places,
        deliveries=deliveries,
        small_wait=started["small 0"] - (start + SMALL_AFTER) if small else float("nan"),
        out_of_order={t: _reversed_share(order, t) for t in ("big", "small")},
        writes=writes / (big + small),
        reads=reads / (big + small),
        starts=[jobs[lyrics] for lyrics in order],
        items=items,
    )


def _scanned(client: Any, table_name: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("scan").paginate(TableName=table_name)
    return [item for page in pages for item in page["Items"]]


def reminders(big: int, small: int, places: int = PLACES, seed: int = 7) -> Figures:
    """The design before the line, modelled on the same draws: a held job waits for its
    own reminder, REMINDER_SECONDS after each hold, and starts then only if a place is
    free (a song's place frees when the poll run ends it, at a sweep)."""
    durations = _durations(big, small, seed)
    events: list[tuple[float, int, str, str]] = []
    for n, (at, _, body) in enumerate(_bodies(big, small)):
        heapq.heappush(events, (at, n, "try", body["lyrics"]))
    busy: list[float] = []  # when each running song frees its place (at the sweep after)
    tries: Counter[str] = Counter()
    started: dict[str, float] = {}
    last_end = 0.0
    while events:
        now, n, _, lyrics = heapq.heappop(events)
        while busy and busy[0] <= now:
            heapq.heappop(busy)
        tries[lyrics] += 1
        if len(busy) < places:
            started[lyrics] = now
            ready = now + durations[lyrics]
            last_end = max(last_end, ready)
            heapq.heappush(busy, SWEEP_SECONDS * (ready // SWEEP_SECONDS + 1))
        else:
            heapq.heappush(events, (now + REMINDER_SECONDS, n, "try", lyrics))
    order = sorted(started, key=lambda lyrics: (started[lyrics], lyrics))
    return Figures(
        makespan=last_end,
        ideal=sum(durations.values()) / places,
        deliveries=tries,
        small_wait=started["small 0"] - SMALL_AFTER,
        out_of_order={t: _reversed_share(order, t) for t in ("big", "small")},
        writes=float("nan"),
        reads=float("nan"),
    )


def _reversed_share(order: list[str], tenant: str) -> float:
    """The share of the tenant's pairs of jobs that started in the other order than sent
    (an inversion count, by merge sort)."""
    sent = [int(lyrics.split()[1]) for lyrics in order if lyrics.split()[0] == tenant]
    pairs = len(sent) * (len(sent) - 1) / 2
    return _inversions(sent) / pairs if pairs else 0.0


def _inversions(values: list[int]) -> int:
    if len(values) < 2:
        return 0
    middle = len(values) // 2
    left, right = values[:middle], values[middle:]
    count = _inversions(left) + _inversions(right)
    merged: list[int] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            count += len(left) - i
            j += 1
    merged += left[i:] + right[j:]
    values[:] = merged
    return count


def run() -> list[Result]:
    small_size = 10
    line, before = simulate(BIG, SMALL), reminders(BIG, SMALL)
    moto = simulate(ON_MOTO, SMALL, store="moto")
    few = simulate(small_size, 0)
    size = (
        f"{BIG:,} + {SMALL} songs, {PLACES} places, songs 30-90 s "
        "(simulated clock, tables in memory)"
    )
    on_moto = f"on moto at {ON_MOTO:,} + {SMALL}"
    ratio, was = line.makespan / line.ideal, before.makespan / before.ideal
    most = max(line.deliveries.values())
    small_target = sum(SONG_SECONDS) / 2
    worst_order = max(line.out_of_order.values())
    return [
        Result(
            f"backlog: makespan, {size}",
            f"{line.makespan:,.0f} s, {ratio:.3f}x the ideal {line.ideal:,.0f} s "
            f"({on_moto}: {moto.makespan / moto.ideal:.3f}x)",
            f"reminders: {before.makespan:,.0f} s, {was:.2f}x",
            f"{line.makespan / before.makespan:.2f}x",
            "<= 1.1x the ideal",
            ratio <= 1.1,
        ),
        Result(
            "backlog: submit-function deliveries per job",
            f"at most {most}, {_mean(line.deliveries):.2f} a job "
            f"({on_moto}: at most {max(moto.deliveries.values())})",
            f"reminders: at most {max(before.deliveries.values())}, "
            f"{_mean(before.deliveries):.2f} a job",
            "-",
            "<= 2",
            most <= 2,
        ),
        Result(
            "backlog: the small tenant's first song, from its send",
            f"started after {line.small_wait:.1f} s ({on_moto}: {moto.small_wait:.1f} s)",
            f"reminders: {before.small_wait:.1f} s",
            "-",
            f"<= {small_target:.0f} s (a song's time)",
            line.small_wait <= small_target,
        ),
        Result(
            "backlog: a tenant's pairs of jobs started out of order",
            ", ".join(f"{t} {share:.2%}" for t, share in line.out_of_order.items())
            + f" ({on_moto}: {max(moto.out_of_order.values()):.2%} at most)",
            "reminders: "
            + ", ".join(f"{t} {share:.2%}" for t, share in before.out_of_order.items()),
            "-",
            "<= 1%",
            worst_order <= 0.01,
        ),
        Result(
            "backlog: DynamoDB items per job, intake and admission",
            f"{line.writes:.1f} written, {line.reads:.1f} read at {BIG + SMALL:,} jobs "
            f"({on_moto}: {moto.writes:.1f} written, {moto.reads:.1f} read)",
            f"{few.writes:.1f} written, {few.reads:.1f} read at {small_size} jobs (none waits)",
            f"{line.writes / few.writes:.2f}x writes",
            f"<= {WRITES_PER_JOB} written (join 2, start 5, paid 1, places freed 2)",
            line.writes <= WRITES_PER_JOB,
        ),
    ]


def _mean(deliveries: Counter[str]) -> float:
    return sum(deliveries.values()) / len(deliveries)
