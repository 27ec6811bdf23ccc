"""Fetching a finished song's audio, wherever the API put it, then storing it as a song.

The audio is either a link (downloaded as a stream, from where origins.py allows) or
hex in the status answer (decoded piece by piece). Either way it goes to a temporary file
first, within an overall deadline and a size limit, and is stored in the songs bucket
only once check.py has found it to be a song: nothing else is ever saved as one.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ..api_answers import AudioSource
from ..data.rows import Row
from ..errors import AudioGone, DownloadFailed
from ..http_transport import call_deadline, is_encoded, raw_chunks
from .check import AudioInfo, inspect_audio
from .store import SavedSong, file_chunks, hex_chunks, song_key, stream_to_s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from ..music_api import MusicApiClient

DOWNLOAD_CHUNK = 1024 * 1024
# Answers that say the link no longer works: the song cannot be had any more.
GONE_STATUSES = (401, 403, 404, 410)


@dataclass(frozen=True)
class DownloadLimits:
    """MAX_SONG_BYTES and DOWNLOAD_DEADLINE_SECONDS (docs/configuration.md)."""

    max_bytes: int
    deadline_seconds: float


@dataclass(frozen=True)
class FetchedAudio:
    path: Path
    size: int
    info: AudioInfo


@contextmanager
def fetch_audio(
    api: MusicApiClient,
    audio: AudioSource,
    limits: DownloadLimits,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[FetchedAudio]:
    """The song in a temporary file (removed afterwards), checked to be audio.

    AudioGone when it can never be had; DownloadFailed (NotASong among them) when this
    attempt failed; network errors as httpx raises them.
    """
    deadline = clock() + limits.deadline_seconds
    with tempfile.TemporaryDirectory(prefix="song-") as folder:
        path = Path(folder) / "audio"
        if audio.hex_data is not None:
            try:
                size = _write(path, hex_chunks(audio.hex_data), limits, deadline, clock)
            except ValueError as exc:
                raise AudioGone(
                    f"the API returned audio that could not be decoded: {exc}"
                ) from None
            content_type = "audio/mpeg"  # MiniMax's hex audio is MP3 (docs/music-api.md)
        else:
            assert audio.url is not None
            try:
                size, content_type = _download(
                    api, audio.url, path, limits, deadline=deadline, clock=clock
                )
            except httpx.TimeoutException:
                if clock() < deadline:
                    raise
                raise DownloadFailed(_too_slow(limits, path)) from None
        yield FetchedAudio(path, size, inspect_audio(path, content_type))


def _download(
    api: MusicApiClient,
    url: str,
    path: Path,
    limits: DownloadLimits,
    *,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[int, str]:
    """The linked song into `path`, within the download's deadline (every connection,
    header and read: http_transport.py); its size and declared content type."""
    with (
        call_deadline(limits.deadline_seconds),
        api.open_audio(url, read_timeout=limits.deadline_seconds) as response,
    ):
        if response.status_code in GONE_STATUSES:
            raise AudioGone(
                f"the song's download link no longer works (HTTP {response.status_code});"
                " it may have expired"
            )
        response.raise_for_status()
        content_type = response.headers.get("content-type", "")
        content_type = content_type.split(";")[0].strip().lower()
        declared_size = _declared_size(response.headers.get("content-length"))
        if declared_size > limits.max_bytes:
            raise DownloadFailed(_too_large(limits, declared_size))
        if is_encoded(response):  # never inflated: a few KB can hold gigabytes
            encoding = response.headers["content-encoding"][:40]
            raise DownloadFailed(f"the song came encoded ({encoding}): not read")
        return _write(path, _raw_chunks(response), limits, deadline, clock), content_type


def _raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body as it comes, in pieces of at most DOWNLOAD_CHUNK."""
    for piece in raw_chunks(response):
        for start in range(0, len(piece), DOWNLOAD_CHUNK):
            yield piece[start : start + DOWNLOAD_CHUNK]


def _write(
    path: Path,
    chunks: Iterable[bytes],
    limits: DownloadLimits,
    deadline: float,
    clock: Callable[[], float],
) -> int:
    size = 0
    with path.open("wb") as file:
        for chunk in chunks:
            size += len(chunk)
            if size > limits.max_bytes:
                raise DownloadFailed(_too_large(limits))
            if clock() > deadline:
                raise DownloadFailed(_too_slow(limits, size))
            file.write(chunk)
    return size


def _declared_size(header: str | None) -> int:
    """Content-Length, when it is a number; the limit is checked while reading anyway."""
    try:
        return int(header or 0)
    except ValueError:
        return 0


def _too_slow(limits: DownloadLimits, got: int | Path) -> str:
    """The deadline's reason, with how much had come (`got`: a count, or the file)."""
    size = got if isinstance(got, int) else (got.stat().st_size if got.exists() else 0)
    return (
        f"the download took longer than {limits.deadline_seconds:g} s "
        f"(DOWNLOAD_DEADLINE_SECONDS); {size} bytes had come"
    )


def _too_large(limits: DownloadLimits, size: int | None = None) -> str:
    said = f" ({size} bytes)" if size is not None else ""
    return f"the song is larger than MAX_SONG_BYTES ({limits.max_bytes} bytes){said}"


def store_song(s3: S3Client, bucket: str, row: Row, audio: FetchedAudio) -> SavedSong:
    """Store the checked song under the job's deterministic key (a retry overwrites it)."""
    assert row.task_id is not None
    metadata = {
        "job-id": row.job_id,
        "task-id": row.task_id,
        "model": row.model or "",
        "source": row.source,
    }
    with audio.path.open("rb") as file:
        return stream_to_s3(
            s3,
            bucket,
            song_key(row.source_name, row.task_id, audio.info.kind),
            file_chunks(file, DOWNLOAD_CHUNK),
            content_type=audio.info.content_type,
            metadata=metadata,
        )
