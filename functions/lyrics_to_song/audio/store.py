"""Songs into S3: streamed in parts, under a key that a retry overwrites instead of duplicating."""

from __future__ import annotations

import binascii
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

PART_SIZE = 8 * 1024 * 1024  # S3 wants parts of at least 5 MiB (all but the last)
HEX_CHUNK = 2 * 1024 * 1024
SONGS_PREFIX = "songs/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SavedSong:
    key: str
    size: int
    content_type: str


def song_key(source_name: str, task_id: str, extension: str = "mp3") -> str:
    """`songs/<name>-<task id>.mp3`, both parts reduced to characters safe in any tool."""
    stem = source_name.rsplit("/", 1)[-1]
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe_stem = _UNSAFE.sub("-", ascii_stem).strip("-.")[:80] or "song"
    safe_task = _UNSAFE.sub("-", task_id).strip("-.")[:100] or "task"
    return f"{SONGS_PREFIX}{safe_stem}-{safe_task}.{extension}"


# S3 allows 2 KB of user metadata (names and values); a little is kept spare.
METADATA_BYTES = 2000


def s3_metadata(values: dict[str, str], limit: int = METADATA_BYTES) -> dict[str, str]:
    """S3 user metadata must be ASCII: percent-encode what is not, and shorten the
    longest values (the sidecar keeps them whole) until all of it fits in `limit`."""
    kept = dict(values)

    def encoded() -> dict[str, str]:
        return {k: quote(v, safe=" /:@._-+=,") for k, v in kept.items()}

    meta = encoded()
    while sum(len(k) + len(v) for k, v in meta.items()) > limit:
        longest = max(kept, key=lambda k: len(meta[k]))
        if not kept[longest]:
            break
        kept[longest] = kept[longest][: len(kept[longest]) * 3 // 4]
        meta = encoded()
    return meta


def hex_chunks(hex_data: str, chunk: int = HEX_CHUNK) -> Iterator[bytes]:
    """Decode a hex string piece by piece (never a second whole copy in memory)."""
    if len(hex_data) % 2:
        raise ValueError("hex audio has an odd number of digits")
    for start in range(0, len(hex_data), chunk):
        try:
            yield binascii.unhexlify(hex_data[start : start + chunk])
        except binascii.Error as exc:
            raise ValueError(f"hex audio is not valid hex: {exc}") from None


def file_chunks(file: BinaryIO, size: int) -> Iterator[bytes]:
    while chunk := file.read(size):
        yield chunk


def _parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Group chunks into parts of at least `size` bytes (the last may be smaller).

    Each part is copied once (the join); chunks are never re-sliced.
    """
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            part = b"".join(pending)
            pending.clear()
            held = 0
            yield part
            del part  # not held while the next part is gathered
    if pending:
        yield b"".join(pending)


def stream_to_s3(
    s3: S3Client,
    bucket: str,
    key: str,
    chunks: Iterable[bytes],
    *,
    content_type: str,
    metadata: dict[str, str],
    part_size: int = PART_SIZE,
) -> SavedSong:
    """Upload an iterable of byte chunks, holding about two parts' worth at most.

    A song that fits in one part is a single PUT; a larger one is a multipart upload,
    aborted on any error so no partial object or orphaned parts are left behind. One
    chunk past the first part tells the two apart, so a second part is never read
    ahead.
    """
    source = iter(chunks)
    first = next(_parts(source, part_size), b"")
    after = next(source, None)
    meta = s3_metadata(metadata)
    if after is None:
        s3.put_object(Bucket=bucket, Key=key, Body=first, ContentType=content_type, Metadata=meta)
        return SavedSong(key, len(first), content_type)
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType=content_type, Metadata=meta
    )["UploadId"]

    def send(number: int, body: bytes) -> CompletedPartTypeDef:
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"ETag": answer["ETag"], "PartNumber": number}

    try:
        done = [send(1, first)]
        total = len(first)
        del first  # each part is let go once it is sent
        rest = _parts(itertools.chain([after], source), part_size)
        for number, body in enumerate(rest, start=2):
            done.append(send(number, body))
            total += len(body)
            del body
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return SavedSong(key, total, content_type)


def presigned_url(s3: S3Client, bucket: str, key: str, expires_seconds: int) -> str:
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
    )
