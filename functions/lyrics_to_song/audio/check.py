"""Is a downloaded file a song? Read with mutagen: MP3 frames, WAV and FLAC headers.

A job is COMPLETED only when its saved bytes are audio of the kind the answer declared
(its content type; hex audio is MP3). The duration, sample rate and bitrate are measured
from the file, for the sidecar and the notification (docs/notifications.md: The sidecar).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mutagen import MutagenError
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.wave import WAVE

from ..errors import NotASong

# Kind -> (content type it is stored with, its reader).
KINDS: dict[str, tuple[str, Any]] = {
    "mp3": ("audio/mpeg", MP3),
    "wav": ("audio/wav", WAVE),
    "flac": ("audio/flac", FLAC),
}
# Content types that declare one of the kinds.
DECLARED = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mpeg3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}
# Content types that declare nothing: the bytes alone decide among the kinds.
UNDECLARED = ("", "application/octet-stream", "binary/octet-stream")


@dataclass(frozen=True)
class AudioInfo:
    kind: str
    content_type: str
    duration_seconds: float
    sample_rate: int
    bitrate: int | None


def declared_kind(content_type: str) -> str | None:
    """The kind a content type declares; None when it declares none; NotASong when it
    declares something that is not a song (text/html, application/json, …)."""
    if content_type in DECLARED:
        return DECLARED[content_type]
    if content_type in UNDECLARED:
        return None
    raise NotASong(f"the download is {content_type}, not audio")


def inspect_audio(path: Path, content_type: str) -> AudioInfo:
    """What the file is, or NotASong saying what came back instead."""
    kinds = [k] if (k := declared_kind(content_type)) else list(KINDS)
    problems = []
    for kind in kinds:
        stored_as, reader = KINDS[kind]
        try:
            info = reader(path).info
        except MutagenError as exc:
            problems.append(f"not {kind} ({exc})")
            continue
        except Exception as exc:  # any other refusal of untrusted bytes means the same
            problems.append(f"not {kind} ({type(exc).__name__}: {exc})")
            continue
        # An MP3 reader syncs to the first thing that looks like a frame; `sketchy` says
        # the frames did not start the file or did not follow one another.
        if getattr(info, "sketchy", False) or not info.length > 0:
            problems.append(f"not {kind} (no run of audio frames)")
            continue
        bitrate = getattr(info, "bitrate", None)
        return AudioInfo(
            kind=kind,
            content_type=stored_as,
            duration_seconds=round(float(info.length), 3),
            sample_rate=int(info.sample_rate),
            bitrate=int(bitrate) if bitrate else None,
        )
    raise NotASong(f"the download is {describe(path, content_type)}: {'; '.join(problems)}")


def describe(path: Path, content_type: str) -> str:
    """A short, safe account of what a file that is not audio holds."""
    with path.open("rb") as file:
        head = file.read(64)
    size = path.stat().st_size
    start = head.lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html")):
        what = "an HTML page"
    elif start.startswith((b"{", b"[")):
        what = "JSON"
    elif start.startswith(b"<"):
        what = "XML or markup"
    elif not head:
        what = "empty"
    else:
        what = "data"
    shown = head.decode("ascii", "replace").replace("\ufffd", "?")
    printable = "".join(c if c.isprintable() else "?" for c in shown)[:40]
    label = content_type or "no content type"
    return f"{what} ({label}, {size} bytes, starting {printable!r})"
