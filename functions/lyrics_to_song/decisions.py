"""What the submit function decided about one thing that came to it (intake.py decides,
once, and submit.py or resubmit.py carries it out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .data.rows import DEFAULT_TENANT
from .song_request import SongRequest
from .sources import Job


@dataclass(frozen=True)
class Submission:
    """A job to submit within the caps: its identity and its checked request."""

    job: Job
    request: SongRequest
    created_at: float | None = None  # a held job's: when it was first held


@dataclass(frozen=True)
class Refusal:
    """A job to end FAILED at once, unpaid: why, on whose side, and who else hears of it
    (`callback_url` and `asked`, the request as sent, as far as they may be used)."""

    job: Job
    reason: str
    tenant: str = DEFAULT_TENANT
    callback_url: Any = None
    asked: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Resubmission:
    """An ended job to pay for again: its owner asked (`tenant`, the sender's, must be
    the job's), or its resubmission was held and is tried again (`tenant` None)."""

    job_id: str
    tenant: str | None


@dataclass(frozen=True)
class Cancellation:
    """A waiting job to end CANCELLED, unpaid: its owner asked (`tenant`, the sender's,
    must be the job's)."""

    job_id: str
    tenant: str


@dataclass(frozen=True)
class Admission:
    """Look for free places and start the next waiting jobs (admission.py)."""

    why: str


@dataclass(frozen=True)
class Nothing:
    """Nothing to do, and why (for the log)."""

    why: str


Decision = Submission | Refusal | Resubmission | Cancellation | Admission | Nothing
