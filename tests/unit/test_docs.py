"""The README and the docs pages say only what is so: commands that parse, targets and
links that exist, tables that match the code (the walkthrough runs in tests/e2e)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_cloud.emulator_faults import FAULT_SWITCHES
from lyrics_cli.main import LOCAL_TOOLS
from lyrics_cli.parser import build_parser
from tests.docs_text import (
    PAGES,
    README,
    ROOT,
    anchors,
    commands,
    links,
    make_targets,
    readme_webhook_examples,
    typed,
    walkthrough,
)
from tests.samples import SAMPLE_MARK, sample_names

SAMPLE_JOB = "job-7ca2585e52e96eb810a5d7898114a7d2"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_in_the_docs_is_one_the_command_line_takes(page: Path) -> None:
    text = page.read_text()
    for argv in commands(text, SAMPLE_JOB):
        if argv and argv[0] in LOCAL_TOOLS:
            continue  # handed to the local stack's own parser, tested with it
        try:
            build_parser().parse_args(argv)
        except SystemExit as refused:
            pytest.fail(f"{page}: `lyrics-to-song {' '.join(argv)}` does not parse ({refused})")


def test_the_readme_shows_the_commands_a_new_user_needs() -> None:
    typed = list(commands(README.read_text(), SAMPLE_JOB))
    used = {next(word for word in argv if not word.startswith("-")) for argv in typed}
    assert {"submit", "wait", "fetch", "list", "resubmit"} <= used


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for page in PAGES:
        missing = make_targets(page.read_text()) - targets
        assert not missing, f"{page.name} names make targets that do not exist: {missing}"


def test_every_link_between_the_pages_resolves() -> None:
    checked = 0
    for page in PAGES:
        for link in links(page):
            rel = f"{page.name} -> {link.target.relative_to(ROOT)}#{link.anchor or ''}"
            assert link.target.exists(), f"{rel}: no such file"
            if link.anchor and link.target.suffix == ".md":
                assert link.anchor in anchors(link.target), f"{rel}: no such heading"
            checked += 1
    assert checked > 40


def test_the_walkthrough_is_local_only() -> None:
    block = list(typed(walkthrough(README.read_text()), SAMPLE_JOB))
    assert len(block) >= 6
    assert all(argv[0] == "--local" for argv in block), "the walkthrough never needs AWS"


def test_the_parameter_table_lists_every_template_parameter() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    page = (ROOT / "docs" / "configuration.md").read_text()
    section = page.split("## Template parameters", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M))
    assert set(listed) == set(template["Parameters"])


def test_the_emulator_page_lists_every_fault_switch_with_its_type() -> None:
    page = (ROOT / "docs" / "emulator.md").read_text()
    section = page.split("## Fault switches", 1)[1]
    listed = dict(re.findall(r"^\| `(\w+)` \| (\w+) \|", section, re.M))
    assert listed == FAULT_SWITCHES


def test_the_readme_check_verifies_what_the_stack_signs() -> None:
    from lyrics_to_song.webhooks.signing import signed_headers, tenant_secret

    namespace: dict[str, Any] = {}
    exec(readme_webhook_examples()[0], namespace)  # noqa: S102 - the README's own example
    verify = namespace["verify"]
    secret = tenant_secret("c3RhY2stc2VjcmV0LWJ5dGVz", "team-a")
    body = b'{"notice_id": "job-1_1", "status": "COMPLETED"}'
    headers = signed_headers([secret], "job-1_1", int(time.time()), body)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body.replace(b"COMPLETED", b"FAILED"))
    assert not verify(tenant_secret("c3RhY2stc2VjcmV0LWJ5dGVz", "team-b"), headers, body)
    assert not verify(secret, {**headers, "webhook-id": "job-2_1"}, body), "the id is signed"
    stale = signed_headers([secret], "job-1_1", int(time.time()) - 600, body)
    assert not verify(secret, stale, body), "an old delivery is refused as a replay"
    assert not verify(secret, {}, body), "a request without the headers is refused"
    assert not verify(secret, {**headers, "webhook-timestamp": "soon"}, body)


# Blocks without a language that are drawings or figures, not a command's output.
FIGURES = (" lyric file ─►", "functions/lyrics_to_song/", "| what ")


def test_every_sample_output_is_checked_against_the_real_command() -> None:
    """A block of output carries a `sample:` mark, and a test compares it with what the
    command prints (tests/samples.py); a mark no test reads would be a promise unkept."""
    readers = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for page in PAGES:
        text = page.read_text()
        names = sample_names(text)
        for name in names:
            assert re.search(rf"sample\(\w+, \"{re.escape(name)}\"\)", readers), (page, name)
        marked = [m.group(2) for m in SAMPLE_MARK.finditer(text)]
        for match in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.M | re.S):
            language, block = match.groups()
            if not language and not block.startswith(FIGURES):
                assert block in marked, f"{page.name}: output not checked: {block[:60]!r}"


def test_every_metric_the_functions_count_is_listed_in_the_configuration_page() -> None:
    counted: set[str] = set()
    for source in (ROOT / "functions" / "lyrics_to_song").rglob("*.py"):
        counted |= set(re.findall(r"\bcount\(\s*\"([A-Za-z]+)\"", source.read_text()))
    assert len(counted) > 20, "the functions' metrics were found"
    listed = set(re.findall(r"`([A-Za-z]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    assert sorted(counted - listed) == []
