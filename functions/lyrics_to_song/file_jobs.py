"""A lyric file the bucket announced, read once (at most the size cap) and decided: a
Submission of its request, or a Refusal that says why (docs/inputs.md: Lyric files)."""

from __future__ import annotations

import dataclasses

from botocore.exceptions import ClientError

from .data.rows import DEFAULT_TENANT
from .decisions import Nothing, Refusal, Submission
from .errors import InvalidRequest
from .lyric_files import not_a_lyric_file, parse_lyric_file, too_large
from .observability import logger
from .services import Services
from .sources import Job, LyricObject
from .tenants import file_tenant


@dataclasses.dataclass(frozen=True)
class _Read:
    """A lyric file as read: its job (named by the ETag read), its bytes, its metadata."""

    job: Job
    data: bytes
    metadata: dict[str, str]


def decide_file(services: Services, obj: LyricObject) -> Submission | Refusal | Nothing:
    """The job's identity is the file as read (GetObject's ETag), not as the notification
    describes it: a notification with another ETag cannot make the same file a new job.

    Every file the bucket announces gets an answer: one that is not a lyric file (by its
    name) is refused, unpaid and unread, in a FAILED notice that says which names are
    taken; a folder marker (a key ending in "/", as the console makes) is no file."""
    logger.thread_safe_append_keys(job_id=obj.job.job_id)
    settings = services.settings
    if obj.key.endswith("/"):
        return Nothing(f"{obj.key} is a folder marker, not a file")
    # Whose a file that fails before it is read is: its folder's tenant, if that names one.
    try:
        folder = file_tenant(
            obj.key, None, from_key=settings.tenant_from_key, policy=settings.tenant_policy
        )
    except InvalidRequest:
        folder = DEFAULT_TENANT
    named = not_a_lyric_file(obj.key)
    if named is not None:
        return Refusal(obj.job, named, folder)
    read = _read(services, obj, folder)
    if isinstance(read, Refusal):
        return read
    job, metadata = read.job, read.metadata
    callback_url = metadata.get("callback_url")
    cap = settings.lyrics_max_bytes
    if len(read.data) > cap:
        reason = too_large(obj.key, cap)
        return Refusal(job, reason, folder, callback_url)
    try:
        tenant = file_tenant(
            obj.key,
            metadata.get("tenant"),
            from_key=settings.tenant_from_key,
            policy=settings.tenant_policy,
        )
    except InvalidRequest as exc:
        return Refusal(job, str(exc), folder, callback_url)
    try:
        request = parse_lyric_file(
            obj.key,
            read.data,
            metadata_prompt=metadata.get("prompt"),
            default_prompt=settings.default_prompt,
            default_model=settings.model,
        )
    except InvalidRequest as exc:
        return Refusal(job, str(exc), tenant, callback_url)
    if request.callback_url is None and callback_url:
        request = dataclasses.replace(request, callback_url=callback_url.strip())
    return Submission(job, dataclasses.replace(request, tenant=tenant))


def _read(services: Services, obj: LyricObject, folder: str) -> _Read | Refusal:
    """The file, at most one byte past the size cap, or why it cannot be read."""
    job = obj.job
    settings = services.settings
    if settings.lyrics_bucket_name and obj.bucket != settings.lyrics_bucket_name:
        reason = (
            f"{obj.source} is not in the lyrics bucket ({settings.lyrics_bucket_name}): not read"
        )
        return Refusal(job, reason)
    cap = settings.lyrics_max_bytes
    if obj.size is not None and obj.size > cap:
        return Refusal(job, too_large(obj.key, cap), folder)
    try:
        response = services.s3.get_object(Bucket=obj.bucket, Key=obj.key, Range=f"bytes=0-{cap}")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "InvalidRange":  # an empty object has no byte 0
            return Refusal(job, f"{obj.key} is empty", folder)
        if code in ("NoSuchKey", "404"):
            return Refusal(job, f"{obj.key} no longer exists in {obj.bucket}", folder)
        raise
    job = dataclasses.replace(obj, etag=response["ETag"].strip('"')).job
    logger.thread_safe_append_keys(job_id=job.job_id)
    return _Read(job, response["Body"].read(cap + 1), response.get("Metadata", {}))
