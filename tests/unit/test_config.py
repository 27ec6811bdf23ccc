from __future__ import annotations

import re

import pytest

from lyrics_to_song.config import load_settings, load_webhook_settings
from lyrics_to_song.data.rows import Price
from lyrics_to_song.errors import ConfigError
from lyrics_to_song.tenants import TenantPolicy

BASE = {
    "TASKS_TABLE_NAME": "tasks",
    "SPENDING_TABLE_NAME": "spending",
    "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    "AUDIO_BUCKET_NAME": "songs",
    "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic",
    "MUSIC_API_KEY": "aio_local",
}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.api_base_url == "https://apiin.one"
    assert settings.model == "minimax-music"
    assert settings.max_task_age_seconds == 1800
    assert settings.api_key_secret_arn is None
    assert settings.max_songs_per_day == 200
    assert settings.max_songs_in_flight == 20  # MiniMax runs 20 tasks at once per account
    assert settings.price == Price(30, 0.3)  # API in One: 30 credits of $0.01
    assert settings.tenant_from_key is False, "any key works unless the owner says otherwise"


def test_the_price_and_the_tenant_rule_are_read() -> None:
    env = {**BASE, "CREDITS_PER_SONG": "25", "USD_PER_CREDIT": "0.012", "TENANT_FROM_KEY": "prefix"}
    settings = load_settings(env)
    assert settings.price == Price(25, 0.3)
    assert settings.tenant_from_key is True
    assert settings.tenant_policy is TenantPolicy.BOUND, "producers are bound unless told"
    assert load_settings({**BASE, "TENANT_POLICY": "Open"}).tenant_policy is TenantPolicy.OPEN


@pytest.mark.parametrize(
    "name",
    [
        "TASKS_TABLE_NAME",
        "SPENDING_TABLE_NAME",
        "JOBS_QUEUE_URL",
        "AUDIO_BUCKET_NAME",
        "NOTIFY_TOPIC_ARN",
    ],
)
def test_a_missing_variable_is_named(name: str) -> None:
    env = {k: v for k, v in BASE.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MUSIC_API_BASE_URL", "apiin.one", "MUSIC_API_BASE_URL must be an http(s) URL"),
        ("NOTIFY_TOPIC_ARN", "my-topic", "NOTIFY_TOPIC_ARN must be an ARN"),
        ("MAX_TASK_AGE_SECONDS", "soon", "MAX_TASK_AGE_SECONDS must be a whole number, got 'soon'"),
        ("LYRICS_MAX_BYTES", "10", "LYRICS_MAX_BYTES must be between 1024 and 1048576, got 10"),
        ("MUSIC_API_TIMEOUT_SECONDS", "60", "MUSIC_API_TIMEOUT_SECONDS must be between 1 and 30"),
        ("MAX_SONGS_IN_FLIGHT", "0", "MAX_SONGS_IN_FLIGHT must be between 1 and 1000, got 0"),
        ("MUSIC_API_BASE_URL", "http://apiin.one", "MUSIC_API_BASE_URL must be https"),
        ("MUSIC_API_BASE_URL", "http://10.0.0.5:8787", "MUSIC_API_BASE_URL must be https"),
        ("AUDIO_HOSTS", "https://cdn.example.com", "AUDIO_HOSTS must list host names"),
        ("MAX_SONG_BYTES", "999999999", "MAX_SONG_BYTES must be between"),
        ("DOWNLOAD_DEADLINE_SECONDS", "0", "DOWNLOAD_DEADLINE_SECONDS must be between 5"),
        ("CREDITS_PER_SONG", "0", "CREDITS_PER_SONG must be between 1 and 1000000"),
        ("USD_PER_CREDIT", "a cent", "USD_PER_CREDIT must be a number, got 'a cent'"),
        ("USD_PER_CREDIT", "500", "USD_PER_CREDIT must be between 0 and 100"),
        ("TENANT_FROM_KEY", "folder", "TENANT_FROM_KEY must be one of none, prefix"),
        ("TENANT_POLICY", "trusted", "TENANT_POLICY must be one of open, bound, got 'trusted'"),
    ],
)
def test_a_malformed_variable_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, name: value})
    assert message in str(caught.value)


def test_a_key_source_is_required() -> None:
    env = {k: v for k, v in BASE.items() if k != "MUSIC_API_KEY"}
    with pytest.raises(ConfigError, match="MUSIC_API_KEY_SECRET_ARN"):
        load_settings(env)
    assert (
        load_settings({**env, "MUSIC_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:x"}).api_key
        is None
    )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:1"]
)
def test_plain_http_is_for_an_emulator_on_loopback_only(url: str) -> None:
    assert load_settings({**BASE, "MUSIC_API_BASE_URL": url}).api_base_url == url


def test_audio_hosts_are_read_as_a_list() -> None:
    settings = load_settings({**BASE, "AUDIO_HOSTS": " CDN.example.com, files.example.net "})
    assert settings.audio_hosts == ("cdn.example.com", "files.example.net")
    assert load_settings(BASE).audio_hosts == ()


WEBHOOK_BASE = {
    "TASKS_TABLE_NAME": "tasks",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/webhooks",
    "WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:signing",
}


def test_the_webhook_function_reads_its_own_few_variables() -> None:
    settings = load_webhook_settings(WEBHOOK_BASE)
    assert settings.retry_window_seconds == 3 * 86400, "three days of retries"
    assert (settings.timeout_seconds, settings.first_retry_seconds) == (10, 30)
    assert settings.callback_rules.local is False, "on AWS: https and public addresses only"
    local = load_webhook_settings({**WEBHOOK_BASE, "MUSIC_API_BASE_URL": "http://127.0.0.1:1"})
    assert local.callback_rules.local is True
    hosts = load_webhook_settings({**WEBHOOK_BASE, "CALLBACK_HOSTS": "Hooks.Example.com"})
    assert hosts.callback_rules.hosts == frozenset({"hooks.example.com"})


@pytest.mark.parametrize(
    ("schedule", "stale"),
    [("", 420), ("rate(1 minute)", 420), ("rate(5 minutes)", 900), ("rate(2 hours)", 14700)],
)
def test_heartbeats_stop_after_two_poll_runs_missed_and_five_minutes(
    schedule: str, stale: int
) -> None:
    settings = load_webhook_settings({**WEBHOOK_BASE, "POLL_SCHEDULE": schedule})
    assert settings.heartbeat_stale_seconds == stale


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"WEBHOOK_SECRET_ARN": ""}, "WEBHOOK_SECRET_ARN (deployed) or WEBHOOK_SECRET"),
        ({"WEBHOOK_QUEUE_URL": ""}, "WEBHOOK_QUEUE_URL is required"),
        ({"WEBHOOK_TIMEOUT_SECONDS": "60"}, "between 1 and 30"),
        ({"WEBHOOK_RETRY_SECONDS": "5"}, "between 10 and 604800"),
        ({"CALLBACK_HOSTS": "https://hooks.example.com"}, "no scheme, port or path"),
        ({"POLL_SCHEDULE": "rate(0 minutes)"}, "POLL_SCHEDULE must be rate(N minutes)"),
        ({"POLL_SCHEDULE": "cron(0 * * * ? *)"}, "got 'cron(0 * * * ? *)'"),
    ],
)
def test_a_webhook_setting_that_cannot_work_is_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_webhook_settings({**WEBHOOK_BASE, **change})
