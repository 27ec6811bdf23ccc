"""Configuration of both functions, read from the environment once per cold start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from .addresses import is_loopback_host
from .check_timing import PRIOR_SECONDS
from .data.rows import Price
from .errors import ConfigError
from .tenants import TenantPolicy
from .webhooks.callbacks import CallbackRules

DEFAULT_API_BASE_URL = "https://apiin.one"
DEFAULT_MODEL = "minimax-music"
DEFAULT_PROMPT = "A warm pop song with clear vocals"
DEFAULT_LYRICS_MAX_BYTES = 64 * 1024
DEFAULT_MAX_RESUBMITS = 3
MIB = 1024 * 1024
# API in One's price of a song (docs/music-api.md, "Rates and times").
DEFAULT_CREDITS_PER_SONG = 30
DEFAULT_USD_PER_CREDIT = 0.01
# How a lyric file's key names its tenant: "none" (any key works; the tenant comes from
# the file's metadata) or "prefix" (the first folder of the key is the tenant's name).
TENANT_RULES = ("none", "prefix")


@dataclass(frozen=True)
class Settings:
    tasks_table_name: str
    spending_table_name: str
    jobs_queue_url: str
    audio_bucket_name: str
    notify_topic_arn: str
    event_bus_name: str
    api_base_url: str
    api_timeout_seconds: int
    api_key_secret_arn: str | None
    api_key: str | None
    model: str
    default_prompt: str
    lyrics_max_bytes: int
    max_task_age_seconds: int
    presign_expires_seconds: int
    submit_lease_seconds: int
    poll_lease_seconds: int
    poll_concurrency: int
    first_poll_delay_seconds: int
    poll_backoff_seconds: int
    terminal_ttl_days: int
    max_songs_per_day: int
    max_songs_in_flight: int
    tenant_songs_per_day: int  # the caps of a tenant without caps of its own
    tenant_songs_in_flight: int
    in_flight_retry_seconds: int
    status_checks_per_minute: int
    poll_watch_seconds: int
    typical_song_seconds: tuple[float, float]
    poll_wake_queue_url: str | None
    audio_hosts: tuple[str, ...]
    lyrics_bucket_name: str | None
    max_resubmits: int
    refusal_webhooks_per_hour: int  # per tenant: webhooks of requests refused unpaid
    max_song_bytes: int
    download_deadline_seconds: float
    price: Price
    tenant_from_key: bool  # a lyric file's first folder names its tenant
    tenant_policy: TenantPolicy  # who may name a tenant
    own_sender: str | None  # the submit function's role id (its own messages are trusted)
    # The queue S3 alone sends the lyrics bucket's notifications to: the one path on which
    # a lyric-file notification is acted on (None: none is, from any queue).
    lyric_files_queue_arn: str | None
    webhook_queue_url: str | None  # None: this stack sends no webhooks
    # Step Functions answers, on a queue of their own (None: a stack of an earlier
    # version, where they share the webhooks queue).
    task_answer_queue_url: str | None
    # The state machines whose tasks may wait for a song (empty: none may).
    callback_state_machines: frozenset[str]
    callback_rules: CallbackRules


@dataclass(frozen=True)
class WebhookSettings:
    """What the webhook function reads (docs/webhooks.md: Delivery)."""

    tasks_table_name: str
    spending_table_name: str | None  # where tenants' secrets' generations are (rotations)
    queue_url: str  # the webhooks queue: a failed attempt's message waits there
    task_answer_queue_url: str | None  # the Step Functions answers' own queue
    secret_arn: str | None  # the signing secret in Secrets Manager (deployed)
    secret: str | None  # the signing secret itself (local runs)
    callback_rules: CallbackRules
    timeout_seconds: float  # for one POST, connecting included
    first_retry_seconds: int  # the first wait after a failed attempt; each later one doubles
    retry_window_seconds: int  # after this long since the ending, a failed attempt is the last
    # A job whose next step is overdue by more than this gets no Step Functions heartbeat.
    heartbeat_stale_seconds: int


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and is not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {name} must be a whole number, got {raw!r}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(
            f"environment variable {name} must be between {low} and {high}, got {value}"
        )
    return value


def _usd(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
    if not 0 <= value <= 100:
        raise ConfigError(f"environment variable {name} must be between 0 and 100 (USD), got {raw}")
    return value


def _tenant_rule(env: Mapping[str, str]) -> bool:
    rule = env.get("TENANT_FROM_KEY", "").strip().lower() or "none"
    if rule not in TENANT_RULES:
        raise ConfigError(
            f"environment variable TENANT_FROM_KEY must be one of {', '.join(TENANT_RULES)}, "
            f"got {rule!r}"
        )
    return rule == "prefix"


def _tenant_policy(env: Mapping[str, str]) -> TenantPolicy:
    raw = env.get("TENANT_POLICY", "").strip().lower() or TenantPolicy.BOUND.value
    try:
        return TenantPolicy(raw)
    except ValueError:
        raise ConfigError(
            "environment variable TENANT_POLICY must be one of "
            f"{', '.join(p.value for p in TenantPolicy)}, got {raw!r}"
        ) from None


def seconds_range(
    env: Mapping[str, str], name: str, default: tuple[float, float]
) -> tuple[float, float]:
    """`LOW-HIGH` in seconds, e.g. `30-90`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    low, _, high = raw.partition("-")
    try:
        bounds = (float(low), float(high))
    except ValueError:
        raise ConfigError(
            f"environment variable {name} must be LOW-HIGH in seconds (like 30-90), got {raw!r}"
        ) from None
    if not 0 < bounds[0] < bounds[1] <= 3600:
        raise ConfigError(
            f"environment variable {name} must have 0 < LOW < HIGH <= 3600, got {raw!r}"
        )
    return bounds


def _api_base_url(env: Mapping[str, str]) -> str:
    base_url = env.get("MUSIC_API_BASE_URL", "").strip() or DEFAULT_API_BASE_URL
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"environment variable MUSIC_API_BASE_URL must be an http(s) URL, got {base_url!r}"
        )
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
        raise ConfigError(
            "environment variable MUSIC_API_BASE_URL must be https (the key would go out in "
            f"clear text; plain http is for an emulator on loopback only), got {base_url!r}"
        )
    return base_url.rstrip("/")


def _secret(
    env: Mapping[str, str], arn_name: str, value_name: str
) -> tuple[str | None, str | None]:
    """A secret's ARN in Secrets Manager (deployed) or its value (local runs): one of them."""
    arn = env.get(arn_name, "").strip() or None
    value = env.get(value_name, "").strip() or None
    if arn is None and value is None:
        raise ConfigError(
            f"environment variable {arn_name} (deployed) or {value_name} "
            "(local runs) is required and neither is set"
        )
    return arn, value


def _callback_rules(env: Mapping[str, str], api_base_url: str) -> CallbackRules:
    """CALLBACK_HOSTS; a local run (the API on loopback) may call receivers on loopback."""
    local = is_loopback_host(urlparse(api_base_url).hostname or "")
    return CallbackRules.of(_hosts(env, "CALLBACK_HOSTS"), local=local)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable; the first problem raises a ConfigError naming it."""
    env = os.environ if env is None else env
    base_url = _api_base_url(env)
    secret_arn, api_key = _secret(env, "MUSIC_API_KEY_SECRET_ARN", "MUSIC_API_KEY")
    topic = _required(env, "NOTIFY_TOPIC_ARN")
    if not topic.startswith("arn:"):
        raise ConfigError(f"environment variable NOTIFY_TOPIC_ARN must be an ARN, got {topic!r}")
    return Settings(
        tasks_table_name=_required(env, "TASKS_TABLE_NAME"),
        spending_table_name=_required(env, "SPENDING_TABLE_NAME"),
        jobs_queue_url=_required(env, "JOBS_QUEUE_URL"),
        audio_bucket_name=_required(env, "AUDIO_BUCKET_NAME"),
        notify_topic_arn=topic,
        event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
        api_base_url=base_url,
        # At most 30: the submit function keeps 40 s for one call when it starts a record.
        api_timeout_seconds=_int(env, "MUSIC_API_TIMEOUT_SECONDS", 30, 1, 30),
        api_key_secret_arn=secret_arn,
        api_key=api_key,
        model=env.get("MUSIC_MODEL", "").strip() or DEFAULT_MODEL,
        default_prompt=env.get("DEFAULT_PROMPT", "").strip() or DEFAULT_PROMPT,
        lyrics_max_bytes=_int(env, "LYRICS_MAX_BYTES", DEFAULT_LYRICS_MAX_BYTES, 1024, 1024 * 1024),
        max_task_age_seconds=_int(env, "MAX_TASK_AGE_SECONDS", 1800, 1, 7 * 24 * 3600),
        presign_expires_seconds=_int(env, "PRESIGN_EXPIRES_SECONDS", 24 * 3600, 60, 7 * 24 * 3600),
        submit_lease_seconds=_int(env, "SUBMIT_LEASE_SECONDS", 120, 10, 3600),
        poll_lease_seconds=_int(env, "POLL_LEASE_SECONDS", 300, 30, 3600),
        poll_concurrency=_int(env, "POLL_CONCURRENCY", 8, 1, 64),
        first_poll_delay_seconds=_int(env, "FIRST_POLL_DELAY_SECONDS", 20, 0, 3600),
        poll_backoff_seconds=_int(env, "POLL_BACKOFF_SECONDS", 15, 1, 3600),
        terminal_ttl_days=_int(env, "TERMINAL_TTL_DAYS", 90, 1, 3650),
        max_songs_per_day=_int(env, "MAX_SONGS_PER_DAY", 200, 1, 1_000_000),
        # MiniMax runs at most 20 tasks at once per account (docs/music-api.md, "Rates and times").
        max_songs_in_flight=_int(env, "MAX_SONGS_IN_FLIGHT", 20, 1, 1000),
        tenant_songs_per_day=_int(env, "TENANT_SONGS_PER_DAY", 50, 1, 1_000_000),
        tenant_songs_in_flight=_int(env, "TENANT_SONGS_IN_FLIGHT", 5, 1, 1000),
        # How long a job over the in-flight cap waits on the queue (SQS delays up to 900 s).
        in_flight_retry_seconds=_int(env, "IN_FLIGHT_RETRY_SECONDS", 60, 0, 900),
        # MiniMax allows about 120 requests a minute; submissions need the rest
        # (docs/how-it-works.md: When songs are checked).
        status_checks_per_minute=_int(env, "STATUS_CHECKS_PER_MINUTE", 80, 6, 6000),
        # The schedule runs every minute: a poll run watches for most of its minute.
        poll_watch_seconds=_int(env, "POLL_WATCH_SECONDS", 58, 0, 170),
        typical_song_seconds=seconds_range(env, "TYPICAL_SONG_SECONDS", PRIOR_SECONDS),
        poll_wake_queue_url=env.get("POLL_WAKE_QUEUE_URL", "").strip() or None,
        audio_hosts=_hosts(env, "AUDIO_HOSTS"),
        lyrics_bucket_name=env.get("LYRICS_BUCKET_NAME", "").strip() or None,
        max_resubmits=_int(env, "MAX_RESUBMITS", DEFAULT_MAX_RESUBMITS, 0, 100),
        refusal_webhooks_per_hour=_int(env, "REFUSAL_WEBHOOKS_PER_HOUR", 60, 0, 100_000),
        # At most 128 MiB: POLL_CONCURRENCY downloads at once share 1 GiB of /tmp.
        max_song_bytes=_int(env, "MAX_SONG_BYTES", 64 * MIB, MIB, 128 * MIB),
        download_deadline_seconds=float(_int(env, "DOWNLOAD_DEADLINE_SECONDS", 90, 5, 180)),
        price=_price(env),
        tenant_from_key=_tenant_rule(env),
        tenant_policy=_tenant_policy(env),
        own_sender=env.get("OWN_SENDER_ID", "").strip() or None,
        lyric_files_queue_arn=env.get("LYRIC_FILES_QUEUE_ARN", "").strip() or None,
        webhook_queue_url=env.get("WEBHOOK_QUEUE_URL", "").strip() or None,
        task_answer_queue_url=env.get("TASK_ANSWER_QUEUE_URL", "").strip() or None,
        callback_rules=_callback_rules(env, base_url),
        callback_state_machines=frozenset(
            arn.strip() for arn in env.get("CALLBACK_STATE_MACHINES", "").split(",") if arn.strip()
        ),
    )


def load_webhook_settings(env: Mapping[str, str] | None = None) -> WebhookSettings:
    """The webhook function's variables, checked like the others."""
    env = os.environ if env is None else env
    secret_arn, secret = _secret(env, "WEBHOOK_SECRET_ARN", "WEBHOOK_SECRET")
    return WebhookSettings(
        tasks_table_name=_required(env, "TASKS_TABLE_NAME"),
        spending_table_name=env.get("SPENDING_TABLE_NAME", "").strip() or None,
        queue_url=_required(env, "WEBHOOK_QUEUE_URL"),
        task_answer_queue_url=env.get("TASK_ANSWER_QUEUE_URL", "").strip() or None,
        secret_arn=secret_arn,
        secret=secret,
        callback_rules=_callback_rules(env, _api_base_url(env)),
        timeout_seconds=float(_int(env, "WEBHOOK_TIMEOUT_SECONDS", 10, 1, 30)),
        first_retry_seconds=_int(env, "WEBHOOK_FIRST_RETRY_SECONDS", 30, 1, 900),
        # At least a day on AWS (the template's WebhookRetryHours); tests go shorter.
        retry_window_seconds=_int(env, "WEBHOOK_RETRY_SECONDS", 3 * 24 * 3600, 10, 7 * 24 * 3600),
        # Two poll runs missed, and five minutes more: no poll is keeping up with the job.
        heartbeat_stale_seconds=2 * _rate_seconds(env, "POLL_SCHEDULE", 60) + 300,
    )


def _rate_seconds(env: Mapping[str, str], name: str, default: int) -> int:
    """A schedule's `rate(N minutes)` or `rate(N hours)` (PollSchedule), in seconds."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    found = re.fullmatch(r"rate\((\d{1,6}) (minute|minutes|hour|hours)\)", raw)
    if not found or int(found[1]) < 1:
        raise ConfigError(
            f"environment variable {name} must be rate(N minutes) or rate(N hours), got {raw!r}"
        )
    return int(found[1]) * (3600 if found[2].startswith("hour") else 60)


def _price(env: Mapping[str, str]) -> Price:
    credits = _int(env, "CREDITS_PER_SONG", DEFAULT_CREDITS_PER_SONG, 1, 1_000_000)
    usd_per_credit = _usd(env, "USD_PER_CREDIT", DEFAULT_USD_PER_CREDIT)
    return Price(credits, round(credits * usd_per_credit, 3))  # stored to the tenth of a cent


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Host names separated by commas, e.g. `cdn.example.com,files.example.net`."""
    hosts = tuple(h.strip().lower() for h in env.get(name, "").split(",") if h.strip())
    for host in hosts:
        if "/" in host or ":" in host or " " in host:
            raise ConfigError(
                f"environment variable {name} must list host names separated by commas "
                f"(no scheme, port or path), got {host!r}"
            )
    return hosts
