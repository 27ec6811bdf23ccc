"""Lyric files as users write them: `.txt` (optional front matter) and `.json`.

A `.txt` file may open with a front-matter block that sets request fields:

    ---
    prompt: dreamy synth-pop, female vocals
    bitrate: 128000
    ---
    [Verse]
    ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import InvalidRequest
from .song_request import SongRequest, decode_json, json_type, parse_request

LYRIC_FILE_SUFFIXES = (".txt", ".json")


def too_large(name: str, cap: int) -> str:
    """Why a lyric file over the size cap is refused: the one wording of the function and
    the command line (its lyrics have a limit of their own: MAX_LYRICS_CHARS)."""
    return f"{name} is larger than {cap} bytes, the most a lyric file may be (LYRICS_MAX_BYTES)"


def not_a_lyric_file(name: str) -> str | None:
    """Why a file of this name is not a lyric file (the one wording the function, the
    command line and the demo give); None when it is one."""
    if name.lower().endswith(LYRIC_FILE_SUFFIXES):
        return None
    return (
        f"{name} is not a lyric file: the name must end in "
        f"{' or '.join(LYRIC_FILE_SUFFIXES)} (in any case)"
    )


FRONT_MATTER_FIELDS = ("prompt", "bitrate", "sample_rate", "model", "callback_url")
_FENCE = "---"


def _decode(name: str, data: bytes) -> str:
    if b"\x00" in data:
        raise InvalidRequest(f"{name} is a binary file, not UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"{name} is not valid UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    if not text.strip():
        raise InvalidRequest(f"{name} is empty")
    return text


def _closing_fence(name: str, lines: list[str]) -> int | None:
    """The index of the line that closes the front matter; None when there is none."""
    if not lines or lines[0].strip() != _FENCE:
        return None
    try:
        return next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == _FENCE)
    except StopIteration:
        raise InvalidRequest(
            f"{name}: the front matter opened with '---' on line 1 is never closed by a '---' line"
        ) from None


def _front_matter(name: str, text: str) -> tuple[dict[str, Any], str]:
    """Split a leading `---` block off the text; return its fields and the rest."""
    lines = text.splitlines()
    end = _closing_fence(name, lines)
    if end is None:
        return {}, text
    fields: dict[str, Any] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise InvalidRequest(f"{name}: front matter line {number} is not 'key: value'")
        if key not in FRONT_MATTER_FIELDS:
            raise InvalidRequest(
                f"{name}: front matter line {number} sets unknown field '{key}'; "
                f"allowed: {', '.join(FRONT_MATTER_FIELDS)}"
            )
        if key in fields:
            raise InvalidRequest(f"{name}: front matter sets '{key}' twice")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key in ("bitrate", "sample_rate"):
            try:
                fields[key] = int(value)
            except ValueError:
                raise InvalidRequest(
                    f"{name}: front matter '{key}' must be a whole number, got {value!r}"
                ) from None
        else:
            fields[key] = value
    return fields, "\n".join(lines[end + 1 :])


def parse_lyric_file(
    name: str,
    data: bytes,
    *,
    metadata_prompt: str | None,
    default_prompt: str,
    default_model: str,
) -> SongRequest:
    """Turn a lyric file's bytes into a request; `name` is used for the suffix and in errors.

    The prompt comes from front matter, else the object's `prompt` user metadata,
    else the configured default.
    """
    lowered = name.lower()
    text = _decode(name, data)
    fallback_prompt = (
        metadata_prompt.strip() if metadata_prompt and metadata_prompt.strip() else default_prompt
    )
    if lowered.endswith(".json"):
        try:
            body: Any = decode_json(text)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{name} is not valid JSON: {exc}") from None
        if not isinstance(body, Mapping):
            raise InvalidRequest(f"{name} must hold a JSON object, got {json_type(body)}")
        return parse_request(body, default_model, fallback_prompt)
    if lowered.endswith(".txt"):
        fields, lyrics = _front_matter(name, text)
        if not lyrics.strip():
            raise InvalidRequest(f"{name} has front matter but no lyrics after it")
        return parse_request({**fields, "lyrics": lyrics}, default_model, fallback_prompt)
    raise InvalidRequest(not_a_lyric_file(name) or name)


def with_fields(name: str, data: bytes, fields: Mapping[str, Any]) -> bytes:
    """The lyric file with request fields set: in the front matter of a `.txt` (a block
    is added when there is none), as keys of a `.json`. A field the file already sets to
    another value is an InvalidRequest, so neither is silently dropped."""
    text = _decode(name, data)
    if name.lower().endswith(".json"):
        body = decode_json(text)
        if not isinstance(body, dict):
            raise InvalidRequest(f"{name} must hold a JSON object, got {json_type(body)}")
        _check_agreement(name, body, fields)
        return json.dumps({**body, **fields}, ensure_ascii=False, indent=2).encode()
    current, _ = _front_matter(name, text)
    _check_agreement(name, current, fields)
    added = [_front_matter_line(name, k, v) for k, v in fields.items() if k not in current]
    lines = text.splitlines(keepends=True)
    end = _closing_fence(name, [line.rstrip("\r\n") for line in lines])
    if end is None:
        return "".join([f"{_FENCE}\n", *added, f"{_FENCE}\n", *lines]).encode()
    return "".join([*lines[:end], *added, *lines[end:]]).encode()


def _check_agreement(name: str, current: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if key in current and current[key] != value:
            raise InvalidRequest(
                f"{name} sets {key} to {current[key]!r} already; {value!r} would contradict it"
            )


def _front_matter_line(name: str, key: str, value: Any) -> str:
    if key not in FRONT_MATTER_FIELDS:
        raise InvalidRequest(f"{name}: front matter cannot set '{key}'")
    text = str(value)
    if "\n" in text or "\r" in text:
        raise InvalidRequest(f"{name}: front matter '{key}' must fit on one line")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = f'"{text}"'  # the reader strips one pair of quotes
    return f"{key}: {text}\n"
