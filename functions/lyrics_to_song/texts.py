"""Texts that leave the stack (a row's error, a notice, a log line): without URL queries,
and bounded, whatever built them (an API's failure message, a request's echoed value)."""

from __future__ import annotations

import re

# A job's error as its row keeps it and every notice carries it: far below SNS's 256 KB.
MAX_ERROR_CHARS = 1000
_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s#'\"<>]*")


def without_queries(text: str) -> str:
    """The text with every URL's query cut (`?…`): signed links and callback tokens
    stay out of errors, rows, notices and log lines."""
    return _QUERY.sub(r"\1?…", text)


def clipped(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """At most `limit` characters, saying how long it was when it was longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters, clipped)"


def kept_error(error: str | None) -> str | None:
    """A job's error as it is kept and announced: queries cut, then clipped."""
    return None if error is None else clipped(without_queries(error))
