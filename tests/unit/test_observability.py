"""Metrics and tracing switches, and what log lines and texts may hold."""

from __future__ import annotations

import json
import logging

import pytest

from lyrics_to_song import observability
from lyrics_to_song.texts import without_queries


def test_disabled_metrics_are_neither_kept_nor_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    observability.metrics.clear_metrics()
    for _ in range(150):  # past the 100 values at which Powertools prints on its own
        observability.count("TasksDue")
        observability.seconds("TimeToSong", 1.5)
    assert observability.metrics.metric_set == {}
    assert capsys.readouterr().out == ""


def test_enabled_metrics_are_kept_for_the_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.metrics.clear_metrics()
    observability.count("SongsSubmitted", 2)
    assert observability.metrics.metric_set["SongsSubmitted"]["Value"] == [2.0]
    observability.metrics.clear_metrics()


def test_credits_spent_names_its_tenant_as_a_property_not_a_dimension(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.credits_spent(30, "team-a")
    emf = json.loads(capsys.readouterr().out)
    assert emf["CreditsSpent"] == [30.0]
    assert emf["tenant"] == "team-a"
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "LyricsToSong"
    assert directive["Dimensions"] == [["service"]], "one metric whatever the tenants"
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    observability.credits_spent(30, "team-a")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("value", "on"), [("true", False), ("1", False), ("false", True), ("", True)]
)
def test_detailed_tracing_follows_the_powertools_switch(value: str, on: bool) -> None:
    assert observability.detailed_tracing({"POWERTOOLS_TRACE_DISABLED": value}) is on


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Server error '500' for url 'https://cdn.example/a.mp3?X-Amz-Signature=abc'",
            "Server error '500' for url 'https://cdn.example/a.mp3?…'",
        ),
        (
            "POST https://hooks.example/h?token=s3cr3t#top failed",
            "POST https://hooks.example/h?…#top failed",
        ),
        ("no link here? none", "no link here? none"),
        (
            "http://127.0.0.1:8080/x and https://a/b?c=d e",
            "http://127.0.0.1:8080/x and https://a/b?… e",
        ),
    ],
)
def test_urls_lose_their_queries_in_texts(text: str, shown: str) -> None:
    assert without_queries(text) == shown


def test_the_http_clients_never_log_a_url_at_the_functions_levels() -> None:
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
