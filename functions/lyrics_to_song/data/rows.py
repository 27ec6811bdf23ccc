"""A job's row in the tasks table, and how it is read from a DynamoDB item.

The states and their meaning are in the README (Job states).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .items import flag, key_text, number, text, whole


class JobState(StrEnum):
    HELD = "HELD"  # it waits in its tenant's line: nothing reserved or paid
    SUBMITTING = "SUBMITTING"  # the row is written; the API call is under way
    PENDING = "PENDING"  # the API took it; the poll function follows it
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UNKNOWN = "UNKNOWN"  # the submission may or may not have reached the API
    CANCELLED = "CANCELLED"  # cancelled while it waited: never paid

    @property
    def terminal(self) -> bool:
        return self not in (JobState.HELD, JobState.SUBMITTING, JobState.PENDING)


# Ended without a song: the states an owner may resubmit from (README: Resubmitting a job).
RESUBMITTABLE = (JobState.UNKNOWN, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED)
# A producer that names none (docs/producers.md).
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Price:
    """What one song costs, as configured when a submission was made."""

    credits: int
    usd: float


@dataclass(frozen=True)
class Charge:
    """What a job has cost: songs the API accepted, and songs it may have accepted (an
    outcome unknown). Sums over every submission of the job, each at its own price."""

    credits: float = 0
    usd: float = 0.0
    maybe_credits: float = 0
    maybe_usd: float = 0.0

    @property
    def status(self) -> str:
        if self.credits:
            return "charged"
        return "maybe charged" if self.maybe_credits else "not charged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "credits": whole_number(self.credits),
            "usd": round(self.usd, 4),
            "maybe_credits": whole_number(self.maybe_credits),
            "maybe_usd": round(self.maybe_usd, 4),
        }


def whole_number(value: float) -> int | float:
    """Credits as the price states them: 30, not 30.0 (a fraction stays one)."""
    return int(value) if float(value).is_integer() else value


class WebhookState(StrEnum):
    PENDING = "pending"  # on the webhooks queue: being tried, or waiting to be tried again
    DELIVERED = "delivered"  # the receiver answered 2xx
    REFUSED = "refused"  # the receiver answered 4xx (not 408/429) or a redirect: not retried
    GIVEN_UP = "given up"  # no 2xx within the retry window

    @property
    def ended(self) -> bool:
        return self is not WebhookState.PENDING


@dataclass(frozen=True)
class WebhookTry:
    """One attempt of a webhook, as its log keeps it."""

    delivery_id: str
    at: float
    answer: str
    seconds: float  # from the start of the POST to its answer (or its failure)


@dataclass(frozen=True)
class Webhook:
    """The webhook of a job's latest ending (docs/webhooks.md)."""

    delivery_id: str  # the notice id: the same on every attempt, new for a new ending
    state: WebhookState
    queued_at: float
    attempts: int = 0
    answer: str | None = None  # the receiver's last answer: "503 Service Unavailable", ...
    ended_at: float | None = None  # delivered, refused or given up at
    next_at: float | None = None  # while pending after a failed attempt: tried again about then
    body: str | None = field(default=None, repr=False)  # what is signed and sent, as queued
    log: tuple[WebhookTry, ...] = ()  # every attempt of the job's webhooks, oldest first

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Webhook | None:
        delivery_id, state = text(item, "webhook_id"), text(item, "webhook_state")
        if delivery_id is None or state is None:
            return None
        return cls(
            delivery_id=delivery_id,
            state=WebhookState(state),
            queued_at=number(item, "webhook_queued_at") or 0.0,
            attempts=whole(item, "webhook_attempts") or 0,
            answer=text(item, "webhook_answer"),
            ended_at=number(item, "webhook_ended_at"),
            next_at=number(item, "webhook_next_at"),
            body=text(item, "webhook_body"),
            log=tuple(
                WebhookTry(
                    text(entry, "delivery") or delivery_id,
                    number(entry, "at") or 0.0,
                    text(entry, "answer") or "",
                    number(entry, "seconds") or 0.0,
                )
                for entry in (e.get("M", {}) for e in item.get("webhook_log", {}).get("L", []))
            ),
        )


@dataclass(frozen=True)
class TaskCallback:
    """The answer to the Step Functions task waiting for the job's latest ending
    (docs/step-functions.md): pending, sent, or refused by Step Functions."""

    notice_id: str
    state: str  # "pending", "sent" or "refused"
    attempts: int = 0
    answer: str | None = None  # the last: "sent", "InvalidToken: …", "ThrottlingException: …"
    output: str | None = field(default=None, repr=False)  # what SendTaskSuccess carries

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TaskCallback | None:
        notice, state = text(item, "task_notice"), text(item, "task_state")
        if notice is None or state is None:
            return None
        return cls(
            notice,
            state,
            whole(item, "task_attempts") or 0,
            text(item, "task_answer"),
            text(item, "task_output"),
        )


@dataclass(frozen=True)
class Hold:
    """Why a job waits for a cap (a new job HELD, or an ended one's resubmission), and
    when it is tried again."""

    cap: str  # the Cap's value
    reason: str  # "tenant team-a is at its daily cap, 2 of 2 songs for 2026-11-29 (UTC)"
    until: float
    since: float
    # The latest try's: only the message that carries it tries again, so copies of a
    # message (or one sent by hand) cannot multiply the tries.
    token: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Hold | None:
        cap, reason = text(item, "held_cap"), text(item, "held_reason")
        if cap is None or reason is None:
            return None
        return cls(
            cap,
            reason,
            until=number(item, "held_until") or 0.0,
            since=number(item, "held_since") or 0.0,
            token=text(item, "held_token") or "",
        )


@dataclass(frozen=True)
class Row:
    """A task row as the functions use it."""

    job_id: str
    state: JobState
    source: str
    source_name: str
    created_at: float
    due_at: float | None = None
    request_json: str | None = None
    model: str | None = None
    task_id: str | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    polls: int = 0
    bad_bodies: int = 0
    error: str | None = None
    song_key: str | None = None
    song_bytes: int | None = None
    duration_seconds: float | None = None
    notified: bool = False
    attempt: str | None = None
    previous_state: JobState | None = None
    resubmits: int = 0
    api_status: str | None = None
    download_failures: int = 0
    sample_rate: int | None = None  # of the saved song, measured from the file
    bitrate: int | None = None
    tenant: str = DEFAULT_TENANT
    price: Price | None = None  # of the latest submission; None for rows written before prices
    charge: Charge = Charge()
    callback_url: str | None = None  # its own, or its tenant's default when it was submitted
    webhook: Webhook | None = None
    hold: Hold | None = None  # while a cap holds it (HELD, or a resubmission held)
    task: TaskCallback | None = None  # a Step Functions task waiting for it
    request_id: str | None = None  # the producer's, as sent (a request's job, or its refusal)
    line_at: float | None = None  # in its tenant's line since then (data/line.py)
    # The item it was read from, so that a write can tell the row it leaves without a read.
    item: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def waits(self) -> bool:
        """It waits: a new job HELD (in its tenant's line, or by an earlier version), or an
        ended job whose resubmission waits in line."""
        return self.state is JobState.HELD or self.line_at is not None

    @property
    def resubmission_waits(self) -> bool:
        """An ended job (it keeps its ending) whose resubmission waits in line."""
        return self.state is not JobState.HELD and self.line_at is not None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Row:
        return cls(
            job_id=key_text(item, "job_id"),
            state=JobState(key_text(item, "state")),
            source=text(item, "source") or "",
            source_name=text(item, "source_name") or "",
            created_at=number(item, "created_at") or 0.0,
            due_at=number(item, "due_at"),
            request_json=text(item, "request_json"),
            model=text(item, "model"),
            task_id=text(item, "task_id"),
            submitted_at=number(item, "submitted_at"),
            finished_at=number(item, "finished_at"),
            polls=whole(item, "polls") or 0,
            bad_bodies=whole(item, "bad_bodies") or 0,
            error=text(item, "error"),
            song_key=text(item, "song_key"),
            song_bytes=whole(item, "song_bytes"),
            duration_seconds=number(item, "duration_seconds"),
            notified=flag(item, "notified"),
            attempt=text(item, "attempt"),
            previous_state=JobState(p) if (p := text(item, "previous_state")) else None,
            resubmits=whole(item, "resubmits") or 0,
            api_status=text(item, "api_status"),
            download_failures=whole(item, "download_failures") or 0,
            sample_rate=whole(item, "sample_rate"),
            bitrate=whole(item, "bitrate"),
            tenant=text(item, "tenant") or DEFAULT_TENANT,
            price=_price(item),
            charge=Charge(
                credits=number(item, "spent_credits") or 0,
                usd=number(item, "spent_usd") or 0.0,
                maybe_credits=number(item, "maybe_credits") or 0,
                maybe_usd=number(item, "maybe_usd") or 0.0,
            ),
            callback_url=text(item, "callback_url"),
            webhook=Webhook.from_item(item),
            hold=Hold.from_item(item),
            task=TaskCallback.from_item(item),
            request_id=text(item, "request_id") or _request_id_before(item),
            line_at=number(item, "line_at"),
            item=item,
        )


def _request_id_before(item: dict[str, Any]) -> str | None:
    """The request_id of a request's job written before rows kept it: its source is
    `sqs:<request_id>` and its name the id."""
    name = text(item, "source_name")
    return name if name and text(item, "source") == f"sqs:{name}" else None


def _price(item: dict[str, Any]) -> Price | None:
    credits, usd = whole(item, "price_credits"), number(item, "price_usd")
    return Price(credits, usd) if credits is not None and usd is not None else None


@dataclass(frozen=True)
class Song:
    """What a completed job's row records of its song."""

    key: str
    size: int
    duration_seconds: float | None = None
    sample_rate: int | None = None
    bitrate: int | None = None
