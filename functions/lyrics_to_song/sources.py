"""Where jobs come from: S3 notifications (direct or through SQS) and queued requests.

Each job gets an identity derived from its source, so a redelivered message or a
duplicate event maps to the same task row and is never paid for twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from .data.rows import DEFAULT_TENANT
from .errors import InvalidRequest
from .song_request import decode_json, is_valid_request_id, json_type


@dataclass(frozen=True)
class Job:
    """A job as its source names it: its identity, where it came from, a name for its song."""

    job_id: str
    source: str
    source_name: str
    request_id: str | None = None  # the producer's, as sent, when it is a valid one


@dataclass(frozen=True)
class LyricObject:
    """A lyric file in S3, as an ObjectCreated notification names it."""

    bucket: str
    key: str
    etag: str
    size: int | None

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def job_id(self) -> str:
        # Same file content under the same key is the same job (S3 may deliver twice).
        return job_id_for(f"s3:{self.bucket}/{self.key}#{self.etag}")

    @property
    def job(self) -> Job:
        return Job(self.job_id, self.source, self.key)


@dataclass(frozen=True)
class QueuedRequest:
    """A song request put on the jobs queue by a producer; `sender` is the message's
    SenderId (None in an event written by hand)."""

    body: Any
    message_id: str
    sender: str | None = None

    def job_for(self, tenant: str) -> Job:
        """The producer's `request_id` names the job, within its tenant: two tenants' same
        id are two jobs (the default tenant's keep the ids they had before tenants). Without
        one, the request's content does, with its tenant."""
        request_id = self.body.get("request_id")
        if is_valid_request_id(request_id):
            return Job(
                job_id_for(request_identity(tenant, request_id)),
                f"sqs:{request_id}",
                request_id,
                request_id,
            )
        named = self.body.get("tenant", DEFAULT_TENANT)
        body = self.body if named == tenant else {**self.body, "tenant": tenant}
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
        return Job(job_id_for("body:" + canonical), f"sqs:message/{self.message_id}", "request")

    @property
    def job(self) -> Job:
        """The job of a request for the tenant it names (the default one naming none)."""
        named = self.body.get("tenant", DEFAULT_TENANT)
        return self.job_for(named if isinstance(named, str) else repr(named))

    def refused_job(self) -> Job:
        """The job of a request refused for its tenant: named by its content in a space of
        its own, so it can never take the id of a job of the tenant it named (and the
        command line that sent it can find it)."""
        canonical = json.dumps(self.body, sort_keys=True, ensure_ascii=False)
        request_id = self.body.get("request_id")
        valid = request_id if is_valid_request_id(request_id) else None
        source = f"sqs:message/{self.message_id}"
        return Job(job_id_for(f"refused:{canonical}"), source, valid or "request", valid)


@dataclass(frozen=True)
class ResubmitRequest:
    """`{"resubmit": "job-…"}` (with `"tenant"` for another tenant's than the default):
    the owner asks to pay again for an ended job."""

    job_id: str
    tenant: Any = None
    sender: str | None = None


@dataclass(frozen=True)
class CancelRequest:
    """`{"cancel": "job-…"}` (with `"tenant"` for another tenant's than the default): the
    owner asks to end a job that waits in line, unpaid."""

    job_id: str
    tenant: Any = None
    sender: str | None = None


@dataclass(frozen=True)
class HeldRetry:
    """`{"held": "job-…", "token": …}`: the submit function's own reminder to try a job a
    cap holds again (docs/producers.md)."""

    job_id: str
    token: str


@dataclass(frozen=True)
class AdmitNudge:
    """`{"admit": "<why>"}`: places may be free (a cap raised, a tenant resumed): start the
    next waiting jobs. Anyone who may send to the queue may send it; it only looks."""

    why: str


ADMIT_WHY_CHARS = 100


@dataclass(frozen=True)
class UnreadableMessage:
    """A message that is neither a request nor an S3 notification: it becomes a FAILED job."""

    reason: str
    raw: str
    message_id: str

    @property
    def job(self) -> Job:
        return Job(job_id_for("message:" + self.raw), f"sqs:message/{self.message_id}", "message")


def job_id_for(identity: str) -> str:
    return "job-" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def reused_job(job: Job, tenant: str, request_json: str) -> Job:
    """The job of a request whose `request_id` (`job`'s) its tenant already used for
    another request: a refusal in a space of its own, named by the pair and what it
    asked for, so its copies are one refusal and the first job is left alone."""
    request_id = job.request_id or job.source_name
    digest = hashlib.sha256(request_json.encode()).hexdigest()
    identity = f"reused:{request_identity(tenant, request_id)}#{digest}"
    return Job(job_id_for(identity), job.source, job.source_name, job.request_id)


def request_identity(tenant: str, request_id: str) -> str:
    """What names the job of a tenant's `request_id`: one identity per pair, and no
    two pairs the same (docs/inputs.md: Job identity).

    Another tenant's is `request:'<tenant>'/<id>`; the default tenant's is
    `request:<id>`, the form it had before tenants, unless the id starts with `'` and
    could pass for another tenant's: then it is `request:'default'/<id>`. A tenant name
    has no `'`, so the tenant ends at the first `'` after the colon. Ids of jobs made
    before keep resolving; only a default id starting with `'` names a new job."""
    if tenant == DEFAULT_TENANT and not request_id.startswith("'"):
        return f"request:{request_id}"
    return f"request:'{tenant}'/{request_id}"


def _is_s3_record(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:s3"


def is_s3_notification(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return isinstance(records, list) and bool(records) and all(_is_s3_record(r) for r in records)


def lyric_objects(notification: Mapping[str, Any]) -> list[LyricObject]:
    """The created objects of an S3 notification; other event types are ignored."""
    objects = []
    for record in notification["Records"]:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        try:
            bucket = record["s3"]["bucket"]["name"]
            obj = record["s3"]["object"]
            key = unquote_plus(obj["key"])
        except (KeyError, TypeError):
            raise InvalidRequest(
                "S3 notification record without s3.bucket.name and s3.object.key"
            ) from None
        etag = str(obj.get("eTag") or obj.get("versionId") or obj.get("sequencer") or "")
        size = obj.get("size")
        objects.append(LyricObject(bucket, key, etag, size if isinstance(size, int) else None))
    return objects


def held_retry(job_id: str, token: str) -> str:
    """The body of a HeldRetry message."""
    return json.dumps({"held": job_id, "token": token})


def admit_nudge(why: str) -> str:
    """The body of an AdmitNudge message."""
    return json.dumps({"admit": why})


# What one message is, besides the lyric files of an S3 notification.
Message = (
    QueuedRequest | ResubmitRequest | CancelRequest | HeldRetry | AdmitNudge | UnreadableMessage
)
Found = list[LyricObject] | Message


def read_message(body: str, message_id: str, sender: str | None = None) -> Found | None:
    """Classify one SQS message body. None means there is nothing to do (s3:TestEvent)."""
    try:
        decoded: Any = decode_json(body)
    except InvalidRequest as exc:
        return UnreadableMessage(f"message body is not JSON: {exc}", body, message_id)
    if isinstance(decoded, Mapping) and decoded.get("Event") == "s3:TestEvent":
        return None
    if is_s3_notification(decoded):
        try:
            return lyric_objects(decoded)
        except InvalidRequest as exc:
            return UnreadableMessage(str(exc), body, message_id)
    if isinstance(decoded, Mapping) and "Records" in decoded:
        return UnreadableMessage(
            "message holds 'Records' but they are not S3 notifications", body, message_id
        )
    if not isinstance(decoded, Mapping):
        return UnreadableMessage(
            f"message body must be a JSON object (a song request), got {json_type(decoded)}",
            body,
            message_id,
        )
    if set(decoded) in ({"resubmit"}, {"resubmit", "tenant"}) and isinstance(
        decoded["resubmit"], str
    ):
        return ResubmitRequest(decoded["resubmit"], decoded.get("tenant"), sender)
    if set(decoded) in ({"cancel"}, {"cancel", "tenant"}) and isinstance(decoded["cancel"], str):
        return CancelRequest(decoded["cancel"], decoded.get("tenant"), sender)
    if (
        set(decoded) == {"held", "token"}
        and isinstance(decoded["held"], str)
        and isinstance(decoded["token"], str)
    ):
        return HeldRetry(decoded["held"], decoded["token"])
    if set(decoded) == {"admit"} and isinstance(decoded["admit"], str):
        return AdmitNudge(decoded["admit"][:ADMIT_WHY_CHARS])
    return QueuedRequest(decoded, message_id, sender)
