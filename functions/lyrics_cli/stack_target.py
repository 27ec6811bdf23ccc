"""Which stack the command talks to: found by its CloudFormation name and outputs.

A deployed stack and the local one (`make local`, which records its outputs in moto's
CloudFormation) are found the same way; `--local` only points the clients at moto.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

DEFAULT_STACK_NAME = "lyrics-to-song"
LOCAL_PORT = 4566
LOCAL_ENDPOINT = f"http://127.0.0.1:{LOCAL_PORT}"
LOCAL_REGION = "us-east-1"
# The outputs of template.yaml this command needs.
NEEDED_OUTPUTS = ("LyricsBucketName", "SongsBucketName", "JobsQueueUrl", "TasksTableName")


class ExitCode(IntEnum):
    """What scripts can rely on (docs/command-line.md)."""

    OK = 0
    ENDED_BADLY = 1  # the job failed, timed out, has an unknown outcome, or cannot do that
    USAGE = 2  # bad arguments or input, or a confirmation refused
    NOT_FOUND = 3  # no such job
    ENVIRONMENT = 4  # stack not found, no credentials, AWS unreachable or refusing
    TIMEOUT = 5  # `wait` gave up while the job was still going


class CliError(Exception):
    """An error for the user: its text is printed as is, its code is the exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Cloud:
    """The stack's resources and the clients that reach them."""

    stack_name: str
    lyrics_bucket: str
    songs_bucket: str
    jobs_queue_url: str
    tasks_table: str
    spending_table: str | None  # None for a stack deployed before it was an output
    typical_song_seconds: str | None  # the TypicalSongSeconds parameter, LOW-HIGH
    max_songs_per_day: str | None  # the MaxSongsPerDay parameter
    max_songs_in_flight: str | None  # the MaxSongsInFlight parameter (None: an older stack)
    # TenantSongsPerDay and TenantSongsInFlight; None for a stack deployed before them
    tenant_defaults: tuple[int, int] | None
    tenant_policy: str | None  # the TenantPolicy parameter; None for a stack deployed before it
    webhook_secret_arn: str | None  # the stack's webhook signing secret
    webhook_function: str | None  # the webhook function, which derives tenants' secrets
    webhook_queue_url: str | None
    outputs: dict[str, str]  # every output of the stack, as CloudFormation lists them
    s3: S3Client
    sqs: SQSClient
    dynamodb: DynamoDBClient
    client: Callable[[str], Any]  # any other service's, made when a command needs it


def spending_table_of(cloud: Cloud, needed_for: str) -> str:
    """The stack's spending table; a CliError for a stack deployed before it was an
    output, saying what the command needs it for."""
    if not cloud.spending_table:
        raise CliError(
            f"stack {cloud.stack_name!r} has no SpendingTableName output: deploy it again "
            f"(make deploy) to {needed_for}",
            ExitCode.ENVIRONMENT,
        )
    return cloud.spending_table


def aws_errors(exc: ClientError | BotoCoreError, endpoint_url: str | None) -> CliError:
    """What went wrong talking to AWS, said so a user can act on it."""
    if isinstance(exc, NoCredentialsError):
        return CliError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or use --local for the local stack)",
            ExitCode.ENVIRONMENT,
        )
    if isinstance(exc, NoRegionError):
        return CliError(
            "no AWS region set: pass --region or set AWS_REGION (or use --local for the "
            "local stack of `make local`)",
            ExitCode.ENVIRONMENT,
        )
    if isinstance(exc, EndpointConnectionError):
        hint = " (is `make local` running?)" if endpoint_url else ""
        return CliError(
            f"cannot reach AWS at {exc.kwargs.get('endpoint_url')}{hint}", ExitCode.ENVIRONMENT
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return CliError(
            f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}",
            ExitCode.ENVIRONMENT,
        )
    return CliError(f"AWS error: {exc}", ExitCode.ENVIRONMENT)


def connect(
    stack_name: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    local: bool = False,
) -> Cloud:
    """Find the stack and build its clients; a CliError says why when it cannot."""
    if local:
        endpoint_url = endpoint_url or LOCAL_ENDPOINT
        region = region or LOCAL_REGION
    # boto3 reads AWS_DEFAULT_REGION only; AWS_REGION is what the AWS CLI v2 and Lambda set.
    region = region or os.environ.get("AWS_REGION") or None
    session_args: dict[str, Any] = {"region_name": region}
    if local and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # moto takes any key; these are its documented test values, not secrets.
        session_args |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    session = boto3.session.Session(**session_args)
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]

    try:
        stacks = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            where = f"at {endpoint_url}" if endpoint_url else f"in {session.region_name}"
            raise CliError(
                f"stack {stack_name!r} not found {where}: deploy it (make deploy), start the "
                "local one (make local, then --local), or name yours with --stack",
                ExitCode.ENVIRONMENT,
            ) from None
        raise aws_errors(exc, endpoint_url) from None
    except (NoCredentialsError, NoRegionError, EndpointConnectionError) as exc:
        raise aws_errors(exc, endpoint_url) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [name for name in NEEDED_OUTPUTS if name not in outputs]
    if missing:
        raise CliError(
            f"stack {stack_name!r} has no output(s) {', '.join(missing)}: "
            "is it a lyrics-to-song stack, fully deployed?",
            ExitCode.ENVIRONMENT,
        )
    return Cloud(
        stack_name=stack_name,
        lyrics_bucket=outputs["LyricsBucketName"],
        songs_bucket=outputs["SongsBucketName"],
        jobs_queue_url=outputs["JobsQueueUrl"],
        tasks_table=outputs["TasksTableName"],
        spending_table=outputs.get("SpendingTableName"),
        typical_song_seconds=outputs.get("TypicalSongSeconds"),
        max_songs_per_day=outputs.get("MaxSongsPerDay"),
        max_songs_in_flight=outputs.get("MaxSongsInFlight"),
        tenant_defaults=_tenant_defaults(outputs),
        tenant_policy=outputs.get("TenantPolicy"),
        webhook_secret_arn=outputs.get("WebhookSecretArn"),
        webhook_function=outputs.get("WebhookFunctionName"),
        webhook_queue_url=outputs.get("WebhookQueueUrl"),
        outputs=outputs,
        s3=client("s3"),
        sqs=client("sqs"),
        dynamodb=client("dynamodb"),
        client=client,
    )


def _tenant_defaults(outputs: dict[str, str]) -> tuple[int, int] | None:
    per_day, in_flight = outputs.get("TenantSongsPerDay"), outputs.get("TenantSongsInFlight")
    if per_day is None or in_flight is None:
        return None
    return int(float(per_day)), int(float(in_flight))
