"""What comes to the submit function, sorted into jobs: an SQS message (a request, a
resubmission, a reminder for a held job, S3 notifications, or junk) or S3 notifications
sent straight to it. Each becomes at most one paid call (submit.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from botocore.exceptions import ClientError

from .data.rows import DEFAULT_TENANT, JobState
from .errors import InvalidRequest
from .lyric_files import parse_lyric_file
from .observability import count, logger
from .producers import queued_tenant, sender_home
from .resubmit import resubmit, resubmit_request
from .services import Services
from .song_request import parse_request
from .sources import (
    HeldRetry,
    Job,
    LyricObject,
    QueuedRequest,
    ResubmitRequest,
    UnreadableMessage,
    job_id_for,
    lyric_objects,
    read_message,
)
from .submit import Outcome, reject, submit_request
from .tenants import file_tenant


def retry_held(services: Services, retry: HeldRetry) -> Outcome:
    """A reminder to try a held job again: taken only when the row still holds its token
    (so that copies of it, or one sent by anyone, cannot multiply the tries)."""
    logger.thread_safe_append_keys(job_id=retry.job_id)
    row = services.table.get(retry.job_id)
    if row is None or row.hold is None or row.hold.token != retry.token:
        logger.info("reminder for a job no longer held by it: nothing to do")
        return Outcome.SKIPPED
    if row.state is not JobState.HELD:
        return resubmit(services, row.job_id, tenant=None)
    assert row.request_json is not None  # a HELD row keeps what it asks for
    request = parse_request(json.loads(row.request_json), services.settings.model)
    request = dataclasses.replace(request, tenant=row.tenant)
    job = Job(row.job_id, row.source, row.source_name, row.request_id)
    return submit_request(services, job, request, row.created_at)


def submit_lyric_object(services: Services, obj: LyricObject) -> Outcome:
    """Read a lyric file (at most the size cap) and submit it.

    The job's identity is the file as read (GetObject's ETag), not as the notification
    describes it: a notification with another ETag cannot make the same file a new job.
    """
    job = obj.job
    logger.thread_safe_append_keys(job_id=job.job_id)
    settings = services.settings
    # Whose a file that fails before it is read is: its folder's tenant, if that names one.
    try:
        folder = file_tenant(
            obj.key, None, from_key=settings.tenant_from_key, policy=settings.tenant_policy
        )
    except InvalidRequest:
        folder = DEFAULT_TENANT
    if settings.lyrics_bucket_name and obj.bucket != settings.lyrics_bucket_name:
        return reject(
            services,
            job,
            f"{obj.source} is not in the lyrics bucket ({settings.lyrics_bucket_name}): not read",
        )
    cap = settings.lyrics_max_bytes
    if obj.size is not None and obj.size > cap:
        reason = f"{obj.key} is {obj.size} bytes; lyric files may be at most {cap} bytes"
        return reject(services, job, reason, folder)
    try:
        response = services.s3.get_object(Bucket=obj.bucket, Key=obj.key, Range=f"bytes=0-{cap}")
        data = response["Body"].read(cap + 1)
        metadata = response.get("Metadata", {})
        job = dataclasses.replace(obj, etag=response["ETag"].strip('"')).job
        logger.thread_safe_append_keys(job_id=job.job_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "InvalidRange":  # an empty object has no byte 0
            return reject(services, job, f"{obj.key} is empty", folder)
        if code in ("NoSuchKey", "404"):
            return reject(services, job, f"{obj.key} no longer exists in {obj.bucket}", folder)
        raise
    callback_url = metadata.get("callback_url")
    if len(data) > cap:
        reason = f"{obj.key} is larger than {cap} bytes, the limit for lyric files"
        return reject(services, job, reason, folder, callback_url)
    try:
        tenant = file_tenant(
            obj.key,
            metadata.get("tenant"),
            from_key=settings.tenant_from_key,
            policy=settings.tenant_policy,
        )
    except InvalidRequest as exc:
        return reject(services, job, str(exc), folder, callback_url)
    try:
        request = parse_lyric_file(
            obj.key,
            data,
            metadata_prompt=metadata.get("prompt"),
            default_prompt=settings.default_prompt,
            default_model=settings.model,
        )
    except InvalidRequest as exc:
        return reject(services, job, str(exc), tenant, callback_url)
    if request.callback_url is None and callback_url:
        request = dataclasses.replace(request, callback_url=callback_url.strip())
    return submit_request(services, job, dataclasses.replace(request, tenant=tenant))


def submit_queued(services: Services, queued: QueuedRequest) -> Outcome:
    body = queued.body
    try:
        tenant = queued_tenant(services, body.get("tenant"), queued.sender)
    except InvalidRequest as exc:
        job = queued.refused_job()
        logger.thread_safe_append_keys(job_id=job.job_id)
        count("RequestsRefusedForTenant")
        own = sender_home(services, queued.sender)  # the refusal is its own tenant's
        reason = f"invalid song request: {exc}"
        return reject(services, job, reason, own, body.get("callback_url"), asked=body)
    job = queued.job_for(tenant)
    try:
        request = parse_request(body, services.settings.model)
    except InvalidRequest as exc:
        logger.thread_safe_append_keys(job_id=job.job_id)
        reason = f"invalid song request: {exc}"
        return reject(services, job, reason, tenant, body.get("callback_url"), asked=body)
    return submit_request(services, job, dataclasses.replace(request, tenant=tenant))


def handle_message(
    services: Services,
    body: str,
    message_id: str,
    sender: str | None = None,
    *,
    from_bucket: bool = False,
) -> list[Outcome]:
    """One SQS message (`sender`: its SenderId): a request, a resubmission, a reminder
    for a held job, an S3 notification (one or more files), or junk. `from_bucket`: it
    came from the queue S3 alone may send to, the one path a lyric-file notification is
    acted on from (LYRIC_FILES_QUEUE_ARN); any other queue's is refused as forged."""
    found = read_message(body, message_id, sender)
    if found is None:
        return [Outcome.SKIPPED]
    if isinstance(found, UnreadableMessage):
        job = found.job
        logger.thread_safe_append_keys(job_id=job.job_id)
        return [reject(services, job, found.reason)]
    if isinstance(found, QueuedRequest):
        return [submit_queued(services, found)]
    if isinstance(found, ResubmitRequest):
        return [resubmit_request(services, found)]
    if isinstance(found, HeldRetry):
        return [retry_held(services, found)]
    if not from_bucket:
        return [refuse_forged(services, body, message_id, sender)]
    return [submit_lyric_object(services, obj) for obj in found]


def refuse_forged(services: Services, body: str, message_id: str, sender: str | None) -> Outcome:
    """An S3-shaped message a producer put on the jobs queue: nothing is read or made,
    and the refusal is its sender's own tenant's, never the tenant its key names."""
    job = Job(job_id_for("forged:" + body), f"sqs:message/{message_id}", "message")
    logger.thread_safe_append_keys(job_id=job.job_id)
    count("ForgedNotificationsRefused")
    reason = (
        "a lyric-file notification came on the jobs queue, where producers send: only the "
        "lyrics bucket's own notifications make lyric-file jobs, so no file was read"
    )
    return reject(services, job, reason, sender_home(services, sender))


def handle_s3_event(services: Services, event: dict[str, Any]) -> list[Outcome]:
    """S3 notifications delivered to the function directly (not through the queue)."""
    return [submit_lyric_object(services, obj) for obj in lyric_objects(event)]
