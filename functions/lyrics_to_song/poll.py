"""Poll: follow the due tasks, save finished songs, end and announce every job once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import ClientError

from .closing import announce, ended
from .music_api import AudioSource, ErrorKind, MusicApiError, TaskState
from .observability import count, logger, seconds
from .services import Services
from .sidecar import sidecar_body, write_sidecar
from .song_store import SavedSong, hex_chunks, song_key, stream_to_s3
from .task_rows import JobState, Row

PAGE_SIZE = 500  # keys only: a page of the index is small
MAX_TASKS_PER_RUN = 5000  # a larger backlog is worked off over several runs
MAX_BAD_BODIES = 5  # unreadable status bodies in a row before the job fails
# Waits after trouble, as multiples of the poll backoff step (15 s by default).
TRANSIENT_RETRY_STEPS = 2
ACCOUNT_RETRY_STEPS = 20
MAX_BACKOFF_SECONDS = 300.0
# Stop taking tasks when less than this is left of the invocation: one task's worst case
# (status call, then a download streamed into S3).
RESERVE_MS = 60_000
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
_REPORT_FIELDS = {
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.TIMED_OUT: "timed_out",
    JobState.UNKNOWN: "unknown",
}
_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/flac": "flac",
}


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
    stopped_early: bool = False
    # The API asked us to slow down (429, 503) or refused the account (401, 402): the
    # run takes no more tasks, since each would only meet the same answer.
    api_pushed_back: bool = False

    def add(self, other: PollReport) -> None:
        for item in dataclasses.fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            setattr(self, item.name, (mine or theirs) if isinstance(mine, bool) else mine + theirs)


class AudioGone(Exception):
    """The audio can no longer be had (expired or missing URL, bad hex): the job fails."""


def backoff(polls: int, step: float) -> float:
    """Wait a little longer after each poll that found the song still running."""
    return min(MAX_BACKOFF_SECONDS, step * (polls + 1))


def poll_due(
    services: Services, remaining_ms: Callable[[], int], reserve_ms: int = RESERVE_MS
) -> PollReport:
    """One poll cycle over the rows due now, until done or out of time.

    The due keys are read first (the index holds keys only, so a page is thousands of
    them), then up to `POLL_CONCURRENCY` tasks are followed at once. Before each new
    task the remaining time is checked: when it runs short, the rest waits for the
    next run. So does the rest once the API pushes back, rather than hearing the same
    refusal once per task.
    """
    report = PollReport()
    workers = services.settings.poll_concurrency
    running: set[Future[PollReport]] = set()

    def collect(done: set[Future[PollReport]]) -> None:
        for future in done:
            report.add(future.result())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        for job_id, due_at in _due_keys(services):
            while len(running) >= workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                collect(done)
            if remaining_ms() < reserve_ms:
                report.stopped_early = True
                logger.warning("little time left: the other due tasks wait for the next run")
                break
            if report.api_pushed_back:
                logger.warning(
                    "the API is pushing back (rate limit, unavailable or account): "
                    "the other due tasks wait for the next run"
                )
                break
            report.due += 1
            running.add(pool.submit(_take, services, job_id, due_at))
        collect(wait(running).done)
    return report


def _due_keys(services: Services) -> list[tuple[str, float]]:
    """The rows due now, earliest first, at most MAX_TASKS_PER_RUN."""
    now = services.clock()
    keys: list[tuple[str, float]] = []
    start_key: dict[str, Any] | None = None
    while len(keys) < MAX_TASKS_PER_RUN:
        page, start_key = services.table.due(now, PAGE_SIZE, start_key)
        keys.extend(page)
        if not start_key:
            break
    return keys[:MAX_TASKS_PER_RUN]


def _take(services: Services, job_id: str, due_at: float) -> PollReport:
    """Claim one due row and follow it (in a worker thread); returns what happened."""
    report = PollReport()
    lease_until = services.clock() + services.settings.poll_lease_seconds
    row = services.table.claim(job_id, due_at, lease_until)
    if row is None:
        report.taken_by_other_run += 1
        return report
    logger.thread_safe_append_keys(job_id=row.job_id, task_id=row.task_id)
    try:
        process_row(services, row, report)
    except Exception:
        # One task's trouble must not stop the others; this one keeps its lease and
        # is taken again when the lease ends.
        logger.exception("unexpected error while following a task; retried later")
        count("PollErrors")
        report.errors += 1
    finally:
        logger.thread_safe_clear_keys()
    return report


def process_row(services: Services, row: Row, report: PollReport) -> None:
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
    _follow_task(services, row, report)


def _follow_task(services: Services, row: Row, report: PollReport) -> None:
    assert row.task_id is not None
    try:
        status = services.api.task_status(row.task_id)
    except MusicApiError as exc:
        _status_unavailable(services, row, exc, report)
        return
    if status.state is TaskState.FAILED:
        _end(
            services,
            row,
            JobState.FAILED,
            report,
            error=f"the API reported the task {status.raw_status}: {status.error}",
        )
        return
    if status.state is TaskState.RUNNING:
        if _too_old(services, row):
            _time_out(services, row, report)
            return
        report.running += 1
        services.table.update_claimed(
            row,
            {
                "due_at": services.clock()
                + backoff(row.polls, services.settings.poll_backoff_seconds),
                "polls": row.polls + 1,
                "bad_bodies": 0,
                "api_status": status.raw_status,
            },
        )
        return
    assert status.audio is not None
    bucket = services.settings.audio_bucket_name
    try:
        saved = _save_song(services, row, status.audio)
        now = services.clock()
        sidecar = sidecar_body(
            row, saved, bucket=bucket, saved_at=now, duration=status.duration_seconds
        )
        write_sidecar(services.s3, bucket, sidecar, saved.key)
    except AudioGone as exc:
        _end(services, row, JobState.FAILED, report, error=str(exc))
        return
    except (httpx.HTTPError, OSError, ClientError) as exc:
        logger.warning(
            "saving the song or its sidecar failed; retried on the next poll",
            extra={"error": repr(exc)},
        )
        _retry_later(services, row, report, _steps(services, TRANSIENT_RETRY_STEPS))
        return
    seconds("TimeToSong", now - (row.submitted_at or row.created_at))
    logger.info("song saved", extra={"song_key": saved.key, "bytes": saved.size})
    _end(
        services,
        row,
        JobState.COMPLETED,
        report,
        song_key=saved.key,
        song_bytes=saved.size,
        duration_seconds=status.duration_seconds,
    )


def _status_unavailable(
    services: Services, row: Row, exc: MusicApiError, report: PollReport
) -> None:
    extra = {"api_status": exc.status, "error": str(exc), "raw_body": exc.raw_body}
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
        _retry_later(services, row, report, _steps(services, ACCOUNT_RETRY_STEPS), check_age=False)
        return
    if exc.malformed:
        bad = row.bad_bodies + 1
        logger.error("status body not understood", extra={**extra, "times_in_a_row": bad})
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
        services.table.update_claimed(
            row,
            {
                "due_at": services.clock() + _steps(services, TRANSIENT_RETRY_STEPS),
                "bad_bodies": bad,
            },
        )
        report.retry_later += 1
        return
    logger.warning("status request failed; retried on the next poll", extra=extra)
    count("TransientErrors")
    if exc.status in (429, 503):
        report.api_pushed_back = True
    _retry_later(
        services, row, report, max(_steps(services, TRANSIENT_RETRY_STEPS), exc.retry_after or 0.0)
    )


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
    services.table.update_claimed(row, {"due_at": services.clock() + delay})


def _end(services: Services, row: Row, state: JobState, report: PollReport, **fields: Any) -> None:
    """Record the terminal state (still due, for its notification), then announce it."""
    now = services.clock()
    changes = {
        "state": state.value,
        "finished_at": now,
        "notified": False,
        "due_at": now,
        "previous_state": None,  # a resubmission, if this was one, is over
        **fields,
    }
    if not services.table.update_claimed(row, changes):
        logger.warning("the row changed under this run (lease lost); left to the other run")
        return
    field = _REPORT_FIELDS[state]
    setattr(report, field, getattr(report, field) + 1)
    ended(services, dataclasses.replace(row, state=state, finished_at=now, due_at=now, **fields))
    report.notified += 1


def _save_song(services: Services, row: Row, audio: AudioSource) -> SavedSong:
    assert row.task_id is not None
    settings = services.settings
    metadata = {
        "job-id": row.job_id,
        "task-id": row.task_id,
        "model": row.model or "",
        "source": row.source,
    }
    if audio.hex_data is not None:
        try:
            return stream_to_s3(
                services.s3,
                settings.audio_bucket_name,
                song_key(row.source_name, row.task_id),
                hex_chunks(audio.hex_data),
                content_type="audio/mpeg",
                metadata=metadata,
            )
        except ValueError as exc:
            raise AudioGone(f"the API returned audio that could not be decoded: {exc}") from None
    assert audio.url is not None
    with services.api.http.stream(
        "GET",
        audio.url,
        headers=services.api.audio_headers(audio.url),
        timeout=DOWNLOAD_TIMEOUT,
        follow_redirects=True,
    ) as response:
        if response.status_code in (401, 403, 404, 410):
            raise AudioGone(
                f"the song's download link no longer works (HTTP {response.status_code}); "
                "it may have expired"
            )
        response.raise_for_status()
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type.startswith("audio/"):
            content_type = "audio/mpeg"
        return stream_to_s3(
            services.s3,
            settings.audio_bucket_name,
            song_key(row.source_name, row.task_id, _EXTENSIONS.get(content_type, "mp3")),
            response.iter_bytes(chunk_size=1024 * 1024),
            content_type=content_type,
            metadata=metadata,
        )
