"""Metrics and tracing switches."""

from __future__ import annotations

import json

import pytest

from lyrics_to_song import observability


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
