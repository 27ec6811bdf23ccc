"""Fetching a finished song's audio, wherever the API put it, straight into the songs bucket.

The audio is either a link (downloaded as a stream) or hex in the status answer
(decoded piece by piece); both are streamed into S3, never held whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api_answers import AudioSource
from .data.rows import Row
from .errors import AudioGone
from .song_store import SavedSong, hex_chunks, song_key, stream_to_s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from .music_api import MusicApiClient

DOWNLOAD_CHUNK = 1024 * 1024
# Answers that say the link no longer works: the song cannot be had any more.
GONE_STATUSES = (401, 403, 404, 410)
_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/flac": "flac",
}


def save_song(
    api: MusicApiClient, s3: S3Client, bucket: str, row: Row, audio: AudioSource
) -> SavedSong:
    """Store the job's song under its deterministic key; AudioGone if it cannot be had.

    Network and S3 errors are raised as they are: the caller tries again later.
    """
    assert row.task_id is not None
    metadata = {
        "job-id": row.job_id,
        "task-id": row.task_id,
        "model": row.model or "",
        "source": row.source,
    }
    if audio.hex_data is not None:
        try:
            return stream_to_s3(
                s3,
                bucket,
                song_key(row.source_name, row.task_id),
                hex_chunks(audio.hex_data),
                content_type="audio/mpeg",
                metadata=metadata,
            )
        except ValueError as exc:
            raise AudioGone(f"the API returned audio that could not be decoded: {exc}") from None
    assert audio.url is not None
    with api.open_audio(audio.url) as response:
        if response.status_code in GONE_STATUSES:
            raise AudioGone(
                f"the song's download link no longer works (HTTP {response.status_code}); "
                "it may have expired"
            )
        response.raise_for_status()
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not content_type.startswith("audio/"):
            content_type = "audio/mpeg"
        return stream_to_s3(
            s3,
            bucket,
            song_key(row.source_name, row.task_id, _EXTENSIONS.get(content_type, "mp3")),
            response.iter_bytes(chunk_size=DOWNLOAD_CHUNK),
            content_type=content_type,
            metadata=metadata,
        )
