"""How jobs are shown: a dict for `--json`, lines of text for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lyrics_to_song.data.rows import Row


def when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def size_text(size: int | None) -> str:
    if size is None:
        return "size unknown"
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1e6:.1f} MB"


def job_dict(row: Row, songs_bucket: str) -> dict[str, Any]:
    """The job as `--json` prints it (README: The command line)."""
    return {
        "job_id": row.job_id,
        "state": row.state.value,
        "ended": row.state.terminal,
        "source": row.source,
        "task_id": row.task_id,
        "model": row.model,
        "created_at": when(row.created_at),
        "submitted_at": when(row.submitted_at),
        "finished_at": when(row.finished_at),
        "polls": row.polls,
        "error": row.error,
        "song": (
            {
                "s3_uri": f"s3://{songs_bucket}/{row.song_key}",
                "bytes": row.song_bytes,
                "duration_seconds": row.duration_seconds,
            }
            if row.song_key
            else None
        ),
        "notified": row.notified,
        "resubmits": row.resubmits,
    }


def describe(row: Row, songs_bucket: str) -> str:
    """A few aligned lines about one job."""
    lines = [
        ("job", row.job_id),
        ("state", row.state.value),
        ("source", row.source),
        ("task", row.task_id),
        ("created", when(row.created_at)),
        ("submitted", when(row.submitted_at)),
        ("finished", when(row.finished_at)),
        ("error", row.error),
    ]
    if row.song_key:
        size = size_text(row.song_bytes)
        length = f", {row.duration_seconds:.0f} s" if row.duration_seconds else ""
        lines.append(("song", f"s3://{songs_bucket}/{row.song_key} ({size}{length})"))
    if row.resubmits:
        lines.append(("resubmits", str(row.resubmits)))
    return "\n".join(f"{name:<10} {value}" for name, value in lines if value)


def table(rows: list[Row]) -> str:
    """One line per job, newest first."""
    if not rows:
        return "no jobs"
    header = f"{'JOB':<36}  {'STATE':<10}  {'CREATED':<20}  SOURCE / ERROR"
    lines = [header]
    for row in rows:
        detail = row.error if row.error else row.source
        lines.append(
            f"{row.job_id:<36}  {row.state.value:<10}  {when(row.created_at):<20}  {detail}"
        )
    return "\n".join(lines)


def progress(row: Row | None, elapsed: float) -> str:
    """One line for `wait` each time the job moves on."""
    if row is None:
        what = "queued: waiting for the submit function to take it"
    elif row.state.terminal:
        what = row.state.value + (f": {row.error}" if row.error else "")
    elif row.task_id:
        what = f"{row.state.value}: the music API is making the song ({row.polls} checks so far)"
    else:
        what = f"{row.state.value}: sending it to the music API"
    return f"[{elapsed:5.0f} s] {what}"
