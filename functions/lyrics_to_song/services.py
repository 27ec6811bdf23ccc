"""The clients a function works with, built once per cold start and passed to the logic."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx

from .config import Settings, WebhookSettings
from .data.caps import Budget
from .data.line import WaitingTenants
from .data.pace import PollWatch, SongTimes, StatusBudget
from .data.receivers import Receivers
from .data.refusal_hooks import RefusalWebhooks
from .data.senders import SenderStore
from .data.task_table import TaskTable
from .data.webhook_keys import WebhookKeyStore
from .errors import ConfigError, ErrorKind, MusicApiError
from .http_transport import CheckedTransport
from .music_api import MusicApiClient
from .observability import logger
from .webhooks.callbacks import Resolver

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from .webhooks.delivery import WebhookServices


@dataclass
class Services:
    settings: Settings
    table: TaskTable
    budget: Budget
    s3: S3Client
    sns: SNSClient
    sqs: SQSClient
    events: EventBridgeClient
    api: MusicApiClient
    status_budget: StatusBudget
    song_times: SongTimes
    poll_watch: PollWatch
    senders: SenderStore
    line: WaitingTenants
    refusal_hooks: RefusalWebhooks
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)
    resolve: Resolver = field(default=socket.getaddrinfo)  # a callback host's addresses


def api_key_source(settings: Settings, secrets_client: object | None = None) -> Callable[[], str]:
    """Where the key comes from: Secrets Manager (cached by Powertools) or MUSIC_API_KEY."""
    if settings.api_key_secret_arn is None:
        key = settings.api_key or ""

        def local_key() -> str:
            return checked_key(key, "MUSIC_API_KEY")

        return local_key
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=secrets_client)  # type: ignore[arg-type]
    arn = settings.api_key_secret_arn

    def fetch() -> str:
        """The key, or an account-level error: nothing is sent without one."""
        try:
            value = provider.get(arn, max_age=300)
        except Exception as exc:
            raise MusicApiError(
                ErrorKind.ACCOUNT,
                f"the API key could not be read from {arn} ({type(exc).__name__})",
            ) from None
        if not isinstance(value, str) or not value.strip():
            raise MusicApiError(
                ErrorKind.ACCOUNT,
                f"the API key secret {arn} has no value: set it (docs/deploy.md: Deploy)",
            )
        return checked_key(value.strip(), f"the API key secret {arn}")

    return fetch


def checked_key(key: str, where: str) -> str:
    """The key, if an HTTP header can carry it; else an account error before any call
    (a key pasted with smart quotes or spaces would otherwise break every request)."""
    bad = [c for c in key if not (c.isascii() and c.isprintable()) or c == " "]
    if bad:
        raise MusicApiError(
            ErrorKind.ACCOUNT,
            f"{where} holds a character an API key cannot have ({bad[0]!a}; "
            "smart quotes or spaces from a copy and paste?): set it again (docs/deploy.md: Deploy)",
        )
    return key


def build_services(
    settings: Settings,
    *,
    client: Callable[[str], Any] | None = None,
    api: MusicApiClient | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Services:
    """The clients a function works with: boto3's in a Lambda (and on the local stack,
    as boto3 honours AWS_ENDPOINT_URL); tests and benchmarks hand in their own."""
    client = client or _boto3_clients()
    dynamodb = client("dynamodb")
    if api is None:
        secrets = client("secretsmanager") if settings.api_key_secret_arn else None
        api = MusicApiClient(
            settings.api_base_url,
            api_key_source(settings, secrets),
            audio_hosts=settings.audio_hosts,
            read_timeout=settings.api_timeout_seconds,
        )
    return Services(
        settings=settings,
        table=TaskTable(dynamodb, settings.tasks_table_name, settings.spending_table_name),
        budget=Budget(
            dynamodb,
            settings.spending_table_name,
            per_day=settings.max_songs_per_day,
            in_flight=settings.max_songs_in_flight,
            in_flight_retry_seconds=settings.in_flight_retry_seconds,
            tenant_defaults=(settings.tenant_songs_per_day, settings.tenant_songs_in_flight),
        ),
        s3=client("s3"),
        sns=client("sns"),
        sqs=client("sqs"),
        events=client("events"),
        api=api,
        status_budget=StatusBudget(
            dynamodb, settings.spending_table_name, settings.status_checks_per_minute
        ),
        song_times=SongTimes(dynamodb, settings.spending_table_name),
        poll_watch=PollWatch(dynamodb, settings.spending_table_name),
        senders=SenderStore(dynamodb, settings.spending_table_name),
        line=WaitingTenants(dynamodb, settings.spending_table_name),
        refusal_hooks=RefusalWebhooks(
            dynamodb, settings.spending_table_name, settings.refusal_webhooks_per_hour
        ),
        clock=clock,
        sleep=sleep,
    )


def webhook_secret_source(
    settings: WebhookSettings, secrets_client: object | None = None
) -> Callable[[], str]:
    """The root key: Secrets Manager's (cached by Powertools) or WEBHOOK_SECRET.
    Unreadable, it is an error of the invocation: the batch waits on the queue."""
    if settings.secret_arn is None:
        secret = settings.secret or ""
        return lambda: secret
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=secrets_client)  # type: ignore[arg-type]
    arn = settings.secret_arn

    def fetch() -> str:
        value = provider.get(arn, max_age=300)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"the webhook signing secret {arn} has no value")
        return value.strip()

    return fetch


def previous_secret_source(
    settings: WebhookSettings, secrets_client: object | None = None
) -> Callable[[], str | None]:
    """The root key's previous version (AWSPREVIOUS), read only while a rotation of the
    root overlaps (cached by a provider of its own: Powertools' cache is by name)."""
    if settings.secret_arn is None:
        return lambda: None
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=secrets_client)  # type: ignore[arg-type]
    arn = settings.secret_arn

    def fetch() -> str | None:
        try:
            value = provider.get(arn, max_age=300, VersionStage="AWSPREVIOUS")
        except Exception:
            logger.warning("the root key has no previous version to sign with")
            return None
        return value.strip() if isinstance(value, str) and value.strip() else None

    return fetch


def build_webhook_services(
    settings: WebhookSettings, *, client: Callable[[str], Any] | None = None
) -> WebhookServices:
    """The webhook function's clients: its table, its queue, the secret, and an http
    client that checks every connection's address and follows no redirect."""
    from .webhooks.delivery import WebhookServices  # the submit and poll functions never need it

    client = client or _boto3_clients()
    timeout = settings.timeout_seconds
    dynamodb = client("dynamodb")
    spending = settings.spending_table_name
    return WebhookServices(
        settings=settings,
        table=TaskTable(dynamodb, settings.tasks_table_name),
        keys=WebhookKeyStore(dynamodb, spending) if spending else None,
        receivers=Receivers(dynamodb, spending) if spending else None,
        sqs=client("sqs"),
        http=httpx.Client(
            transport=CheckedTransport(settings.callback_rules.check_address),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            trust_env=False,
        ),
        secret=webhook_secret_source(
            settings, client("secretsmanager") if settings.secret_arn else None
        ),
        previous_secret=previous_secret_source(
            settings, client("secretsmanager") if settings.secret_arn else None
        ),
        states=cache(lambda: client("stepfunctions")),  # only tasks' answers need it
        secrets=cache(lambda: client("secretsmanager")),  # only the operator's requests
    )


def _boto3_clients() -> Callable[[str], Any]:
    import boto3

    session = boto3.session.Session()

    def client(service: str) -> Any:
        return session.client(service)  # type: ignore[call-overload]

    return client
