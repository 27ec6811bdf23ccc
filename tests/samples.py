"""Sample outputs in the README and docs pages, checked against what the real command
prints, so that none can drift.

A sample is the fenced block after a `<!-- sample: NAME -->` line. Its lines must appear
in the command's output in order (other lines may come between); before comparing, both
sides lose what differs from run to run (times, ports, ids), runs of a repeated line
count once, and a sample line ending in `...` or `…` matches any line it begins.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SAMPLE_MARK = re.compile(r"^<!-- sample: ([\w .-]+?) -->\n```[^\n]*\n(.*?)^```", re.M | re.S)

# What differs from run to run, and what it reads as once compared.
_VARYING = [
    (re.compile(r"\[\d\d:\d\d:\d\d\]"), "[hh:mm:ss]"),
    (re.compile(r"\[ *\d+ s\]"), "[n s]"),
    (re.compile(r"127\.0\.0\.1:(\d+|<port>)"), "127.0.0.1:<port>"),
    (re.compile(r"job-[0-9a-f]{32}|job-[0-9a-f]{1,31}…"), "job-<id>"),
    (re.compile(r"n[0-9a-f]{12,16}_minimax"), "<task>_minimax"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<time>"),
    (re.compile(r"\d{4}-\d\d-\d\d \(UTC\)"), "<day> (UTC)"),
    (re.compile(r"at \d\d:\d\d:\d\d UTC"), "at hh:mm:ss UTC"),
    (re.compile(r"usually ready \d+-\d+ s"), "usually ready <n>-<n> s"),
    (re.compile(r"\d+(\.\d+)? s after"), "<n> s after"),
    (re.compile(r"\d+ checks? so far\); \d+ s in"), "<n> checks so far); <n> s in"),
    (re.compile(r": (in \d+-\d+ s|within \d+ s)$"), ": <when>"),
    (re.compile(r"\(\d+ bytes\)"), "(<n> bytes)"),
    (re.compile(r"\(\d+ kB, \d+ s\)"), "(<n> kB, <n> s)"),
]
_NUMBER = re.compile(r"\d+(\.\d+)?")


def sample(page: Path, name: str) -> str:
    """The sample block named `name` on the page."""
    for match in SAMPLE_MARK.finditer(page.read_text()):
        if match.group(1) == name:
            return match.group(2)
    raise LookupError(f"{page.name} has no sample named {name!r}")


def sample_names(text: str) -> list[str]:
    return [match.group(1) for match in SAMPLE_MARK.finditer(text)]


def _normal(line: str, numbers: bool) -> str:
    for pattern, replacement in _VARYING:
        line = pattern.sub(replacement, line)
    if numbers:  # a table's figures: its columns and rows are what is compared
        line = _NUMBER.sub("N", line)
    return " ".join(line.split())


def _lines(text: str, numbers: bool) -> list[str]:
    lines: list[str] = []
    for raw in text.splitlines():
        line = _normal(raw, numbers)
        if line and (not lines or lines[-1] != line):
            lines.append(line)
    return lines


def _matches(sample_line: str, line: str) -> bool:
    for ellipsis in ("...", "…"):
        if sample_line.endswith(ellipsis):
            return line.startswith(sample_line.removesuffix(ellipsis).rstrip())
    return line == sample_line


def missing_lines(sample_text: str, output: str, *, numbers: bool = False) -> list[str]:
    """The sample's lines not found in the output, in order (empty: the sample holds).
    With `numbers`, every figure counts as any other (a table of other jobs' sums)."""
    found = _lines(output, numbers)
    missing = []
    at = 0
    for wanted in _lines(sample_text, numbers):
        hit = next((i for i in range(at, len(found)) if _matches(wanted, found[i])), None)
        if hit is None:
            missing.append(wanted)
        else:
            at = hit + 1
    return missing


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key of a JSON value, as dotted paths (a `"...": "..."` key stands for the
    keys a sample leaves out, and is not one)."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "...":
                continue
            path = f"{prefix}{key}"
            paths.add(path)
            paths |= key_paths(inner, f"{path}.")
    return paths


def json_sample(page: Path, name: str) -> Any:
    """A JSON sample, read as JSON."""
    return json.loads(sample(page, name))
