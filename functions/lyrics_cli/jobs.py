"""What the commands do to a stack: plain functions over the stack's clients."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from lyrics_to_song.check_timing import PRIOR_SECONDS, LikelyWindow
from lyrics_to_song.check_timing import likely_window as learned_window
from lyrics_to_song.config import (
    DEFAULT_LYRICS_MAX_BYTES,
    DEFAULT_MAX_RESUBMITS,
    DEFAULT_MODEL,
    DEFAULT_PROMPT,
    seconds_range,
)
from lyrics_to_song.data.pace import SongTimes
from lyrics_to_song.data.rows import DEFAULT_TENANT, RESUBMITTABLE, JobState, Row
from lyrics_to_song.data.senders import SenderStore
from lyrics_to_song.data.task_table import TaskTable
from lyrics_to_song.errors import ConfigError, InvalidRequest
from lyrics_to_song.lyric_files import not_a_lyric_file, parse_lyric_file, too_large, with_fields
from lyrics_to_song.song_request import is_valid_request_id, parse_request, same_song
from lyrics_to_song.sources import LyricObject, QueuedRequest
from lyrics_to_song.tenants import check_tenant, principal_of
from lyrics_to_song.webhooks.callbacks import CallbackRules

from .stack_target import CliError, Cloud, ExitCode

_JOB_ID = re.compile(r"job-[0-9a-f]{32}")  # fullmatch
MAX_KEY_BYTES = 1024  # S3's limit on object keys


@dataclass(frozen=True)
class Submitted:
    job_id: str
    where: str  # the S3 object or the queue the job went to
    earlier: Row | None = None  # the job this request already was: nothing new is paid
    # A request's job if the submit function refuses it for its tenant (TenantPolicy=bound)
    refused_id: str | None = None


@dataclass(frozen=True)
class LyricUpload:
    """A lyric file checked as the submit function will check it, ready to upload."""

    key: str
    data: bytes
    applied: tuple[str, ...]  # the request fields written into it from the command line
    tenant: str | None = None  # sent as the object's `tenant` metadata


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise CliError(
            f"{job_id!r} is not a job id (they look like job- and 32 hex digits)", ExitCode.USAGE
        )
    return job_id


def check_job_ref(job: str | None, request_id: str | None, tenant: str | None) -> None:
    """A job named one way: its id, a lyric file's s3:// URI, or --request-id (with its
    --tenant)."""
    if (job is None) == (request_id is None):
        raise CliError("give a JOB (job-… or s3://bucket/key) or --request-id", ExitCode.USAGE)
    if tenant is not None and request_id is None:
        raise CliError("--tenant names the tenant of a --request-id", ExitCode.USAGE)
    if request_id is not None and not is_valid_request_id(request_id):
        raise CliError(f"{request_id!r} is not a request_id the stack takes", ExitCode.USAGE)
    if job is not None and not job.startswith("s3://") and not _JOB_ID.fullmatch(job):
        raise CliError(
            f"{job!r} is neither a job id (job- and 32 hex digits) nor a lyric file's "
            f"s3://bucket/key; a request's job: --request-id {job} [--tenant T]",
            ExitCode.USAGE,
        )


def resolve_job(cloud: Cloud, job: str | None, request_id: str | None, tenant: str | None) -> str:
    """The job id of what `check_job_ref` took: a request's is its tenant's and id's
    (docs/inputs.md: Job identity); a lyric file's is its key's and content's now."""
    if request_id is not None:
        return (
            QueuedRequest({"request_id": request_id}, "cli")
            .job_for(tenant or DEFAULT_TENANT)
            .job_id
        )
    assert job is not None
    if not job.startswith("s3://"):
        return job
    bucket, _, key = job.removeprefix("s3://").partition("/")
    try:
        head = cloud.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
            raise CliError(
                f"no object {job}: a lyric file's job is found by the file as it is now",
                ExitCode.NOT_FOUND,
            ) from None
        raise
    return LyricObject(bucket, key, head["ETag"].strip('"'), None).job_id


def prepare_file(
    path: Path, *, key: str | None, fields: dict[str, Any], tenant: str | None = None
) -> LyricUpload:
    """Read a lyric file, write `fields` into it (docs/inputs.md: Lyric files) and check it.

    The bucket notifies for names ending in lower-case .txt and .json only, so `song.TXT`
    is uploaded as `song.txt`.
    """
    if path.is_dir():
        raise CliError(
            f"{path} is a folder: submit takes one lyric file (.txt or .json); for many, "
            f'run it once per file (for f in {path}/*.txt; do lyrics-to-song submit "$f"; done)',
            ExitCode.USAGE,
        )
    key = lyric_key(key or path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from None
    try:  # the same checks the submit function makes, in its order, before any upload
        if tenant is not None:
            check_tenant(tenant, "--tenant")
        if fields:
            data = with_fields(key, data, fields)
        # The functions' default cap; a deployed stack may set another (LYRICS_MAX_BYTES).
        if len(data) > DEFAULT_LYRICS_MAX_BYTES:
            raise InvalidRequest(too_large(key, DEFAULT_LYRICS_MAX_BYTES))
        parse_lyric_file(
            key,
            data,
            metadata_prompt=None,
            default_prompt=DEFAULT_PROMPT,
            default_model=DEFAULT_MODEL,
        )
    except InvalidRequest as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    return LyricUpload(key, data, tuple(fields), tenant)


def upload_file(
    cloud: Cloud, upload: LyricUpload, *, clock: Callable[[], float] = time.time
) -> Submitted:
    """Upload a checked lyric file; the submit function picks it up from the bucket's event.

    The same content under the same key is the same job: when that job was made before,
    Submitted.earlier says so, and the stack pays for nothing new.
    """
    started = clock()
    extra: dict[str, Any] = {"Metadata": {"tenant": upload.tenant}} if upload.tenant else {}
    response = cloud.s3.put_object(
        Bucket=cloud.lyrics_bucket, Key=upload.key, Body=upload.data, **extra
    )
    etag = response["ETag"].strip('"')
    job_id = LyricObject(cloud.lyrics_bucket, upload.key, etag, len(upload.data)).job_id
    row = find_job(cloud, job_id)
    earlier = row if row is not None and row.created_at < started else None
    return Submitted(job_id, f"s3://{cloud.lyrics_bucket}/{upload.key}", earlier)


def lyric_key(key: str) -> str:
    """The key with its suffix in lower case, as the bucket's notification filter wants;
    a usage error for names that are not lyric files at all."""
    stem, _, suffix = key.rpartition(".")
    refused = not_a_lyric_file(key)
    if refused is not None:
        raise CliError(refused, ExitCode.USAGE)
    if len(key.encode()) > MAX_KEY_BYTES:
        raise CliError(f"S3 keys are at most {MAX_KEY_BYTES} bytes", ExitCode.USAGE)
    return f"{stem}.{suffix.lower()}"


def check_callback(url: str, where: str, *, local: bool) -> str:
    """What can be known of a callback URL here (https, no credentials, no internal
    address written out; a local stack may call loopback over http); the stack checks
    the rest (its CALLBACK_HOSTS, DNS)."""
    try:
        return CallbackRules(local=local).check_url(url, where)
    except InvalidRequest as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def check_request(body: dict[str, Any]) -> None:
    """The submit function's checks of a song request, made before anything is sent."""
    try:
        parse_request(body, DEFAULT_MODEL)
    except InvalidRequest as exc:
        raise CliError(f"invalid song request: {exc}", ExitCode.USAGE) from None


def submit_request(cloud: Cloud, body: dict[str, Any]) -> Submitted:
    """Queue a checked song request. Without a request id the request itself names the
    job, as the submit function does: the same request sent twice is one job and one
    song, and a request that already was a job is not sent again."""
    request = QueuedRequest(body, "cli")
    job_id = request.job.job_id
    earlier = find_job(cloud, job_id)
    if earlier is not None and "request_id" in body and not _asks_the_same(earlier, body):
        raise CliError(
            f"request_id {body['request_id']!r} was used for another request (job {job_id}, "
            f"{earlier.state.value}): a new song needs a new --request-id "
            "(docs/inputs.md: Job identity); nothing was sent",
            ExitCode.USAGE,
        )
    if earlier is None:
        cloud.sqs.send_message(
            QueueUrl=cloud.jobs_queue_url, MessageBody=json.dumps(body, ensure_ascii=False)
        )
    return Submitted(job_id, cloud.jobs_queue_url, earlier, request.refused_job().job_id)


def _asks_the_same(row: Row, body: dict[str, Any]) -> bool:
    """Whether `body` is the request the row's job was made for, as the submit function
    compares them (a body naming no model takes the one the job got)."""
    model = json.loads(row.request_json).get("model") if row.request_json else None
    request = parse_request(body, model or DEFAULT_MODEL)
    asked = json.dumps(request.as_item(), ensure_ascii=False, sort_keys=True)
    return same_song(row.request_json, asked)


# How long `submit` looks for the job of a request that names a tenant: the submit
# function takes a message within seconds (its batching window is 5 s).
TAKEN_WITHIN_SECONDS = 30.0


def refused_for_its_tenant(
    cloud: Cloud,
    submitted: Submitted,
    prepared: object,
    *,
    within: float = TAKEN_WITHIN_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Row | None:
    """The refusal a request became, if its sender may not submit for the tenant it
    names (or, naming none, must name one: TenantPolicy=bound), looked for until the
    stack has taken the request, so `submit` never prints an id that will not exist.
    None when the job itself has a row, or nothing showed up `within` seconds (the id
    printed is then the job's), or the request cannot be refused so."""
    if not isinstance(prepared, dict) or submitted.refused_id is None or submitted.earlier:
        return None
    if prepared.get("tenant") is None and not _must_name_a_tenant(cloud):
        return None
    started = clock()
    while clock() - started < within:
        if find_job(cloud, submitted.job_id) is not None:
            return None
        refused = find_job(cloud, submitted.refused_id)
        if refused is not None:
            return refused
        sleep(0.5)
    return None


def _must_name_a_tenant(cloud: Cloud) -> bool:
    """Whether the caller, as SQS will name it (its IAM user's or role's id), is bound to
    several tenants but not `default`, so that a request naming none is refused; when
    that cannot be read, it may be."""
    if cloud.tenant_policy != "bound" or not cloud.spending_table:
        return False
    try:
        caller = cloud.client("sts").get_caller_identity()["UserId"]
        bound = SenderStore(cloud.dynamodb, cloud.spending_table).tenants(principal_of(caller))
    except ClientError:
        return True
    return len(bound) > 1 and DEFAULT_TENANT not in bound


def find_job(cloud: Cloud, job_id: str) -> Row | None:
    return TaskTable(cloud.dynamodb, cloud.tasks_table).get(job_id)


def get_job(cloud: Cloud, job_id: str) -> Row:
    row = find_job(cloud, check_job_id(job_id))
    if row is None:
        raise CliError(
            f"no job {job_id} in stack {cloud.stack_name!r} (a new job shows up once the "
            "submit function has taken it; ended jobs are kept for TERMINAL_TTL_DAYS)",
            ExitCode.NOT_FOUND,
        )
    return row


def list_jobs(
    cloud: Cloud,
    *,
    state: JobState | None,
    limit: int,
    tenant: str | None = None,
    since: float | None = None,
) -> list[Row]:
    """The newest jobs first, optionally of one state, one tenant, created since a time.

    The table holds one row per job for TERMINAL_TTL_DAYS, so a scan stays small.
    """
    rows = [
        row
        for row in TaskTable(cloud.dynamodb, cloud.tasks_table).rows(state)
        if (tenant is None or row.tenant == tenant) and (since is None or row.created_at >= since)
    ]
    rows.sort(key=lambda row: row.created_at, reverse=True)
    return rows[:limit]


def wait_for(
    cloud: Cloud,
    job_id: str,
    *,
    timeout: float,
    interval: float,
    on_change: Callable[[Row | None, float], None],
    resubmits: int = 0,
    missing_after: float | None = None,
    refused_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Row:
    """Read the job until it ends; `on_change` hears each new state (None: not taken yet).

    With `resubmits`, the job's earlier ending does not count until it has been
    resubmitted that many times (a resubmission waits on the queue for a moment). With
    `missing_after`, a job that has no row by then is not found (exit 3), rather than
    waited for until the timeout. With `refused_id`, the job the request became if it was
    refused for its tenant is the one waited for once it has a row.
    """
    check_job_id(job_id)
    started = clock()
    last: tuple[Any, ...] | None = None
    while True:
        row = find_job(cloud, job_id)
        if row is None and refused_id is not None:
            row = find_job(cloud, refused_id)
        earlier = row is not None and row.resubmits < resubmits  # its last ending still
        if earlier and row is not None and row.hold is None:
            row = None  # the resubmission is not taken yet
        view = (row.state, row.polls, row.notified, row.hold) if row else None
        if view != last:
            last = view
            on_change(row, clock() - started)
        if row is not None and row.state.terminal and not earlier:
            return row
        if row is None and missing_after is not None and clock() - started >= missing_after:
            raise CliError(
                f"no job {job_id}: not found after {missing_after:.0f} s (a job just queued "
                "gets its row within seconds: is the submit function taking the jobs queue?)",
                ExitCode.NOT_FOUND,
            )
        left = timeout - (clock() - started)
        if left <= 0:
            state = row.state.value if row else "not taken by the submit function yet"
            raise CliError(
                f"gave up after {timeout:.0f} s: job {job_id} is still {state}; "
                "wait again later, it goes on",
                ExitCode.TIMEOUT,
            )
        sleep(min(interval, left))  # the last look falls on the timeout, not past it


def likely_window(cloud: Cloud, model: str | None) -> LikelyWindow:
    """When songs of the model are usually ready, as the poll function learns it."""
    recent: list[float] = []
    if cloud.spending_table:
        recent = SongTimes(cloud.dynamodb, cloud.spending_table).recent(model or DEFAULT_MODEL)
    prior = PRIOR_SECONDS
    if cloud.typical_song_seconds:  # the stack's own setting, as the functions read it
        env = {"TYPICAL_SONG_SECONDS": cloud.typical_song_seconds}
        with contextlib.suppress(ConfigError):
            prior = seconds_range(env, "TYPICAL_SONG_SECONDS", PRIOR_SECONDS)
    return learned_window(recent, prior)


def song_key_of(row: Row) -> str:
    """Where a completed job's song is; a CliError says why there is none."""
    if row.state is not JobState.COMPLETED or not row.song_key:
        raise CliError(
            f"job {row.job_id} has no song: it is {row.state.value}"
            + (f" ({row.error})" if row.error else ""),
            ExitCode.ENDED_BADLY,
        )
    return row.song_key


def fetch(cloud: Cloud, key: str, out: BinaryIO) -> int:
    """Stream a song from the songs bucket into `out`; returns its size."""
    body = cloud.s3.get_object(Bucket=cloud.songs_bucket, Key=key)["Body"]
    size = 0
    for chunk in body.iter_chunks(1024 * 1024):
        out.write(chunk)
        size += len(chunk)
    return size


def check_resubmittable(row: Row) -> None:
    """The same rule the submit function applies; checked first to say why not."""
    if row.state not in RESUBMITTABLE:
        raise CliError(
            f"job {row.job_id} is {row.state.value}: only "
            f"{', '.join(s.value for s in RESUBMITTABLE)} jobs can be resubmitted",
            ExitCode.ENDED_BADLY,
        )
    if not row.notified:
        raise CliError(
            f"job {row.job_id} is still being wrapped up (its notification is not out yet); "
            "try again in a minute",
            ExitCode.ENDED_BADLY,
        )
    if not row.request_json:
        raise CliError(
            f"job {row.job_id} never had a valid request ({row.error}); fix the input and "
            "submit it as a new job",
            ExitCode.ENDED_BADLY,
        )
    # The functions' default; the template sets no other (README: Resubmitting a job).
    if row.resubmits >= DEFAULT_MAX_RESUBMITS:
        raise CliError(
            f"job {row.job_id} was resubmitted {row.resubmits} times already, the most "
            "MAX_RESUBMITS allows: submit it as a new job if it is worth paying for again",
            ExitCode.ENDED_BADLY,
        )


# Failures the same request meets again: the API refused it as it is, or judged its
# content (README: Resubmitting a job).
_REPEATING = (
    ("the API refused the request:", "the API refused this very request"),
    ("moderation", "its content was refused"),
    ("content policy", "its content was refused"),
)


def repeating_failure(row: Row) -> str | None:
    """Why resubmitting this job would most likely pay for the same failure again."""
    if row.state is not JobState.FAILED:
        return None
    error = (row.error or "").lower()
    return next((why for marker, why in _REPEATING if marker.lower() in error), None)


def check_not_repeating(row: Row, force: bool) -> None:
    """A job whose failure would repeat is resubmitted only with --force."""
    why = repeating_failure(row)
    if why is not None and not force:
        raise CliError(
            f"job {row.job_id} failed because {why} ({row.error}): the same request would "
            "most likely fail again and be paid again. Change it and submit it as a new "
            "job, or resubmit it anyway with --force",
            ExitCode.ENDED_BADLY,
        )


def resubmit(cloud: Cloud, row: Row) -> None:
    """Ask the submit function to pay again for this job (README: Resubmitting a job)."""
    check_resubmittable(row)
    body = {"resubmit": row.job_id}
    if row.tenant != DEFAULT_TENANT:  # only the job's tenant may resubmit it
        body["tenant"] = row.tenant
    cloud.sqs.send_message(QueueUrl=cloud.jobs_queue_url, MessageBody=json.dumps(body))
