"""The local stack: moto (its server, moto_server.py) provisioned from template.yaml.

Buckets, queues (with their redrive policies), the table (keys, index, TTL), the topic,
the secret and the bucket-to-queue notification are all read from the template.
Functions are not created in moto: `runtime.py` runs the real handlers in-process with
the environment the template gives them.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3

from .moto_patches import patch_moto
from .template import (
    TEMPLATE_PATH,
    Resolver,
    function_environment,
    load_template,
    resources_of_type,
)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FUNCTIONS = ("SubmitFunction", "PollFunction", "WebhookFunction")


@dataclass
class Stack:
    """What was provisioned: physical names by logical id, and each function's environment."""

    name: str
    endpoint_url: str | None  # None: moto in-process (mock_aws)
    refs: dict[str, str]
    arns: dict[str, str]
    environments: dict[str, dict[str, str]]
    template: dict[str, Any] = field(repr=False)
    outputs: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def client(self, service: str) -> Any:
        """A client of moto's `service`, made once per stack (a client takes ~20 ms to
        make; boto3's clients are safe to share between threads)."""
        with _session_lock:
            if service not in self._clients:
                self._clients[service] = _moto_session().client(  # type: ignore[call-overload]
                    service, endpoint_url=self.endpoint_url
                )
            return self._clients[service]

    @property
    def lyrics_bucket(self) -> str:
        return self.refs["LyricsBucket"]

    @property
    def songs_bucket(self) -> str:
        return self.refs["SongsBucket"]

    @property
    def jobs_queue_url(self) -> str:
        return self.refs["JobsQueue"]

    @property
    def lyric_files_queue_url(self) -> str:
        """Where the lyrics bucket's notifications go (S3 alone may send there)."""
        return self.refs["LyricFilesQueue"]

    @property
    def tasks_table(self) -> str:
        return self.refs["TasksTable"]

    @property
    def topic_arn(self) -> str:
        return self.refs["NotificationTopic"]

    @property
    def secret_arn(self) -> str:
        return self.refs["MusicApiKeySecret"]

    def webhook_secret(self) -> str:
        """The stack's root key, from which every tenant's signing secret is derived."""
        secret = self.client("secretsmanager").get_secret_value(
            SecretId=self.refs["WebhookSigningSecret"]
        )
        return str(secret["SecretString"])

    def store_api_key(self, key: str) -> None:
        """Put the music API key in the secret the functions read it from."""
        self.client("secretsmanager").put_secret_value(SecretId=self.secret_arn, SecretString=key)

    def function_property(self, logical_id: str, name: str) -> Any:
        return self.template["Resources"][logical_id]["Properties"].get(name)

    def sqs_event(self, logical_id: str, name: str) -> dict[str, Any]:
        """A function's SQS event source `name`, as the template declares it."""
        spec = (self.function_property(logical_id, "Events") or {}).get(name, {})
        if spec.get("Type") != "SQS":
            raise KeyError(f"{logical_id} has no SQS event {name}")
        props: dict[str, Any] = spec["Properties"]
        return props


_session_lock = threading.Lock()


@lru_cache(maxsize=1)
def _moto_session() -> boto3.session.Session:
    """One session for every client of moto: it reads boto3's service models once.

    Callers hold `_session_lock`, since a session is not safe to share between threads.
    """
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fixed test credentials
        region_name=REGION,
    )


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """What boto3 needs to talk to moto's server: one endpoint for every client."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


@dataclass
class _Provisioner:
    """Creates the template's resources in moto, recording what each Ref and GetAtt gives."""

    client: Callable[[str], Any]
    stack_name: str
    template: dict[str, Any]
    parameters: Mapping[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/"
            f"{self.stack_name}/{uuid.uuid5(uuid.NAMESPACE_DNS, self.stack_name)}",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.resolver = Resolver(self.template, self.refs, self.attributes, pseudo, self.parameters)

    def name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}".lower()

    def props(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolver.resolve(spec.get("Properties", {}))
        return resolved

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return resources_of_type(self.template, kind)

    def secrets(self) -> None:
        for logical, spec in self.of_type("AWS::SecretsManager::Secret").items():
            props = self.props(spec)
            value = {}
            if "GenerateSecretString" in props:  # a random value, as CloudFormation makes one
                length = int(props["GenerateSecretString"].get("PasswordLength", 32))
                value = {"SecretString": _random_text(length)}
            self.refs[logical] = self.client("secretsmanager").create_secret(
                Name=self.name(logical), Description=props.get("Description", ""), **value
            )["ARN"]

    def topics(self) -> None:
        for logical in self.of_type("AWS::SNS::Topic"):
            arn = self.client("sns").create_topic(Name=self.name(logical))["TopicArn"]
            self.refs[logical] = arn
            self.attributes[(logical, "TopicArn")] = arn

    def queues(self) -> None:
        # Queues without a redrive policy first: the others point at them.
        queues = self.of_type("AWS::SQS::Queue")
        ordered = sorted(
            queues.items(), key=lambda kv: "RedrivePolicy" in kv[1].get("Properties", {})
        )
        sqs = self.client("sqs")
        for logical, spec in ordered:
            p = self.props(spec)
            attrs: dict[str, str] = {
                name: str(p[name]).lower() if isinstance(p[name], bool) else str(p[name])
                for name in ("VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled")
                if name in p
            }
            if "RedrivePolicy" in p:
                attrs["RedrivePolicy"] = json.dumps(p["RedrivePolicy"])
            url = sqs.create_queue(QueueName=self.name(logical), Attributes=attrs)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            self.refs[logical] = url
            self.arns[logical] = arn["Attributes"]["QueueArn"]
            self.attributes[(logical, "Arn")] = self.arns[logical]

    def tables(self) -> None:
        ddb = self.client("dynamodb")
        for logical, spec in self.of_type("AWS::DynamoDB::Table").items():
            p = self.props(spec)
            name = self.name(logical)
            kwargs: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": p["AttributeDefinitions"],
                "KeySchema": p["KeySchema"],
                "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if p.get("GlobalSecondaryIndexes"):
                kwargs["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
            arn = ddb.create_table(**kwargs)["TableDescription"]["TableArn"]
            ttl = p.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": True,
                    },
                )
            self.refs[logical] = name
            self.arns[logical] = arn
            self.attributes[(logical, "Arn")] = arn

    def buckets(self) -> None:
        buckets = self.of_type("AWS::S3::Bucket")
        s3 = self.client("s3")
        for logical in buckets:
            name = self.name(logical)
            s3.create_bucket(Bucket=name)
            self.refs[logical] = name
            self.attributes[(logical, "Arn")] = f"arn:aws:s3:::{name}"
        for logical, spec in buckets.items():
            configs = self.props(spec).get("NotificationConfiguration", {})
            queue_configs = [
                {"QueueArn": q["Queue"], "Events": [q["Event"]], **_key_filter(q)}
                for q in configs.get("QueueConfigurations", [])
            ]
            if queue_configs:
                s3.put_bucket_notification_configuration(
                    Bucket=self.refs[logical],
                    NotificationConfiguration={"QueueConfigurations": queue_configs},
                )


def _random_text(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _key_filter(config: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's `Filter.S3Key.Rules` as the S3 API's `Filter.Key.FilterRules`."""
    if "Filter" not in config:
        return {}
    return {"Filter": {"Key": {"FilterRules": config["Filter"]["S3Key"]["Rules"]}}}


def provision(
    endpoint_url: str | None,
    stack_name: str = "lyrics-to-song",
    template_path: Path = TEMPLATE_PATH,
    parameters: Mapping[str, str] | None = None,
) -> Stack:
    """Create in moto every resource of the template that the functions touch."""
    patch_moto()
    template = load_template(template_path)
    stack = Stack(stack_name, endpoint_url, {}, {}, {}, template)
    p = _Provisioner(stack.client, stack_name, template, parameters or {})
    p.secrets()
    p.topics()
    p.queues()
    p.tables()
    p.buckets()
    for logical in FUNCTIONS:
        p.refs[logical] = p.name(logical)
        # The role SAM makes for the function: locally, an id of the shape AWS gives.
        p.attributes[(f"{logical}Role", "RoleId")] = "AROA" + logical.upper()[:16]
    environments = {
        logical: function_environment(template, logical, p.resolver) for logical in FUNCTIONS
    }
    outputs = {}
    for name, spec in template.get("Outputs", {}).items():
        try:
            outputs[name] = str(p.resolver.resolve(spec["Value"]))
        except KeyError:  # an output of a resource moto does not hold (the dashboard)
            continue
    stack.refs, stack.arns = p.refs, p.arns
    stack.environments, stack.outputs = environments, outputs
    return stack


def bind_local_producer(stack: Stack) -> None:
    """Bind the command line's sender to the default tenant, as an operator binds a
    producer (docs/producers.md): its messages carry moto's fixed
    SenderId, the one a key moto did not make gets."""
    from moto.sqs.models import DEFAULT_SENDER_ID

    from lyrics_to_song.data.senders import SenderStore

    SenderStore(stack.client("dynamodb"), stack.refs["SpendingTable"]).bind(
        DEFAULT_SENDER_ID, "default"
    )


def register_outputs(stack: Stack) -> None:
    """Record the stack in moto's CloudFormation, outputs and all, as a deploy would.

    Clients that find a deployed stack by its name and outputs (the command line) then
    find the local one the same way. The stack holds one placeholder resource: the real
    ones were made directly above, which moto's CloudFormation cannot do from a SAM
    template.
    """
    body = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in stack.outputs.items()},
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*WaitConditionHandle.*")
        stack.client("cloudformation").create_stack(
            StackName=stack.name, TemplateBody=json.dumps(body)
        )
