"""Reading the README and the docs pages as the tests that keep them true need them."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
WALKTHROUGH_MARK = "<!-- tests/e2e/test_readme.py runs this block"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#+ (.+)$", re.M)
# A command as typed: at a line's start (after an optional prompt) or inside `$(…)`.
_COMMAND = re.compile(r"(?:^\$?\s*|\$\()lyrics-to-song ([^)\n#|>]*)", re.M)


@dataclass(frozen=True)
class Link:
    page: Path
    target: Path
    anchor: str | None


def code_blocks(text: str) -> Iterator[str]:
    for match in _FENCE.finditer(text):
        yield match.group(1)


def readme_webhook_examples() -> tuple[str, str]:
    """The two Python blocks of docs/webhooks.md's receiver: the check, and a whole one."""
    page = (ROOT / "docs" / "webhooks.md").read_text()
    section = page.split("## A receiver in a few lines", 1)[1].split("\n## ", 1)[0]
    check, receiver = code_blocks(section)
    return check, receiver


def walkthrough(text: str, which: int = 0) -> str:
    """A block the README marks as run by the tests: the first, or the `which`-th."""
    start = -1
    for _ in range(which + 1):
        start = text.index(WALKTHROUGH_MARK, start + 1)
    return next(code_blocks(text[start:]))


def commands(text: str, sample_job: str) -> Iterator[list[str]]:
    """Every `lyrics-to-song …` typed in a code block, as arguments (shell variables and
    placeholders replaced by a sample job id)."""
    for block in code_blocks(text):
        yield from typed(block, sample_job)


def typed(block: str, sample_job: str) -> Iterator[list[str]]:
    """The `lyrics-to-song …` commands of one code block (a line ending in `\\` goes on)."""
    for match in _COMMAND.finditer(block.replace("\\\n", " ")):
        line = re.sub(r'"?\$\w+"?', sample_job, match.group(1))
        yield shlex.split(line)


def make_targets(text: str) -> set[str]:
    """The targets of `make …` in code: blocks and `inline` spans."""
    code = [*code_blocks(text), *re.findall(r"`([^`\n]+)`", _outside_code(text))]
    return {target for piece in code for target in re.findall(r"\bmake ([a-z][a-z-]*)", piece)}


def links(page: Path) -> Iterator[Link]:
    for match in _LINK.finditer(page.read_text()):
        href = match.group(1)
        if re.match(r"[a-z]+:", href):
            continue  # https:, mailto:
        path, _, anchor = href.partition("#")
        yield Link(page, (page.parent / path).resolve() if path else page, anchor or None)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    return {_slug(title) for title in _HEADING.findall(_outside_code(page.read_text()))}


def _slug(title: str) -> str:
    title = title.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def _outside_code(text: str) -> str:
    return _FENCE.sub("", text)
