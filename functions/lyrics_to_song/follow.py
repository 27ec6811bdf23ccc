"""Following one task a poll run holds: ask its status, save the song, end and announce the job.

What each answer leads to is in docs/how-it-works.md (What is retried, and what is not).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

import httpx
from botocore.exceptions import ClientError

from .announce import announce, ended
from .api_answers import TaskState, TaskStatus
from .audio.download import DownloadLimits, FetchedAudio, fetch_audio, store_song
from .audio.sidecar import sidecar_body, write_sidecar
from .check_timing import CheckPolicy, likely_window
from .data.rows import JobState, Row, Song
from .errors import AudioGone, DownloadFailed, ErrorKind, MusicApiError
from .observability import count, logger, seconds
from .services import Services
from .texts import kept_error, without_queries

MAX_BAD_BODIES = 5  # unreadable status bodies in a row before the job fails
MAX_DOWNLOAD_FAILURES = 3  # failed downloads of a finished song before the job fails
# Waits after trouble, as multiples of the poll backoff step (15 s by default).
TRANSIENT_RETRY_STEPS = 2
ACCOUNT_RETRY_STEPS = 20
_REPORT_FIELDS = {
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.TIMED_OUT: "timed_out",
    JobState.UNKNOWN: "unknown",
}

# A task whose next look a Retry-After put past its age limit is looked at this long after
# it instead: then it times out.
AGE_SLACK_SECONDS = 60.0


@dataclass
class PollReport:
    due: int = 0
    taken_by_other_run: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0
    unknown: int = 0
    running: int = 0
    retry_later: int = 0
    notified: int = 0
    errors: int = 0
    sweeps: int = 0
    status_checks: int = 0
    too_early: int = 0  # looked at before its song could plausibly be ready: no request
    waited_for_budget: int = 0  # due, but this window's status checks were spent
    stopped_early: bool = False
    # The API asked us to slow down (429, 503) or refused the account (401, 402): the
    # run takes no more tasks, since each would only meet the same answer.
    api_pushed_back: bool = False
    account_problem: bool = False
    budget_spent: bool = False  # STATUS_CHECKS_PER_MINUTE: this window has no room left
    admitted: int = 0  # waiting jobs this run started (admission.py)

    @property
    def ended(self) -> int:
        """Jobs this run ended: each freed a place in flight."""
        return self.completed + self.failed + self.timed_out + self.unknown

    def add(self, other: PollReport) -> None:
        for item in dataclasses.fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            setattr(self, item.name, (mine or theirs) if isinstance(mine, bool) else mine + theirs)


class Pacing:
    """When a poll run checks: each model's likely window, read once per run (or a fixed
    policy, for the benchmark's baseline)."""

    def __init__(self, services: Services, fixed: CheckPolicy | None = None) -> None:
        self._services = services
        self._fixed = fixed
        self._policies: dict[str, CheckPolicy] = {}
        self._lock = threading.Lock()

    def policy(self, model: str | None) -> CheckPolicy:
        if self._fixed is not None:
            return self._fixed
        name = model or self._services.settings.model
        with self._lock:
            if name not in self._policies:
                recent = self._services.song_times.recent(name)
                prior = self._services.settings.typical_song_seconds
                self._policies[name] = likely_window(recent, prior)
            return self._policies[name]


def process_row(
    services: Services,
    row: Row,
    report: PollReport,
    pacing: Pacing | None = None,
    was_due: float | None = None,
) -> None:
    """Take a held row one step further: announce it, settle it, or ask about its task."""
    if row.state.terminal:
        # Ended earlier, but its notification did not go out (a crash in between).
        announce(services, row)
        report.notified += 1
        return
    if row.state is JobState.SUBMITTING:
        logger.error("a submission was cut short: its outcome is unknown, it is not resubmitted")
        _end(
            services,
            row,
            JobState.UNKNOWN,
            report,
            error="outcome unknown: the submit function stopped during the API call; "
            "the song may or may not have been started, so it was not sent again",
        )
        return
    policy = (pacing or Pacing(services)).policy(row.model)
    _follow_task(services, row, report, policy, was_due or services.clock())


def _follow_task(
    services: Services, row: Row, report: PollReport, policy: CheckPolicy, was_due: float
) -> None:
    assert row.task_id is not None
    now = services.clock()
    submitted = row.submitted_at or row.created_at
    if now - submitted < policy.earliest:
        report.too_early += 1
        services.table.reschedule(row, submitted + policy.earliest)
        return
    if not services.status_budget.take(now):
        report.waited_for_budget += 1
        report.budget_spent = True
        # Back in its place in the queue: the longest-waiting rows are checked first.
        services.table.reschedule(row, was_due)
        return
    report.status_checks += 1
    try:
        status = services.api.task_status(row.task_id)
    except MusicApiError as exc:
        # A check that learned nothing: the next one comes when it would have anyway.
        again = submitted + policy.next_check(now - submitted, row.polls)
        _status_unavailable(services, row, exc, report, again)
        return
    if status.state is TaskState.FAILED:
        _end(
            services,
            row,
            JobState.FAILED,
            report,
            error=f"the API reported the task {status.raw_status}: {status.error}",
        )
    elif status.state is TaskState.RUNNING:
        if _too_old(services, row):
            _time_out(services, row, report)
            return
        report.running += 1
        next_age = policy.next_check(now - submitted, row.polls)
        services.table.record_check(row, submitted + next_age, status.raw_status)
    else:
        _song_ready(services, row, status, report)


def _song_ready(services: Services, row: Row, status: TaskStatus, report: PollReport) -> None:
    """Fetch the song and check it is one, save it and its sidecar, then end the job
    COMPLETED."""
    assert status.audio is not None
    settings = services.settings
    limits = DownloadLimits(settings.max_song_bytes, settings.download_deadline_seconds)
    try:
        with fetch_audio(services.api, status.audio, limits) as audio:
            song = _store(services, row, status, audio, report)
    except AudioGone as exc:
        _end(services, row, JobState.FAILED, report, error=str(exc))
        return
    except (DownloadFailed, httpx.HTTPError, OSError) as exc:
        _download_failed(services, row, exc, report)
        return
    if song is not None:
        _end(services, row, JobState.COMPLETED, report, song=song)


def _store(
    services: Services, row: Row, status: TaskStatus, audio: FetchedAudio, report: PollReport
) -> Song | None:
    """The checked song and its sidecar into the songs bucket; None when S3 failed (the
    job is tried again later)."""
    bucket = services.settings.audio_bucket_name
    info = audio.info
    # The API's duration when it reports one, else the file's.
    duration = status.duration_seconds or info.duration_seconds
    try:
        saved = store_song(services.s3, bucket, row, audio)
        now = services.clock()
        sidecar = sidecar_body(row, saved, info, bucket=bucket, saved_at=now, duration=duration)
        write_sidecar(services.s3, bucket, sidecar, saved.key)
    except (OSError, ClientError) as exc:
        logger.warning(
            "saving the song or its sidecar failed; retried on the next poll",
            extra={"error": repr(exc)},
        )
        _retry_later(services, row, report, _steps(services, TRANSIENT_RETRY_STEPS))
        return None
    took = now - (row.submitted_at or row.created_at)
    seconds("TimeToSong", took)
    logger.info("song saved", extra={"song_key": saved.key, "bytes": saved.size})
    _learn(services, row, took)
    return Song(saved.key, saved.size, duration, info.sample_rate, info.bitrate)


def _download_failed(services: Services, row: Row, exc: Exception, report: PollReport) -> None:
    """One failed download of a finished song: tried again, and the job fails after
    MAX_DOWNLOAD_FAILURES, with what went wrong the last time."""
    failures = row.download_failures + 1
    reason = str(exc) if isinstance(exc, DownloadFailed) else f"{type(exc).__name__}: {exc}"
    reason = without_queries(reason)
    logger.warning(
        "downloading the song failed",
        extra={"error": reason, "times": failures},
    )
    count("DownloadFailures")
    if failures >= MAX_DOWNLOAD_FAILURES:
        _end(
            services,
            row,
            JobState.FAILED,
            report,
            error=f"the song could not be downloaded ({failures} attempts): {reason}",
        )
        return
    if _too_old(services, row):
        _time_out(services, row, report)
        return
    report.retry_later += 1
    delay = _steps(services, TRANSIENT_RETRY_STEPS)
    services.table.record_download_failure(row, services.clock() + delay)


def _status_unavailable(
    services: Services, row: Row, exc: MusicApiError, report: PollReport, again: float
) -> None:
    """No usable status: FAILED if the request is wrong; else looked at again (`again` at
    the earliest), the account's trouble and unreadable bodies counted."""
    extra = {"api_status": exc.status, "error": kept_error(str(exc)), "raw_body": exc.raw_body}
    if exc.kind is ErrorKind.PERMANENT:
        logger.warning("the API refused the status request", extra=extra)
        _end(services, row, JobState.FAILED, report, error=f"status request refused: {exc}")
        return
    if exc.kind is ErrorKind.ACCOUNT:
        logger.error(
            "API account problem: the task is polled again once the key or credits are fixed",
            extra=extra,
        )
        count("AccountErrors")
        report.api_pushed_back = True
        report.account_problem = True
        _retry_later(services, row, report, _steps(services, ACCOUNT_RETRY_STEPS), check_age=False)
        return
    if exc.malformed:
        _unreadable(services, row, exc, report, again)
        return
    logger.warning("status request failed; retried on the next poll", extra=extra)
    count("TransientErrors")
    if exc.status in (429, 503):
        report.api_pushed_back = True
    if exc.status == 429:
        services.status_budget.slow_down(services.clock())
    now = services.clock()
    _retry_later(services, row, report, max(again - now, exc.retry_after or 0.0))


def after_error(services: Services, row: Row, exc: Exception, report: PollReport) -> None:
    """Anything that went wrong while following a held row, whatever raised it, counts
    as a bad answer: a row past MAX_TASK_AGE_SECONDS ends TIMED_OUT, and a row that
    meets MAX_BAD_BODIES of them in a row ends FAILED. So no answer, however built, keeps
    a job open for ever. A row already ended is left to be announced when its lease ends.
    """
    if row.state.terminal or row.state is JobState.SUBMITTING:
        return
    error = MusicApiError(
        ErrorKind.TRANSIENT, f"unexpected {type(exc).__name__} while following the task"
    )
    again = services.clock() + _steps(services, TRANSIENT_RETRY_STEPS)
    _unreadable(services, row, error, report, again)


def _unreadable(
    services: Services, row: Row, exc: MusicApiError, report: PollReport, again: float
) -> None:
    """A status body not understood: kept and logged; the job fails after a few in a row,
    or at once when it is past its age."""
    if _too_old(services, row):
        _time_out(services, row, report)
        return
    bad = row.bad_bodies + 1
    logger.error(
        "status body not understood",
        extra={
            "api_status": exc.status,
            "error": kept_error(str(exc)),
            "raw_body": exc.raw_body,
            "times_in_a_row": bad,
        },
    )
    count("UnreadableStatusBodies")
    if bad >= MAX_BAD_BODIES:
        _end(
            services,
            row,
            JobState.FAILED,
            report,
            error=f"the API's status answer could not be read {bad} times in a row: {exc}",
        )
        return
    services.table.record_unreadable(row, again)
    report.retry_later += 1


def _learn(services: Services, row: Row, took: float) -> None:
    """Keep the song's time for its model's likely window; a failure here loses no song."""
    try:
        services.song_times.record(row.model or services.settings.model, row.job_id, took)
    except (ClientError, OSError) as exc:
        logger.warning("the song's time could not be kept", extra={"error": repr(exc)})


def _steps(services: Services, steps: int) -> float:
    return float(services.settings.poll_backoff_seconds * steps)


def _too_old(services: Services, row: Row) -> bool:
    started = row.submitted_at or row.created_at
    return services.clock() - started > services.settings.max_task_age_seconds


def _time_out(services: Services, row: Row, report: PollReport) -> None:
    limit = services.settings.max_task_age_seconds
    _end(
        services,
        row,
        JobState.TIMED_OUT,
        report,
        error=f"no song within {limit} seconds of submission",
    )


def _retry_later(
    services: Services, row: Row, report: PollReport, delay: float, *, check_age: bool = True
) -> None:
    if check_age and _too_old(services, row):
        _time_out(services, row, report)
        return
    report.retry_later += 1
    now = services.clock()
    if check_age:
        # Never past the job's age limit (and a little slack), whatever a Retry-After
        # said: it is looked at then and times out, so no answer keeps its place for ever.
        deadline = (row.submitted_at or row.created_at) + services.settings.max_task_age_seconds
        delay = min(delay, max(deadline - now, 0.0) + AGE_SLACK_SECONDS)
    services.table.reschedule(row, now + delay)


def _end(
    services: Services,
    row: Row,
    state: JobState,
    report: PollReport,
    *,
    error: str | None = None,
    song: Song | None = None,
) -> None:
    """Record the terminal state (still due, for its notification), then announce it."""
    if error is not None:
        error = without_queries(error)  # a download's link may be signed in its query
    ended_row = services.table.end(row, state, now=services.clock(), error=error, song=song)
    if ended_row is None:
        logger.warning("the row changed under this run (lease lost); left to the other run")
        return
    field = _REPORT_FIELDS[state]
    setattr(report, field, getattr(report, field) + 1)
    ended(services, ended_row)
    report.notified += 1
