"""The JSON sidecar saved next to each song: what was asked, what came back, and when."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..data.rows import Row
from .check import AudioInfo
from .store import SavedSong, s3_metadata

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def sidecar_key(song_key: str) -> str:
    """`songs/x-task.mp3` -> `songs/x-task.json`."""
    return song_key.rsplit(".", 1)[0] + ".json"


# A measured bitrate this far from the asked one is noted (VBR files report an average).
BITRATE_TOLERANCE = 0.1


def sidecar_body(
    row: Row,
    saved: SavedSong,
    measured: AudioInfo,
    *,
    bucket: str,
    saved_at: float,
    duration: float,
) -> dict[str, Any]:
    """`duration` is the song's (the API's, when it reports one); the file's own figures
    are under `measured`, and `differs_from_request` lists where they are not what was
    asked."""
    request: dict[str, Any] = json.loads(row.request_json) if row.request_json else {}
    submitted = row.submitted_at or row.created_at
    return {
        "job_id": row.job_id,
        "task_id": row.task_id,
        "source": row.source,
        "tenant": row.tenant,
        "model": row.model,
        "request": request,
        "cost": row.charge.as_dict(),
        "timings": {
            "created_at": row.created_at,
            "submitted_at": row.submitted_at,
            "saved_at": saved_at,
            "seconds_to_song": round(saved_at - submitted, 3),
            "status_checks": row.polls + 1,
        },
        "audio": {
            "s3_uri": f"s3://{bucket}/{saved.key}",
            "bytes": saved.size,
            "content_type": saved.content_type,
            "duration_seconds": duration,
            "requested_sample_rate": request.get("sample_rate"),
            "requested_bitrate": request.get("bitrate"),
            "measured": {
                "kind": measured.kind,
                "duration_seconds": measured.duration_seconds,
                "sample_rate": measured.sample_rate,
                "bitrate": measured.bitrate,
            },
            "differs_from_request": differences(request, measured),
        },
    }


def differences(request: dict[str, Any], measured: AudioInfo) -> list[str]:
    notes = []
    asked_rate = request.get("sample_rate")
    if asked_rate and asked_rate != measured.sample_rate:
        notes.append(f"sample rate: asked {asked_rate} Hz, got {measured.sample_rate} Hz")
    asked_bitrate = request.get("bitrate")
    got = measured.bitrate
    if asked_bitrate and got and abs(got - asked_bitrate) > BITRATE_TOLERANCE * asked_bitrate:
        notes.append(f"bitrate: asked {asked_bitrate} bit/s, got {got} bit/s")
    return notes


def write_sidecar(s3: S3Client, bucket: str, body: dict[str, Any], song_key: str) -> str:
    key = sidecar_key(song_key)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body, ensure_ascii=False, indent=2).encode(),
        ContentType="application/json",
        Metadata=s3_metadata({"job-id": body["job_id"], "task-id": body["task_id"] or ""}),
    )
    return key
