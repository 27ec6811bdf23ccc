"""The chaos run: many jobs through the local stack while everything that can go wrong does.

The emulator injects API faults at random (429, 500, 503, malformed bodies, answers cut
off after the work was done, answers later than the client waits), fails tasks, and
breaks or slows downloads. The harness sends duplicate deliveries, runs two pollers at
once, kills handlers between their steps, resubmits some ended jobs, and sends a share
of the jobs' webhooks to a receiver that fails at random. Then it checks
what the package promises: one terminal state and one notice per ending (copies of a notice
re-sent after a crash are the same notice: one `notice_id`, the same fields), at most
one paid submission per job and resubmission, every song the API took on its job's
row as charged or maybe charged (and nothing charged it did not take), songs
byte-identical to what the API served, a reason for every job without a song, no
half-uploaded object left behind, and every webhook delivered (by its delivery id) or
given up.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from local_cloud.emulator import MusicApiEmulator, RunningEmulator
from local_cloud.emulator_faults import API_FAULTS, HOSTILE_FAULTS, Faults
from local_cloud.receiver import WebhookReceiver
from local_cloud.runtime import LocalLambda
from local_cloud.stack import REGION, Stack, provision
from local_cloud.template import load_template
from local_cloud.watch import read_notifications, subscribe_queue
from local_cloud.workflow import run_state_machines
from lyrics_to_song.config import DEFAULT_CREDITS_PER_SONG
from lyrics_to_song.data.caps import TenantCaps, TenantStore, day_of
from lyrics_to_song.data.rows import DEFAULT_TENANT, JobState, Row, WebhookState
from lyrics_to_song.data.senders import SenderStore
from lyrics_to_song.data.spend import Counts, SpendLedger
from lyrics_to_song.data.tenant_registry import TenantRegistry
from lyrics_to_song.follow import AGE_SLACK_SECONDS
from lyrics_to_song.song_request import parse_request
from lyrics_to_song.sources import LyricObject, QueuedRequest, job_id_for, reused_job
from lyrics_to_song.webhooks.queue import notice_id
from tests.bench.common import moto_process
from tests.support import s3_notification

# A failed task's error as an API built to hurt might send it: 300 KB, a URL with a token in
# it. Every ending must still fit SNS and EventBridge, and be announced.
LONG_ERROR = "failed: see https://api.example/tasks?token=SECRET-TOKEN " + "x" * 300_000

# Short leases and waits, so that what a crash leaves behind is picked up within the run.
FUNCTION_ENV = {
    "POWERTOOLS_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "CRITICAL"),
    "POWERTOOLS_METRICS_DISABLED": "true",
    "FIRST_POLL_DELAY_SECONDS": "0",
    "POLL_BACKOFF_SECONDS": "1",
    "TYPICAL_SONG_SECONDS": "1-3",  # the emulator's songs take 1 s
    "POLL_WATCH_SECONDS": "3",  # each run watches a short slot; two runs overlap half the time
    "SUBMIT_LEASE_SECONDS": "10",
    "POLL_LEASE_SECONDS": "30",
    "IN_FLIGHT_RETRY_SECONDS": "1",
    "MAX_SONGS_IN_FLIGHT": "8",  # below the jobs in flight, so the cap is met too
    "MAX_SONGS_PER_DAY": "100000",
    "TENANT_SONGS_PER_DAY": "100000",  # the capped tenant has caps of its own, below these
    "WEBHOOK_FIRST_RETRY_SECONDS": "1",  # a failed POST is tried again after 1 s, 2 s, ...
    "WEBHOOK_RETRY_SECONDS": "30",  # given up after half a minute of failures
    "WEBHOOK_TIMEOUT_SECONDS": "2",  # a receiver dripping its answer is cut off at 2 s
    "STATUS_CHECKS_PER_MINUTE": "600",  # 240 jobs in a few minutes; the budget is met too
    "MUSIC_API_TIMEOUT_SECONDS": "2",  # the emulator's stalls (3 s) are timeouts
    "DOWNLOAD_DEADLINE_SECONDS": "5",  # a dripped song is cut off at 5 s in all
    "TENANT_FROM_KEY": "prefix",  # a lyric file's folder names its tenant (TenantPolicy=bound)
    # A status answer's huge Retry-After waits no longer than the job's age limit (and a
    # minute): short here, so that such a job ends within the run.
    "MAX_TASK_AGE_SECONDS": "90",
}
WEBHOOK_KILL_POINT = "after a webhook's POST"
MEMORY_MB = int(load_template()["Globals"]["Function"]["MemorySize"])
# Jobs belong to these producers in turn; the capped one has caps of its own, below the stack's.
TENANTS = (DEFAULT_TENANT, "team-a", "team-b")
CAPPED_TENANT = "team-a"
# A name the hostile producer is bound to but no operator registered (a binding left
# from before the registry): naming it is refused on default's side.
GHOST_TENANT = "ghost"
# The hostile producer's own tenant: its sender is bound to it alone.
ROGUE_TENANT = "rogue"
BEAT_EVERY = 10.0  # seconds between the Heartbeats schedule's ticks (AWS: 5 minutes)
JOB_BATCHES = 5  # batches of the jobs queue read in one turn, at most
# A workflow that asks for a song and waits for it (docs/step-functions.md): its
# request's id is the execution's name, so the harness knows the job. It gives up when
# no heartbeat comes for 120 s (its HeartbeatSeconds), the wait on the jobs queue
# included (none comes before the stack has read the request): the harness runs the
# Heartbeats schedule every BEAT_EVERY seconds.
WORKFLOW = {
    "StartAt": "MakeSong",
    "States": {
        "MakeSong": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": "${JobsQueueUrl}",
                "MessageBody": {
                    "request_id.$": "$$.Execution.Name",
                    "prompt.$": "$.prompt",
                    "lyrics.$": "$.lyrics",
                    "task_token.$": "$$.Task.Token",
                    "state_machine.$": "$$.StateMachine.Id",
                },
            },
            "TimeoutSeconds": 3600,  # without it, moto gives a task with heartbeats 60 s
            "HeartbeatSeconds": 120,
            "End": True,
        }
    },
}


@dataclass(frozen=True)
class ChaosSettings:
    jobs: int = 240
    seed: int = 7
    duplicate_rate: float = 0.3  # jobs whose message is delivered twice
    bad_input_rate: float = 0.06
    kill_rate: float = 0.06  # at each kill point, this share of the passes is killed
    api_fault_rate: float = 0.15
    hostile_rate: float = 0.04  # of API calls and downloads: gzip bombs, deep JSON, odd Retry-After
    fail_rate: float = 0.1
    broken_download_rate: float = 0.1
    slow_download_rate: float = 0.1
    resubmits: int = 6  # ended jobs without a song, resubmitted on purpose
    hostile_requests: int = 12  # sent by a producer bound to another tenant, naming these
    task_rate: float = 0.1  # of queued requests: asked by a Step Functions workflow that waits
    callback_rate: float = 0.25  # jobs with a callback_url, to a receiver that fails at random
    receiver_fault_rate: float = 0.3  # of the POSTs it gets: a 500, 503, 429 or 408
    receiver_hostile_rate: float = 0.1  # of the POSTs: an odd Retry-After, or a dripped answer
    cancel_rate: float = 0.08  # of queued requests: their producer cancels them soon after
    timeout: float = 900.0


class Killed(Exception):
    """A handler stopped between two steps, as a killed Lambda would."""


@dataclass
class PlannedJob:
    number: int
    kind: str  # "file", "request", "bad" or "hostile" (refused: `refusal` says why)
    execution: str = ""  # a workflow waiting for it: its execution's ARN
    job_id: str = ""
    tenant: str = DEFAULT_TENANT  # the tenant it must be charged to
    callback: bool = False
    asked_at: float = 0.0  # a workflow's: when its execution started (wall clock)
    refusal: str = ""  # a hostile one's: what its error must say
    sent_twice: bool = False
    cancel_sent: bool = False  # its producer asked to cancel it (it ends so if it still waited)


@dataclass(frozen=True)
class Producer:
    """A producer with an IAM user of its own, bound to one tenant as an operator would."""

    tenant: str
    sender_id: str
    sqs: Any

    @classmethod
    def made(cls, stack: Stack, tenant: str) -> Producer:
        iam = stack.client("iam")
        user = iam.create_user(UserName=f"producer-{tenant}")["User"]
        key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
        SenderStore(stack.client("dynamodb"), stack.refs["SpendingTable"]).bind(
            user["UserId"], tenant
        )
        sqs = boto3.client(
            "sqs",
            endpoint_url=stack.endpoint_url,
            region_name=REGION,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        return cls(tenant, user["UserId"], sqs)

    def send(self, stack: Stack, body: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=stack.jobs_queue_url, MessageBody=json.dumps(body))


@dataclass
class Outcome:
    """What the run did and what it found; `failures` is empty when every promise held."""

    settings: ChaosSettings
    jobs: list[PlannedJob]
    rows: dict[str, Row]
    duplicates_sent: int
    overlapping_poll_runs: int
    kills: Counter[str]
    deferred: int
    injected: Counter[str]
    resubmitted: list[str]
    seconds: float
    notices_resent: int = 0
    peak_mb: float = 0.0  # this process's peak resident memory: the functions and the harness
    webhooks: Counter[str] = field(default_factory=Counter)
    heartbeats: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def queue_wait(self) -> float:
        """The longest a workflow's request waited before the stack wrote its row."""
        waits = [
            row.created_at - job.asked_at
            for job in self.jobs
            if job.execution and (row := self.rows.get(job.job_id)) and row.created_at
        ]
        return max(waits, default=0.0)

    def table(self) -> str:
        states = Counter(row.state.value for row in self.rows.values())
        kinds = Counter(job.kind for job in self.jobs)
        api = ", ".join(f"{k} {self.injected[k]}" for k in API_FAULTS)
        hostile = ", ".join(
            f"{k} {self.injected[k]}"
            for k in (*HOSTILE_FAULTS, "gzip bomb download", "dripped download")
        )
        lines = [
            ("jobs", f"{len(self.jobs)} ({kinds['file']} files, {kinds['request']} queued "
             f"requests, {kinds['bad']} bad inputs, {kinds['hostile']} from a hostile "
             "producer: other tenants named, ids dressed as theirs, an unregistered tenant, "
             "forged lyric-file notifications, request ids reused with another body)"),
            ("asked by a waiting workflow", f"{sum(1 for j in self.jobs if j.execution)} "
             "(Step Functions: each got the ending its job's row holds, none gave up "
             f"for want of a heartbeat; heartbeats sent {self.heartbeats['sent']}, "
             f"refused {self.heartbeats['gone']}, failed {self.heartbeats['failed']}; "
             f"the longest wait on the jobs queue {self.queue_wait():.0f} s)"),
            ("duplicate deliveries", str(self.duplicates_sent)),
            ("API faults injected", api),
            ("answers built to hurt", hostile),
            ("peak memory", f"{self.peak_mb:.0f} MB resident (the functions have {MEMORY_MB})"),
            ("failed tasks", str(self.injected["failed task"])),
            ("downloads broken / slow",
             f"{self.injected['broken download']} / {self.injected['slow download']}"),
            ("handlers killed", ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items()))
             or "0"),
            ("overlapping poll runs", str(self.overlapping_poll_runs)),
            ("held by a spending cap", f"{self.deferred} times"),
            ("resubmitted on purpose", str(len(self.resubmitted))),
            ("notices sent again after a kill", str(self.notices_resent)),
            ("webhooks", ", ".join(f"{k} {n}" for k, n in sorted(self.webhooks.items()))),
            ("end states", ", ".join(f"{k} {n}" for k, n in sorted(states.items()))),
            ("time", f"{self.seconds:.0f} s"),
            ("promises", "all held" if not self.failures else f"{len(self.failures)} broken"),
        ]  # fmt: skip
        width = max(len(name) for name, _ in lines)
        body = "\n".join(f"| {name:<{width}} | {value} |" for name, value in lines)
        return f"| {'what':<{width}} | chaos run |\n| {'-' * width} | --- |\n{body}"


class KillSwitch:
    """Patches the functions' steps so a share of the passes through them is killed."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.random = random.Random(seed)
        self.kills: Counter[str] = Counter()
        # Deliveries a receiver took in an attempt killed before it was recorded: such a
        # webhook may still be given up later (the function cannot know it was taken).
        self.taken_unrecorded: set[str] = set()
        self._lock = threading.Lock()

    def maybe_kill(self, point: str) -> None:
        with self._lock:
            if self.random.random() >= self.rate:
                return
            self.kills[point] += 1
        raise Killed(point)

    def _note_taken(self, point: str, args: tuple[Any, ...]) -> None:
        """A webhook attempt killed before it was recorded: was its POST taken?"""
        if point == WEBHOOK_KILL_POINT and args[3].state is WebhookState.DELIVERED:
            with self._lock:
                self.taken_unrecorded.add(args[2].delivery_id)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Kill points: after the paid call, after the song is saved (before its sidecar),
        before a job's end is written, before its notification, after the notification
        before it is recorded as sent (so the next run sends it again), and after a
        webhook's POST before it is recorded (so the receiver gets it again)."""
        from lyrics_to_song import announce, follow
        from lyrics_to_song.data.task_table import TaskTable

        def before(point: str, call: Callable[..., Any], when: Callable[..., bool]) -> Any:
            def killed(*args: Any, **kwargs: Any) -> Any:
                if when(*args, **kwargs):
                    try:
                        self.maybe_kill(point)
                    except Killed:
                        self._note_taken(point, args)
                        raise
                return call(*args, **kwargs)

            return killed

        def always(*_: Any, **__: Any) -> bool:
            return True

        with ExitStack() as patches:
            for owner, name, point, when in (
                (TaskTable, "submitted", "after the paid call", always),
                (follow, "write_sidecar", "after the song was saved", always),
                (TaskTable, "end", "before the end is written", always),
                (announce, "publish", "before the notification", always),
                (TaskTable, "mark_notified", "after the notification", always),
                (TaskTable, "webhook_attempted", WEBHOOK_KILL_POINT, always),
            ):
                patches.enter_context(
                    replaced(owner, name, before(point, getattr(owner, name), when))
                )
            yield


@contextmanager
def replaced(owner: object, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def notice_failures(
    name: str, notices: dict[str, list[dict[str, Any]]], endings: int, row: Row
) -> list[str]:
    """One notice per ending; its copies alike but for the presigned link; the last
    ending's notice tells the row's state."""
    failures = []
    if len(notices) != endings:
        failures.append(f"{name}: {len(notices)} different notices for {endings} ending(s)")
    for notice, copies in notices.items():
        if any(ending_fields(copy) != ending_fields(copies[0]) for copy in copies[1:]):
            failures.append(f"{name}: the {len(copies)} copies of notice {notice} differ")
    last = notices.get(f"{row.job_id}_{endings}")
    if last and last[0]["status"] != row.state.value:
        failures.append(f"{name}: last notice says {last[0]['status']}, row {row.state}")
    elif not last:
        failures.append(f"{name}: no notice for its ending number {endings}")
    return failures


def producer_failures(stack: Stack, name: str, job: PlannedJob, row: Row) -> list[str]:
    """The job is its sender's tenant's; a hostile one was refused; a workflow's got its
    ending."""
    failures = []
    if row.tenant != job.tenant:
        failures.append(
            f"{name}: its row is tenant {row.tenant}'s; its sender is bound to {job.tenant}"
        )
    if job.kind == "hostile" and job.refusal not in (row.error or ""):
        failures.append(f"{name}: not refused for {job.refusal!r}: {row.error}")
    if job.execution:
        failures.extend(workflow_failures(stack, name, job.execution, row))
    return failures


def make_workflow(moto_url: str, stack: Stack) -> str:
    """The workflow's state machine, with moto told to run state machines."""
    run_state_machines(moto_url)
    definition = json.dumps(WORKFLOW).replace("${JobsQueueUrl}", stack.jobs_queue_url)
    return str(
        stack.client("stepfunctions").create_state_machine(
            name="chaos-soundtrack",
            definition=definition,
            roleArn="arn:aws:iam::123456789012:role/chaos-workflow",
        )["stateMachineArn"]
    )


def workflow_failures(stack: Stack, name: str, execution: str, row: Row) -> list[str]:
    """The workflow got exactly the ending its job's row holds: success with the song's
    key, or the failure named for its state."""
    sfn = stack.client("stepfunctions")
    found = sfn.describe_execution(executionArn=execution)
    if row.state is JobState.COMPLETED:
        output = json.loads(found.get("output") or "{}")
        if found["status"] != "SUCCEEDED" or output.get("song_key") != row.song_key:
            return [f"{name}: COMPLETED, but its workflow is {found['status']}: {output}"]
        return []
    expected = {"FAILED": "Song.Failed", "TIMED_OUT": "Song.TimedOut", "UNKNOWN": "Song.Unknown"}
    if found["status"] != "FAILED" or found.get("error") != expected.get(row.state.value):
        return [
            f"{name}: {row.state.value}, but its workflow is {found['status']} "
            f"({found.get('error')})"
        ]
    return []


def cost_failures(name: str, row: Row, taken: int) -> list[str]:
    """Each song the API took is on the job's row, charged (it went PENDING) or maybe
    charged (its outcome unknown), and nothing is charged that the API did not take."""
    price = DEFAULT_CREDITS_PER_SONG  # the chaos stack's CreditsPerSong
    charge = row.charge
    if charge.credits > price * taken:
        return [f"{name}: charged {charge.credits:g} credits for {taken} song(s) the API took"]
    if charge.credits + charge.maybe_credits < price * taken:
        return [
            f"{name}: the API took {taken} song(s); the row accounts for "
            f"{charge.credits:g} charged and {charge.maybe_credits:g} maybe charged credits"
        ]
    return []


def counter_failures(
    stack: Stack, rows: Iterable[Row], notices: dict[str, dict[str, list[dict[str, Any]]]]
) -> list[str]:
    """The spend counters, per tenant, equal a recount: credits charged and maybe charged
    from the rows, endings by state from the notices (one per ending, old ones too)."""
    rows = list(rows)
    first = min(row.created_at for row in rows)
    days = [day_of(first + n * 86_400) for n in range(int((time.time() - first) // 86_400) + 2)]
    ledger = SpendLedger(stack.client("dynamodb"), stack.refs["SpendingTable"])
    counted: dict[str, Counts] = {}
    for spent in ledger.days(sorted(set(days))):
        for counts in spent.by_model.values():
            counted.setdefault(spent.tenant, Counts()).add(counts)
    recounted: dict[str, Counts] = {}
    for row in rows:
        counts = recounted.setdefault(row.tenant, Counts())
        counts.charged_credits += row.charge.credits
        counts.maybe_credits += row.charge.maybe_credits
        for copies in notices.get(row.job_id, {}).values():
            state = copies[0]["status"]
            counts.ended[state] = counts.ended.get(state, 0) + 1
    failures = []
    for tenant in sorted(set(counted) | set(recounted)):
        kept, recount = counted.get(tenant, Counts()), recounted.get(tenant, Counts())
        seen = (kept.charged_credits, kept.maybe_credits, kept.ended)
        expected = (recount.charged_credits, recount.maybe_credits, recount.ended)
        if seen != expected:
            failures.append(
                f"tenant {tenant}: counters say (charged, maybe, endings) {seen}, "
                f"a recount {expected}"
            )
    return failures


def _late_failures(name: str, row: Row, stack: Stack) -> list[str]:
    """A paid job ends within MAX_TASK_AGE_SECONDS of its submission, the minute a
    Retry-After may add past it, and one poll lease."""
    env = {**stack.environments["PollFunction"], **FUNCTION_ENV}
    bound = int(env["MAX_TASK_AGE_SECONDS"]) + AGE_SLACK_SECONDS + int(env["POLL_LEASE_SECONDS"])
    if row.submitted_at is None or row.finished_at is None:
        return []
    took = row.finished_at - row.submitted_at
    if took > bound:
        return [f"{name}: ended {took:.0f} s after its submission, past {bound} s"]
    return []


def ending_fields(note: dict[str, Any]) -> dict[str, Any]:
    """A notice without its presigned link, which is signed anew on every send."""
    song = note.get("song")
    return {**note, "song": {**song, "url": None} if song else None}


def lyrics_for(number: int) -> str:
    return f"[Verse]\nchaos line for job {number}\n[Chorus]\nhold on, hold on ({number})"


def marker_of(body: dict[str, Any]) -> int | None:
    """Which planned job a submission the emulator saw belongs to."""
    text = str(body.get("lyrics", ""))
    start = text.rfind("(")
    return int(text[start + 1 : -1]) if start >= 0 and text.endswith(")") else None


class ChaosRun:
    def __init__(self, settings: ChaosSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        self.random = random.Random(settings.seed)
        self.emulator = MusicApiEmulator(
            completion_delay=1.0,
            audio_seconds=0.5,
            seed=settings.seed,
            faults=Faults(
                chaos_rate=settings.api_fault_rate,
                fail_rate=settings.fail_rate,
                broken_download_rate=settings.broken_download_rate,
                slow_download_rate=settings.slow_download_rate,
                slow_download_seconds=0.5,
                retry_after_seconds=1,
                hostile_rate=settings.hostile_rate,
                fail_message=LONG_ERROR,
            ),
        )
        self.kill_switch = KillSwitch(settings.kill_rate, settings.seed + 1)
        self.duplicates_sent = 0
        self.overlapping = 0
        self.deferred = 0
        self.joins: Counter[str] = Counter()  # each delivery that put a job in its line
        self.resubmitted: list[str] = []
        self.receiver: WebhookReceiver | None = None
        self.producers: dict[str, Producer] = {}
        self.workflow = ""  # the state machine's ARN
        self.heartbeats: Counter[str] = Counter()  # what the Heartbeats schedule's ticks did
        self.next_beat = 0.0
        faults = random.Random(settings.seed + 2)
        rate = settings.receiver_fault_rate

        def answers(delivery_id: str, seen: int) -> int:
            return faults.choice((500, 503, 429, 408)) if faults.random() < rate else 200

        self.receiver_answers = answers
        tricks = random.Random(settings.seed + 3)
        self.receiver_tricks: Counter[str] = Counter()

        def mischief(delivery_id: str, seen: int) -> str:
            if tricks.random() >= settings.receiver_hostile_rate:
                return ""
            trick = tricks.choice(("odd Retry-After", "drip"))
            self.receiver_tricks[trick] += 1
            return trick

        self.receiver_mischief = mischief

    # --- producing the jobs -----------------------------------------------------------
    def produce(self, stack: Stack) -> list[PlannedJob]:
        s3, sqs = stack.client("s3"), stack.client("sqs")
        producers = self.producers
        planned: list[PlannedJob] = []
        for number in range(self.settings.jobs):
            roll = self.random.random()
            kind = "bad" if roll < self.settings.bad_input_rate else ("file", "request")[number % 2]
            job = PlannedJob(number, kind, tenant=TENANTS[number % len(TENANTS)])
            job.callback = self.random.random() < self.settings.callback_rate
            callback = {"callback_url": self.receiver.url} if job.callback and self.receiver else {}
            twice = self.random.random() < self.settings.duplicate_rate
            if kind == "request" and self.random.random() < self.settings.task_rate:
                job.tenant = DEFAULT_TENANT  # the workflow's messages name none
                job.callback = False
                job.asked_at = time.time()
                job.execution, job.job_id = self.start_workflow(stack, number)
                planned.append(job)
                continue
            if kind == "request" or (kind == "bad" and number % 2):
                request_id = f"chaos-{number}"
                body: dict[str, Any] = {
                    "request_id": request_id,
                    "prompt": "chaotic pop",
                    "lyrics": lyrics_for(number),
                }
                if kind == "bad":
                    body["bitrate"] = 12345  # not a bitrate the model takes
                if job.tenant != DEFAULT_TENANT:
                    body["tenant"] = job.tenant
                body |= callback
                job.job_id = QueuedRequest(body, "chaos").job.job_id
                for _ in range(2 if twice else 1):
                    producers[job.tenant].send(stack, body)
            else:
                folder = "" if job.tenant == DEFAULT_TENANT else f"{job.tenant}/"
                key = f"{folder}song {number}.txt"
                data = lyrics_for(number).encode() if kind == "file" else b"\x00\xff binary"
                etag = s3.put_object(
                    Bucket=stack.lyrics_bucket, Key=key, Body=data, Metadata=callback
                )["ETag"]
                job.job_id = LyricObject(stack.lyrics_bucket, key, etag.strip('"'), None).job_id
                if twice:  # S3 delivers the same event again
                    event = s3_notification(stack.lyrics_bucket, key, etag.strip('"'), len(data))
                    sqs.send_message(
                        QueueUrl=stack.lyric_files_queue_url, MessageBody=json.dumps(event)
                    )
            self.duplicates_sent += int(twice)
            job.sent_twice = twice
            planned.append(job)
        self.cancel_some(stack, planned)
        return planned + self.produce_hostile(stack, planned)

    def cancel_some(self, stack: Stack, planned: list[PlannedJob]) -> None:
        """Some producers cancel a request soon after sending it: it ends CANCELLED,
        unpaid, if it still waits in line, and goes on as usual if it started."""
        for job in planned:
            if job.kind != "request" or job.execution:
                continue
            if self.random.random() < self.settings.cancel_rate:
                body = {"cancel": job.job_id}
                if job.tenant != DEFAULT_TENANT:
                    body["tenant"] = job.tenant
                self.producers[job.tenant].send(stack, body)
                job.cancel_sent = True

    def start_workflow(self, stack: Stack, number: int) -> tuple[str, str]:
        """Start an execution of the workflow for job `number`; its ARN, and the job's id."""
        name = f"chaos-sfn-{number}"
        song = {"prompt": "chaotic pop", "lyrics": lyrics_for(number)}
        execution = stack.client("stepfunctions").start_execution(
            stateMachineArn=self.workflow, name=name, input=json.dumps(song)
        )["executionArn"]
        return str(execution), QueuedRequest({"request_id": name}, "chaos").job.job_id

    def produce_hostile(self, stack: Stack, planned: list[PlannedJob]) -> list[PlannedJob]:
        """What the rogue tenant's producer tries, in turn: naming another tenant with one
        of its request ids; a request id dressed as another tenant's (refused for its bad
        bitrate, so it pays nothing, at an id of its own); naming a tenant that is not
        registered (a binding left from before the registry); and a forged lyric-file
        notification for another tenant's file. Each must fail unpaid, on the side it
        names, and take no job's place."""
        rogue = self.producers[ROGUE_TENANT]
        victims = [job for job in planned if job.kind == "request"]
        files = [job for job in planned if job.kind == "file" and job.tenant != DEFAULT_TENANT]
        SenderStore(stack.client("dynamodb"), stack.refs["SpendingTable"]).bind(
            rogue.sender_id, GHOST_TENANT
        )
        hostile = []
        for i in range(self.settings.hostile_requests):
            victim = victims[i % len(victims)]
            number = len(planned) + i
            body: dict[str, Any] = {
                "request_id": f"chaos-{victim.number}",
                "prompt": "chaotic pop",
                "lyrics": lyrics_for(number),
                "tenant": victim.tenant,
            }
            job = PlannedJob(number, "hostile", tenant=ROGUE_TENANT)
            trick = i % 4
            if trick == 0:
                job.refusal = "may not submit for tenant"
                job.job_id = QueuedRequest(body, "chaos", rogue.sender_id).refused_job().job_id
            elif trick == 1:
                body |= {"request_id": f"'{victim.tenant}'/chaos-{victim.number}", "bitrate": 1}
                body["tenant"] = ROGUE_TENANT
                job.refusal = "'bitrate' must be one of"
                job.job_id = QueuedRequest(body, "chaos").job_for(ROGUE_TENANT).job_id
            elif trick == 2:
                body["tenant"] = GHOST_TENANT
                job.tenant, job.refusal = DEFAULT_TENANT, "is not a tenant of this stack"
                job.job_id = QueuedRequest(body, "chaos").job_for(GHOST_TENANT).job_id
            else:
                target = files[i % len(files)]
                key = f"{target.tenant}/song {target.number}.txt"
                body = s3_notification(stack.lyrics_bucket, key)
                job.refusal = "only the lyrics bucket's own notifications make lyric-file jobs"
                job.job_id = job_id_for("forged:" + json.dumps(body))
            rogue.send(stack, body)
            hostile.append(job)
        return hostile

    def reuse_request_ids(self, stack: Stack, jobs: list[PlannedJob]) -> list[PlannedJob]:
        """The rogue producer sends its dressed-up request ids again with a valid body:
        its tenant used them for another request (refused then), so each is refused
        again, unpaid, and the first job stays as it was."""
        rogue, rows = self.producers[ROGUE_TENANT], self.rows(stack)
        reused: list[PlannedJob] = []
        for job in [j for j in jobs if j.refusal == "'bitrate' must be one of"]:
            row = rows.get(job.job_id)
            if row is None or row.request_id is None:
                continue  # its refusal is not written yet: the check will say so
            body = {
                "request_id": row.request_id,
                "prompt": "chaotic pop",
                "lyrics": "[Verse]\nthe same id, another song",
                "model": FUNCTION_ENV.get("MUSIC_MODEL", "minimax-music"),
                "tenant": ROGUE_TENANT,
            }
            asked = parse_request(body, str(body["model"])).as_item()
            request_json = json.dumps(asked, ensure_ascii=False, sort_keys=True)
            first = QueuedRequest(body, "chaos").job_for(ROGUE_TENANT)
            again = PlannedJob(len(jobs) + len(reused), "hostile", tenant=ROGUE_TENANT)
            again.refusal = "was used for another request"
            again.job_id = reused_job(first, ROGUE_TENANT, request_json).job_id
            rogue.send(stack, body)
            reused.append(again)
        return reused

    # --- driving the functions ----------------------------------------------------------
    def turn(self, runtime: LocalLambda) -> None:
        """One turn of the event sources: a submit batch, then one or two poll runs at once,
        beside the runs that submissions woke."""
        # Up to JOB_BATCHES batches, as Lambda's pollers take a backlog several batches at
        # once (a killed record comes back in 1 s).
        for _ in range(JOB_BATCHES):
            if not runtime.deliver_jobs(retry_delay_seconds=1).received:
                break
        pollers = 2 if self.random.random() < 0.5 else 1
        self.overlapping += pollers - 1
        threads = [
            threading.Thread(target=self._poll_once, args=(runtime,)) for _ in range(pollers)
        ]
        threads.append(threading.Thread(target=self._wake_once, args=(runtime,)))
        threads.append(threading.Thread(target=self._webhooks_once, args=(runtime,)))
        if time.monotonic() >= self.next_beat:
            self.next_beat = time.monotonic() + BEAT_EVERY
            threads.append(threading.Thread(target=self._beat_once, args=(runtime,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @staticmethod
    def _poll_once(runtime: LocalLambda) -> None:
        with contextlib.suppress(Exception):  # a poll run that died: the next one cleans up
            runtime.run_schedule()

    @staticmethod
    def _wake_once(runtime: LocalLambda) -> None:
        with contextlib.suppress(Exception):  # a woken run that died: the schedule's runs go on
            runtime.deliver_wakes()

    def _beat_once(self, runtime: LocalLambda) -> None:
        with contextlib.suppress(Exception):  # a tick that died: the next one beats
            self.heartbeats.update(runtime.run_heartbeats())

    @staticmethod
    def _webhooks_once(runtime: LocalLambda) -> None:
        with contextlib.suppress(Exception):  # a killed delivery: its message comes back
            runtime.deliver_webhooks()

    def rows(self, stack: Stack) -> dict[str, Row]:
        ddb = stack.client("dynamodb")
        found: dict[str, Row] = {}
        for page in ddb.get_paginator("scan").paginate(TableName=stack.tasks_table):
            for item in page["Items"]:
                row = Row.from_item(item)
                found[row.job_id] = row
        return found

    def settled(self, jobs: list[PlannedJob], rows: dict[str, Row]) -> bool:
        wanted_resubmits = Counter(self.resubmitted)
        for job in jobs:
            row = rows.get(job.job_id)
            if row is None or not row.state.terminal or not row.notified:
                return False
            if row.resubmits < wanted_resubmits[job.job_id]:
                return False
            if job.callback and (row.webhook is None or not row.webhook.state.ended):
                return False
            if job.execution and (row.task is None or row.task.state == "pending"):
                return False
        return True

    def drive(
        self, stack: Stack, runtime: LocalLambda, jobs: list[PlannedJob], until: float
    ) -> None:
        last_report = 0.0
        while time.monotonic() < until:
            self.turn(runtime)
            rows = self.rows(stack)
            if self.settled(jobs, rows):
                return
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                ended = sum(1 for j in jobs if (r := rows.get(j.job_id)) and r.notified)
                self.say(f"  ... {ended}/{len(jobs)} jobs ended and notified")

    def resubmit_some(self, stack: Stack, jobs: list[PlannedJob]) -> None:
        rows = self.rows(stack)
        candidates = [
            job.job_id
            for job in jobs
            if (row := rows[job.job_id]).state in (JobState.FAILED, JobState.UNKNOWN)
            and row.request_json
            and not job.execution  # its workflow had that ending: a Retry asks anew
        ]
        for job_id in candidates[: self.settings.resubmits]:
            tenant = rows[job_id].tenant  # only its own producer may resubmit it
            body = {"resubmit": job_id} | ({} if tenant == DEFAULT_TENANT else {"tenant": tenant})
            self.producers[tenant].send(stack, body)
            self.resubmitted.append(job_id)

    def run(self) -> Outcome:
        started = time.monotonic()
        until = started + self.settings.timeout
        # moto in a process of its own: its memory and CPU are not the functions'.
        moto = ExitStack()
        moto_url = moto.enter_context(moto_process())
        try:
            with RunningEmulator(self.emulator) as api:
                stack = provision(moto_url, stack_name="chaos")
                stack.store_api_key(self.emulator.api_key)
                self.receiver = WebhookReceiver(
                    stack.webhook_secret(),
                    answers=self.receiver_answers,
                    mischief=self.receiver_mischief,
                )
                notes_url = subscribe_queue(stack, "chaos-notifications")
                self.workflow = make_workflow(moto_url, stack)
                runtime = LocalLambda(
                    stack,
                    {
                        **FUNCTION_ENV,
                        # A backlog of ten times the places, at least.
                        "MAX_SONGS_IN_FLIGHT": str(max(2, min(8, self.settings.jobs // 10))),
                        "MUSIC_API_BASE_URL": api.url,
                        "CALLBACK_STATE_MACHINES": self.workflow,
                    },
                )
                # Every tenant registered by its operator; one with caps of its own, below
                # the stack's: it waits, others go on.
                registry = TenantRegistry(stack.client("dynamodb"), stack.refs["SpendingTable"])
                for tenant in (*TENANTS, ROGUE_TENANT):
                    registry.add(tenant, time.time())
                TenantStore(stack.client("dynamodb"), stack.refs["SpendingTable"]).put(
                    TenantCaps(CAPPED_TENANT, per_day=1000, in_flight=3)
                )
                self.producers = {
                    tenant: Producer.made(stack, tenant) for tenant in (*TENANTS, ROGUE_TENANT)
                }
                jobs = self.produce(stack)
                self.say(f"sent {len(jobs)} jobs ({self.duplicates_sent} of them twice)")
                with self.kill_switch.installed(), self._counting_deferrals():
                    self.drive(stack, runtime, jobs, until)
                    self.resubmit_some(stack, jobs)
                    reused = self.reuse_request_ids(stack, jobs)
                    jobs += reused
                    self.say(
                        f"resubmitting {len(self.resubmitted)} ended jobs on purpose; "
                        f"{len(reused)} request ids reused with another body"
                    )
                    self.drive(stack, runtime, jobs, until)
                # A last few turns without kills: anything extra (a second notification,
                # a second paid call) would show up now.
                for _ in range(3):
                    self.turn(runtime)
                outcome = Outcome(
                    settings=self.settings,
                    jobs=jobs,
                    rows=self.rows(stack),
                    duplicates_sent=self.duplicates_sent,
                    overlapping_poll_runs=self.overlapping,
                    kills=self.kill_switch.kills,
                    deferred=self.deferred,
                    injected=self.emulator.injected,
                    resubmitted=self.resubmitted,
                    seconds=time.monotonic() - started,
                    heartbeats=self.heartbeats,
                )
                notes = read_notifications(stack, notes_url)
                outcome.notices_resent = len(notes) - len({n["notice_id"] for n in notes})
                outcome.failures = self.check(stack, outcome, notes)
                outcome.failures += self.check_webhooks(outcome)
                # On Linux ru_maxrss is in KiB. The functions share this process with the
                # emulator, the receiver and the harness (moto has its own), so holding the
                # whole of it under one function's memory is stricter than Lambda is.
                outcome.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                if outcome.peak_mb > MEMORY_MB:
                    outcome.failures.append(
                        f"the process peaked at {outcome.peak_mb:.0f} MB, past the functions' "
                        f"{MEMORY_MB} MB"
                    )
                return outcome
        finally:
            if self.receiver is not None:
                self.receiver.stop()
            moto.close()

    @contextmanager
    def _counting_deferrals(self) -> Iterator[None]:
        """Count the jobs held: each time one joins its tenant's line."""
        from lyrics_to_song import submit

        join = submit.join_line

        def counted(*args: Any, **kwargs: Any) -> bool:
            self.deferred += 1
            self.joins[args[1].job_id] += 1
            return join(*args, **kwargs)

        with replaced(submit, "join_line", counted):
            yield

    # --- checking the promises -----------------------------------------------------------
    def check_webhooks(self, outcome: Outcome) -> list[str]:
        """Every job with a callback: its last ending's webhook delivered (the receiver took
        that delivery id) or given up (it never did), each POST signed; no other job's."""
        assert self.receiver is not None
        failures: list[str] = []
        posts = list(self.receiver.deliveries)
        accepted = self.receiver.accepted()
        outcome.webhooks["POSTs"] = len(posts)
        outcome.webhooks["failed by the receiver at random"] = sum(
            1 for d in posts if d.answered != 200
        )
        outcome.webhooks["odd Retry-After"] = self.receiver_tricks["odd Retry-After"]
        outcome.webhooks["dripped"] = self.receiver_tricks["drip"]
        outcome.webhooks["taken twice (same id)"] = sum(
            1 for d in posts if d.answered == 200
        ) - len(accepted)
        if not all(d.verified for d in posts):
            failures.append("a webhook arrived with a signature that does not verify")
        with_callback = {job.job_id for job in outcome.jobs if job.callback}
        strangers = {d.delivery_id.rsplit("_", 1)[0] for d in posts} - with_callback
        if strangers:
            failures.append(f"webhooks for jobs that named no callback: {sorted(strangers)}")
        for job in outcome.jobs:
            row = outcome.rows.get(job.job_id)
            if not job.callback or row is None:
                continue
            name = f"job {job.number} ({job.kind}, {job.job_id})"
            latest = notice_id(row)
            hook = row.webhook
            if hook is None or hook.delivery_id != latest:
                failures.append(f"{name}: no webhook recorded for {latest}: {hook}")
                continue
            outcome.webhooks[hook.state.value] += 1
            if hook.state is WebhookState.DELIVERED and latest not in accepted:
                failures.append(f"{name}: webhook marked delivered, never taken by the receiver")
            elif (
                hook.state is WebhookState.GIVEN_UP
                and latest in accepted
                and latest not in self.kill_switch.taken_unrecorded
            ):
                failures.append(f"{name}: webhook given up, yet the receiver took it")
            elif hook.state not in (WebhookState.DELIVERED, WebhookState.GIVEN_UP):
                failures.append(f"{name}: webhook ended {hook.state.value}")
        return failures

    def line_failures(self, name: str, job: PlannedJob, row: Row, paid: int) -> list[str]:
        """A cancelled job was asked to be, and was never paid; a held job came to the
        submit function at most twice (once more for a message sent twice)."""
        failures = []
        if row.state is JobState.CANCELLED and not job.cancel_sent:
            failures.append(f"{name}: CANCELLED, though nobody asked")
        if row.state is JobState.CANCELLED and paid:
            failures.append(f"{name}: CANCELLED, yet paid {paid} time(s)")
        allowed = 2 + int(job.sent_twice)
        if self.joins[job.job_id] > allowed:
            failures.append(
                f"{name}: delivered to the submit function {self.joins[job.job_id]} times "
                f"while it waited, {allowed} allowed"
            )
        return failures

    def check(self, stack: Stack, outcome: Outcome, notes: list[dict[str, Any]]) -> list[str]:
        failures: list[str] = []
        notices: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for note in notes:
            notices.setdefault(note["job_id"], {}).setdefault(note["notice_id"], []).append(note)
        paid = Counter(marker_of(body) for body in self.emulator.submissions)
        resubmits = Counter(self.resubmitted)
        s3 = stack.client("s3")
        for job in outcome.jobs:
            row = outcome.rows.get(job.job_id)
            name = f"job {job.number} ({job.kind}, {job.job_id})"
            if row is None:
                failures.append(f"{name}: no row: the job was lost")
                continue
            endings = 1 + row.resubmits
            if not row.state.terminal or not row.notified:
                failures.append(
                    f"{name}: ended as {row.state.value}, notified={row.notified} "
                    f"(due at {row.due_at}, run ended at {time.time():.3f}, checks {row.polls}, "
                    f"last status {row.api_status}, failed downloads {row.download_failures})"
                )
            failures.extend(notice_failures(name, notices.get(job.job_id, {}), endings, row))
            failures.extend(producer_failures(stack, name, job, row))
            allowed = 0 if job.kind in ("bad", "hostile") else 1 + resubmits[job.job_id]
            if paid[job.number] > allowed:
                failures.append(f"{name}: {paid[job.number]} paid submissions, {allowed} allowed")
            failures.extend(cost_failures(name, row, paid[job.number]))
            failures.extend(self.line_failures(name, job, row, paid[job.number]))
            if row.state is JobState.COMPLETED:
                assert row.song_key
                assert row.task_id
                stored = s3.get_object(Bucket=stack.songs_bucket, Key=row.song_key)["Body"].read()
                if stored != self.emulator.audio_bytes(row.task_id):
                    failures.append(f"{name}: the song in S3 differs from what the API served")
            elif not (row.error or "").strip():
                failures.append(f"{name}: {row.state.value} without a reason")
            failures.extend(_late_failures(name, row, stack))
        partial = s3.list_multipart_uploads(Bucket=stack.songs_bucket).get("Uploads", [])
        if partial:
            failures.append(
                f"{len(partial)} multipart upload(s) left unfinished in the songs bucket"
            )
        strangers = set(paid) - {job.number for job in outcome.jobs}
        if strangers:
            failures.append(f"submissions that belong to no job: {sorted(map(str, strangers))}")
        failures.extend(counter_failures(stack, outcome.rows.values(), notices))
        return failures
