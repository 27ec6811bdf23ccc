"""template.yaml, translated offline by aws-sam-translator, wired as the functions expect."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local_cloud.template import load_template
from lyrics_to_song.config import load_settings
from lyrics_to_song.data.line import LINE_INDEX
from lyrics_to_song.data.table_base import DUE_INDEX
from lyrics_to_song.poll import RESERVE_MS
from lyrics_to_song.submit_handler import MIN_REMAINING_MS


class _ManagedPolicies(dict[str, str]):
    """AWS managed policy ARNs by name, without asking IAM."""

    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(sam)
    template["Globals"]["Function"]["CodeUri"] = (
        "s3://artifacts/code.zip"  # what `sam package` does
    )
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated: dict[str, Any] = Translator(_ManagedPolicies(), Parser()).translate(
        template, parameter_values={}
    )
    return translated


def resources(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in cfn["Resources"].items() if v["Type"] == kind}


def ref(value: Any) -> str:
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def test_each_function_is_pointed_at_the_right_resources(cfn: dict[str, Any]) -> None:
    functions = resources(cfn, "AWS::Lambda::Function")
    assert set(functions) == {"SubmitFunction", "PollFunction", "WebhookFunction"}
    for name in ("SubmitFunction", "PollFunction"):
        props = functions[name]
        env = props["Environment"]["Variables"]
        assert ref(env["TASKS_TABLE_NAME"]) == "TasksTable"
        assert ref(env["AUDIO_BUCKET_NAME"]) == "SongsBucket"
        assert ref(env["NOTIFY_TOPIC_ARN"]) == "NotificationTopic"
        assert ref(env["MUSIC_API_KEY_SECRET_ARN"]) == "MusicApiKeySecret"
        assert env["EVENT_BUS_NAME"] == {"Ref": "EventBusName"}
        assert "MUSIC_API_KEY" not in env, "a deployed function reads its key from Secrets Manager"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert ref(env["WEBHOOK_QUEUE_URL"]) == "WebhookQueue"
    assert functions["SubmitFunction"]["Handler"] == "lyrics_to_song.submit_handler.handler"
    assert functions["PollFunction"]["Handler"] == "lyrics_to_song.poll_handler.handler"


def test_the_environment_satisfies_the_configuration_contract(sam: dict[str, Any]) -> None:
    from local_cloud.template import Resolver, function_environment

    refs = {name: f"physical-{name}" for name in sam["Resources"]}
    refs["NotificationTopic"] = "arn:aws:sns:us-east-1:123456789012:topic"
    role = {
        ("SubmitFunctionRole", "RoleId"): "AROASUBMITROLE",
        ("LyricFilesQueue", "Arn"): "arn:aws:sqs:us-east-1:123456789012:files",
    }
    resolver = Resolver(sam, refs, role, {"AWS::StackName": "s"})
    for name in ("SubmitFunction", "PollFunction"):
        settings = load_settings(function_environment(sam, name, resolver))
        assert settings.tasks_table_name == "physical-TasksTable"
        assert (settings.own_sender == "AROASUBMITROLE") is (name == "SubmitFunction")
        assert (settings.lyric_files_queue_arn is not None) is (name == "SubmitFunction")


def test_the_queue_feeds_the_submit_function_with_partial_batch_failures(
    cfn: dict[str, Any],
) -> None:
    mappings = {
        ref(m["EventSourceArn"]): m
        for m in resources(cfn, "AWS::Lambda::EventSourceMapping").values()
    }
    assert set(mappings) == {
        "JobsQueue",
        "LyricFilesQueue",
        "PollWakeQueue",
        "WebhookQueue",
        "TaskAnswerQueue",
    }
    for queue in ("JobsQueue", "LyricFilesQueue"):
        mapping = mappings[queue]
        assert ref(mapping["FunctionName"]) == "SubmitFunction"
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert 1 <= mapping["BatchSize"] <= 10
        assert mapping["ScalingConfig"]["MaximumConcurrency"] <= 20, "within the API's tasks"
    together = sum(
        mappings[q]["ScalingConfig"]["MaximumConcurrency"] for q in ("JobsQueue", "LyricFilesQueue")
    )
    assert together <= 20, "both queues' submit functions within the API's concurrent tasks"


def test_a_submission_can_wake_the_poll_function_and_it_keeps_a_budget(
    cfn: dict[str, Any],
) -> None:
    wake = next(
        m
        for m in resources(cfn, "AWS::Lambda::EventSourceMapping").values()
        if ref(m["EventSourceArn"]) == "PollWakeQueue"
    )
    assert ref(wake["FunctionName"]) == "PollFunction"
    assert wake["ScalingConfig"]["MaximumConcurrency"] == 2, "the fewest Lambda allows"
    functions = resources(cfn, "AWS::Lambda::Function")
    submit_env = functions["SubmitFunction"]["Environment"]["Variables"]
    assert ref(submit_env["POLL_WAKE_QUEUE_URL"]) == "PollWakeQueue"
    queue = resources(cfn, "AWS::SQS::Queue")["PollWakeQueue"]
    assert queue["VisibilityTimeout"] >= 6 * functions["PollFunction"]["Timeout"]
    poll_env = functions["PollFunction"]["Environment"]["Variables"]
    assert ref(poll_env["POLL_WATCH_SECONDS"]) == "PollWatchSeconds"
    assert int(cfn["Parameters"]["PollWatchSeconds"]["Default"]) < 60, "within the minute"
    assert ref(poll_env["STATUS_CHECKS_PER_MINUTE"]) == "StatusChecksPerMinute"
    assert int(cfn["Parameters"]["StatusChecksPerMinute"]["Default"]) < 120, "the API's limit"
    poll = [s for s in _statements(cfn, "PollFunctionRole") if "dynamodb:UpdateItem" in s["Action"]]
    assert {"Fn::GetAtt": ["SpendingTable", "Arn"]} in [s["Resource"] for s in poll]
    sends = [s for s in _statements(cfn, "SubmitFunctionRole") if s["Action"] == "sqs:SendMessage"]
    assert {"Fn::GetAtt": ["PollWakeQueue", "Arn"]} in [s["Resource"] for s in sends]
    jobs_queue = {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert jobs_queue not in [s["Resource"] for s in sends], "no reminders: held jobs wait in line"


def test_timeouts_leave_room_for_the_work(cfn: dict[str, Any]) -> None:
    functions = resources(cfn, "AWS::Lambda::Function")
    queue = resources(cfn, "AWS::SQS::Queue")["JobsQueue"]
    submit_timeout = functions["SubmitFunction"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * submit_timeout
    # The handler stops taking records MIN_REMAINING_MS before the end: one paid call fits.
    assert submit_timeout * 1000 > MIN_REMAINING_MS
    assert functions["PollFunction"]["Timeout"] * 1000 > RESERVE_MS
    poll_lease = int(functions["PollFunction"]["Environment"]["Variables"]["POLL_LEASE_SECONDS"])
    assert poll_lease > functions["PollFunction"]["Timeout"], (
        "a claim outlives the run that made it"
    )
    submit_lease = load_settings(
        {
            "TASKS_TABLE_NAME": "t",
            "SPENDING_TABLE_NAME": "s",
            "JOBS_QUEUE_URL": "q",
            "AUDIO_BUCKET_NAME": "b",
            "NOTIFY_TOPIC_ARN": "arn:x",
            "MUSIC_API_KEY": "k",
        }
    ).submit_lease_seconds
    assert submit_lease > submit_timeout, (
        "a SUBMITTING row is settled only after its function is surely gone"
    )


def test_failed_jobs_messages_end_in_a_dead_letter_queue(cfn: dict[str, Any]) -> None:
    queues = resources(cfn, "AWS::SQS::Queue")
    redrive = queues["JobsQueue"]["RedrivePolicy"]
    assert ref(redrive["deadLetterTargetArn"]) == "JobsDeadLetterQueue"
    assert redrive["maxReceiveCount"] >= 3
    for props in queues.values():
        assert props["SqsManagedSseEnabled"] is True


def test_the_schedule_runs_the_poll_function_with_retries_and_a_dlq(cfn: dict[str, Any]) -> None:
    (schedule,) = [
        s
        for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if ref(s["Target"]["Arn"]) == "PollFunction"
    ]
    assert schedule["ScheduleExpression"] == {"Ref": "PollSchedule"}
    assert cfn["Parameters"]["PollSchedule"]["Default"] == "rate(1 minute)"
    target = schedule["Target"]
    assert ref(target["Arn"]) == "PollFunction"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert ref(target["DeadLetterConfig"]["Arn"]) == "PollScheduleDeadLetterQueue"
    assert "Fn::Sub" in schedule["Name"], "schedule names are unique per stack"
    role = cfn["Resources"][ref(target["RoleArn"])]["Properties"]
    granted = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert {
        "Action": "sqs:SendMessage",
        "Effect": "Allow",
        "Resource": {"Fn::GetAtt": ["PollScheduleDeadLetterQueue", "Arn"]},
    } in granted


def test_tasks_heartbeats_run_every_5_minutes_only_while_tasks_are_answered(
    cfn: dict[str, Any],
) -> None:
    (schedule,) = [
        s
        for s in resources(cfn, "AWS::Scheduler::Schedule").values()
        if ref(s["Target"]["Arn"]) == "WebhookFunction"
    ]
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert schedule["State"] == {"Fn::If": ["AnswersTasks", "ENABLED", "DISABLED"]}
    assert cfn["Parameters"]["CallbackStateMachines"]["Default"] == "", "off by default"
    role = cfn["Resources"]["WebhookFunctionRole"]["Properties"]
    raw = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    reads = [s for s in raw if "Query" in str(s) or "BatchGetItem" in str(s)]
    assert len(reads) == 2
    assert all(s["Fn::If"][0] == "AnswersTasks" for s in reads), "no reads while off"


def test_the_table_has_the_sparse_indexes_ttl_and_recovery(cfn: dict[str, Any]) -> None:
    table = resources(cfn, "AWS::DynamoDB::Table")["TasksTable"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    due, line = table["GlobalSecondaryIndexes"]
    assert due["IndexName"] == DUE_INDEX
    assert [k["AttributeName"] for k in due["KeySchema"]] == ["open_shard", "due_at"]
    assert line["IndexName"] == LINE_INDEX, "added after the due index: one index a deploy"
    assert [k["AttributeName"] for k in line["KeySchema"]] == ["line_tenant", "line_at"]
    assert {i["Projection"]["ProjectionType"] for i in (due, line)} == {"KEYS_ONLY"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_lyric_uploads_notify_a_queue_only_s3_may_send_to(cfn: dict[str, Any]) -> None:
    bucket = resources(cfn, "AWS::S3::Bucket")["LyricsBucket"]
    configs = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert {ref(c["Queue"]) for c in configs} == {"LyricFilesQueue"}, "not the jobs queue"
    assert [c.get("Filter") for c in configs] == [None], "every file: each gets an answer"
    policy = resources(cfn, "AWS::SQS::QueuePolicy")["LyricFilesQueuePolicy"]["PolicyDocument"][
        "Statement"
    ][0]
    assert policy["Principal"] == {"Service": "s3.amazonaws.com"}
    assert policy["Action"] == "sqs:SendMessage"
    assert "aws:SourceAccount" in policy["Condition"]["StringEquals"]


def test_buckets_are_private_encrypted_and_tls_only(cfn: dict[str, Any]) -> None:
    policies = {
        ref(p["Bucket"]): p["PolicyDocument"]
        for p in resources(cfn, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in resources(cfn, "AWS::S3::Bucket").items():
        assert all(bucket["PublicAccessBlockConfiguration"].values()), name
        assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        (deny,) = policies[name]["Statement"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def _statements(cfn: dict[str, Any], role: str) -> Iterator[dict[str, Any]]:
    """A role's statements; one under a condition (`Fn::If`) as when it holds."""
    for policy in cfn["Resources"][role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            yield statement["Fn::If"][1] if "Fn::If" in statement else statement


@pytest.mark.parametrize("role", ["SubmitFunctionRole", "PollFunctionRole", "WebhookFunctionRole"])
def test_function_policies_name_their_actions_and_resources(cfn: dict[str, Any], role: str) -> None:
    statements = list(_statements(cfn, role))
    assert statements
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in action for action in actions), statement
        assert statement["Resource"] != "*", statement


def test_only_the_poll_function_writes_songs_and_reads_the_due_index(cfn: dict[str, Any]) -> None:
    submit_actions = {
        a
        for s in _statements(cfn, "SubmitFunctionRole")
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    poll_actions = {
        a
        for s in _statements(cfn, "PollFunctionRole")
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert "s3:PutObject" not in submit_actions
    submit_queries = [
        s["Resource"]
        for s in _statements(cfn, "SubmitFunctionRole")
        if "dynamodb:Query" in str(s["Action"])
    ]
    assert submit_queries == [{"Fn::Sub": "${TasksTable.Arn}/index/line-by-tenant"}], (
        "the submit function reads the tenants' lines, not the due rows"
    )
    songs_read_by_submit = [
        s for s in _statements(cfn, "SubmitFunctionRole") if "SongsBucket" in str(s["Resource"])
    ]
    assert songs_read_by_submit == [], "the submit function never touches the songs"
    assert {"s3:PutObject", "s3:AbortMultipartUpload", "dynamodb:Query"} <= poll_actions
    assert "dynamodb:Scan" not in poll_actions, "the poll function never scans"


def test_logs_are_kept_for_a_set_time(cfn: dict[str, Any]) -> None:
    groups = resources(cfn, "AWS::Logs::LogGroup")
    assert {g["LogGroupName"]["Fn::Sub"] for g in groups.values()} == {
        "/aws/lambda/${SubmitFunction}",
        "/aws/lambda/${PollFunction}",
        "/aws/lambda/${WebhookFunction}",
    }
    assert all(g["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups.values())


def test_outputs_give_a_user_everything_they_need(cfn: dict[str, Any]) -> None:
    assert {
        "LyricsBucketName",
        "SongsBucketName",
        "JobsQueueUrl",
        "NotificationTopicArn",
        "MusicApiKeySecretArn",
        "TasksTableName",
        "JobsDeadLetterQueueUrl",
        "WebhookSecretArn",
    } <= set(cfn["Outputs"])


@pytest.mark.parametrize("role", ["SubmitFunctionRole", "PollFunctionRole"])
def test_both_functions_may_put_events_on_the_configured_bus_only(
    cfn: dict[str, Any], role: str
) -> None:
    grants = [s for s in _statements(cfn, role) if s["Action"] == "events:PutEvents"]
    assert [g["Resource"] for g in grants] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
            ":event-bus/${EventBusName}"
        }
    ]


def _emitted_metrics() -> set[str]:
    """Every metric name the functions emit (count("X") / seconds("X") in their code)."""
    import re
    from pathlib import Path

    import lyrics_to_song
    from lyrics_to_song.announce import ENDED_METRICS
    from lyrics_to_song.webhooks.delivery import ENDED_METRICS as WEBHOOK_METRICS

    names: set[str] = set(ENDED_METRICS.values()) | set(WEBHOOK_METRICS.values())
    for source in Path(lyrics_to_song.__file__).parent.glob("**/*.py"):
        text = source.read_text()
        names |= set(re.findall(r'(?:count|seconds)\(\s*"(\w+)"', text))
        names |= set(re.findall(r'single_metric\(\s*name="(\w+)"', text))
    return names


def test_alarms_watch_what_needs_a_person_and_notify_the_alarm_topic(cfn: dict[str, Any]) -> None:
    alarms = resources(cfn, "AWS::CloudWatch::Alarm")
    watched: set[str] = set()
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert "docs/operating.md" in alarm["AlarmDescription"], "where to read what to do"
        metrics = [alarm] + [
            m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m
        ]
        for metric in metrics:
            if "MetricName" in metric:
                watched.add(f"{metric['Namespace']}/{metric['MetricName']}")
                if metric["Namespace"] == "LyricsToSong":
                    assert metric["MetricName"] in _emitted_metrics(), metric["MetricName"]
                    assert metric["Dimensions"] == [{"Name": "service", "Value": "lyrics-to-song"}]
    assert {
        "LyricsToSong/PollErrors",
        "LyricsToSong/SongsTimedOut",
        "LyricsToSong/AccountErrors",
        "LyricsToSong/CreditsSpent",
        "LyricsToSong/WebhooksGivenUp",
        "AWS/SQS/ApproximateNumberOfMessagesVisible",
        "AWS/Lambda/Errors",
    } <= watched
    dead_letter_queues = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        if a.get("Namespace") == "AWS/SQS"
    }
    assert dead_letter_queues == {
        "JobsDeadLetterQueue",
        "PollScheduleDeadLetterQueue",
        "WebhookDeadLetterQueue",
    }


def test_the_dashboard_shows_the_songs_and_their_time(cfn: dict[str, Any]) -> None:
    import json
    import re

    (dashboard,) = resources(cfn, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", dashboard["DashboardBody"]["Fn::Sub"]))
    shown: set[str] = set()
    for widget in body["widgets"]:
        namespace = ""
        for metric in widget["properties"]["metrics"]:
            if metric[0] == "...":  # the row above again, with other options
                continue
            namespace = namespace if metric[0] == "." else metric[0]  # "." repeats the row above
            if namespace == "LyricsToSong":
                shown.add(metric[1])
    assert {
        "SongsSubmitted",
        "SongsCompleted",
        "SongsFailed",
        "TimeToSong",
        "CreditsSpent",
        "WebhooksDelivered",
        "WebhooksGivenUp",
    } <= shown
    assert shown <= _emitted_metrics()


def test_the_alarm_topic_is_one_cloudwatch_can_publish_to(cfn: dict[str, Any]) -> None:
    # CloudWatch cannot use the AWS-managed SNS key: an alarm topic under it never
    # delivers. Unencrypted (or a customer-managed key that lets CloudWatch use it).
    topic = cfn["Resources"]["AlarmTopic"]["Properties"]
    key = topic.get("KmsMasterKeyId")
    assert key is None or not str(key).startswith("alias/aws/"), key
    if key is not None:
        key_policy = cfn["Resources"][key["Ref"]]["Properties"]["KeyPolicy"]
        assert "cloudwatch.amazonaws.com" in str(key_policy)


@pytest.mark.parametrize(
    "name", ["TasksTable", "SpendingTable", "MusicApiKeySecret", "WebhookSigningSecret"]
)
def test_state_that_must_outlive_a_replacement_is_kept(cfn: dict[str, Any], name: str) -> None:
    resource = cfn["Resources"][name]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_api_base_url_parameter_takes_https_only(sam: dict[str, Any]) -> None:
    import re

    pattern = re.compile(sam["Parameters"]["MusicApiBaseUrl"]["AllowedPattern"])
    assert pattern.match("https://apiin.one")
    assert not pattern.match("http://apiin.one")


def test_every_check_the_template_skips_says_why(sam: dict[str, Any]) -> None:
    skipped = {
        (name, skip["id"]): skip.get("comment", "")
        for name, resource in sam["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert skipped, "checkov's skips live in the template, next to what they excuse"
    for (name, check), reason in skipped.items():
        assert len(reason.split()) >= 6, f"{name} skips {check} without a reason"


def test_only_the_lyrics_bucket_may_send_to_the_lyric_files_queue(cfn: dict[str, Any]) -> None:
    policies = cfn["Resources"]
    jobs = policies["JobsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s for s in jobs if s["Effect"] == "Allow"] == [], "S3 sends nothing to the jobs queue"
    statements = policies["LyricFilesQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    source_template, source_values = allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    name_template, name_values = cfn["Resources"]["LyricsBucket"]["Properties"]["BucketName"][
        "Fn::Sub"
    ]
    assert source_template == "arn:${AWS::Partition}:s3:::" + name_template
    assert source_values == name_values, "the same name, made the same way"
    assert "*" not in source_template


def test_the_spend_alarm_compares_the_days_credits_with_the_daily_cap(cfn: dict[str, Any]) -> None:
    alarm = cfn["Resources"]["SpendAlarm"]["Properties"]
    spent, share = alarm["Metrics"]
    assert spent["MetricStat"]["Period"] == 86400, "a UTC day"
    assert spent["MetricStat"]["Stat"] == "Sum"
    assert share["Expression"] == {
        "Fn::Sub": "100 * spent / (${MaxSongsPerDay} * ${CreditsPerSong})"
    }
    assert alarm["Threshold"] == {"Ref": "SpendAlarmPercent"}
    assert cfn["Parameters"]["SpendAlarmPercent"]["Default"] == 80
    assert cfn["Parameters"]["CreditsPerSong"]["MinValue"] >= 1, "never a division by zero"


def test_webhooks_have_a_function_of_their_own_with_the_least_it_needs(
    cfn: dict[str, Any], sam: dict[str, Any]
) -> None:
    from local_cloud.template import Resolver, function_environment
    from lyrics_to_song.config import load_webhook_settings
    from lyrics_to_song.webhook_handler import SPARE_MS

    functions = resources(cfn, "AWS::Lambda::Function")
    webhook = functions["WebhookFunction"]
    assert webhook["Handler"] == "lyrics_to_song.webhook_handler.handler"
    grants = {
        (action, str(s["Resource"]))
        for s in _statements(cfn, "WebhookFunctionRole")
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert grants == {
        ("dynamodb:GetItem", "{'Fn::GetAtt': ['TasksTable', 'Arn']}"),
        ("dynamodb:UpdateItem", "{'Fn::GetAtt': ['TasksTable', 'Arn']}"),
        (
            "sqs:ChangeMessageVisibility",
            "[{'Fn::GetAtt': ['WebhookQueue', 'Arn']}, {'Fn::GetAtt': ['TaskAnswerQueue', 'Arn']}]",
        ),
        ("secretsmanager:GetSecretValue", "{'Ref': 'WebhookSigningSecret'}"),
        ("secretsmanager:PutSecretValue", "{'Ref': 'WebhookSigningSecret'}"),  # rotate-root
        ("dynamodb:GetItem", "{'Fn::GetAtt': ['SpendingTable', 'Arn']}"),
        ("dynamodb:UpdateItem", "{'Fn::GetAtt': ['SpendingTable', 'Arn']}"),  # receiver#*
        ("dynamodb:DeleteItem", "{'Fn::GetAtt': ['SpendingTable', 'Arn']}"),  # receiver#*
        *(
            (action, "{'Fn::Split': [',', {'Ref': 'CallbackStateMachines'}]}")
            for action in ("states:SendTaskSuccess", "states:SendTaskFailure")
        ),
        ("states:SendTaskHeartbeat", "{'Fn::Split': [',', {'Ref': 'CallbackStateMachines'}]}"),
        ("dynamodb:Query", "{'Fn::Sub': '${TasksTable.Arn}/index/open-by-due'}"),
        ("dynamodb:BatchGetItem", "{'Fn::GetAtt': ['TasksTable', 'Arn']}"),
    }, "no music API key, no songs; tasks' answers to the listed state machines alone"
    spending = [
        s
        for s in _statements(cfn, "WebhookFunctionRole")
        if s["Resource"] == {"Fn::GetAtt": ["SpendingTable", "Arn"]}
    ]
    assert [(s["Action"], s["Condition"]) for s in spending] == [
        (
            "dynamodb:GetItem",
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["caps#*", "webhook-root"]}},
        ),
        (
            ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["receiver#*"]}},
        ),
    ], "the tenants' items and the root's rotation read only; receivers' marks; no spend"
    (mapping,) = [
        m
        for m in resources(cfn, "AWS::Lambda::EventSourceMapping").values()
        if ref(m["EventSourceArn"]) == "WebhookQueue"
    ]
    assert ref(mapping["FunctionName"]) == "WebhookFunction"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Each record may take one POST's timeout; the batch fits in the function's time.
    refs = {name: f"physical-{name}" for name in sam["Resources"]}
    settings = load_webhook_settings(
        function_environment(sam, "WebhookFunction", Resolver(sam, refs, {}, {}))
    )
    assert settings.queue_url == "physical-WebhookQueue"
    assert settings.retry_window_seconds >= 86400, "at least a day of retries"
    assert settings.heartbeat_stale_seconds == 2 * 60 + 300, "two poll runs (1 min) and 5 min"
    per_record_ms = settings.timeout_seconds * 1000 + SPARE_MS
    assert webhook["Timeout"] * 1000 >= per_record_ms
    for role in ("SubmitFunctionRole", "PollFunctionRole"):
        sends = [s["Resource"] for s in _statements(cfn, role) if s["Action"] == "sqs:SendMessage"]
        assert [
            {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
            {"Fn::GetAtt": ["TaskAnswerQueue", "Arn"]},
        ] in sends, role


def test_the_webhooks_queue_is_encrypted_tls_only_and_outlives_the_retries(
    cfn: dict[str, Any],
) -> None:
    queues = resources(cfn, "AWS::SQS::Queue")
    queue = queues["WebhookQueue"]
    functions = resources(cfn, "AWS::Lambda::Function")
    assert queue["SqsManagedSseEnabled"] is True
    assert queues["WebhookDeadLetterQueue"]["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 6 * functions["WebhookFunction"]["Timeout"]
    longest_window = int(cfn["Parameters"]["WebhookRetrySeconds"]["MaxValue"])
    assert queue["MessageRetentionPeriod"] > longest_window + 3600, "the last wait fits too"
    assert ref(queue["RedrivePolicy"]["deadLetterTargetArn"]) == "WebhookDeadLetterQueue"
    # Every attempt is a receive: the most a window can take, each wait at its shortest
    # (half of the hour) once the waits have grown, must not send a webhook to the DLQ.
    from lyrics_to_song.webhooks.delivery import MAX_RETRY_SECONDS, next_wait

    ramp = [next_wait(30, n, lambda low, high: low) for n in range(1, 30)]
    growing = [wait for wait in ramp if wait < MAX_RETRY_SECONDS / 2]
    most = len(growing) + (longest_window - sum(growing)) / (MAX_RETRY_SECONDS / 2) + 1
    assert queue["RedrivePolicy"]["maxReceiveCount"] > most * 1.5, most
    statements = cfn["Resources"]["WebhookQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = statements
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    assert {ref(r) for r in deny["Resource"]} == {
        "WebhookQueue",
        "TaskAnswerQueue",
        "WebhookDeadLetterQueue",
    }
    answers = queues["TaskAnswerQueue"]
    assert answers["SqsManagedSseEnabled"] is True
    assert ref(answers["RedrivePolicy"]["deadLetterTargetArn"]) == "WebhookDeadLetterQueue"


def test_each_reader_of_the_template_gets_a_copy_of_its_own_and_an_edit_is_read_anew(
    tmp_path: Path,
) -> None:
    """The parsed template is kept between calls; a caller's changes must not leak."""
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
    first = load_template(path)
    first["Resources"]["Queue"]["Type"] = "changed by a caller"
    assert load_template(path)["Resources"]["Queue"]["Type"] == "AWS::SQS::Queue"
    path.write_text("Resources:\n  Topic:\n    Type: !Ref Kind\n")
    assert load_template(path)["Resources"] == {"Topic": {"Type": {"Ref": "Kind"}}}


def test_the_policies_to_attach_grant_each_command_its_need_on_this_stack_alone(
    cfn: dict[str, Any],
) -> None:
    policies = resources(cfn, "AWS::IAM::ManagedPolicy")
    assert set(policies) == {"ProducerPolicy", "OperatorPolicy"}
    outputs = cfn["Outputs"]
    assert ref(outputs["ProducerPolicyArn"]["Value"]) == "ProducerPolicy"
    assert ref(outputs["OperatorPolicyArn"]["Value"]) == "OperatorPolicy"

    def grants(name: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for statement in policies[name]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            targets = statement["Resource"]
            for action in actions if isinstance(actions, list) else [actions]:
                for target in targets if isinstance(targets, list) else [targets]:
                    found.setdefault(action, set()).add(str(target))
        return found

    producer = grants("ProducerPolicy")
    assert producer == {
        "sqs:SendMessage": {"{'Fn::GetAtt': ['JobsQueue', 'Arn']}"},
        "s3:PutObject": {"{'Fn::Sub': '${LyricsBucket.Arn}/*'}"},
    }, "send requests, upload lyric files: nothing else"
    operator = grants("OperatorPolicy")
    on_anything = {action for action, targets in operator.items() if "*" in targets}
    assert on_anything == {"sts:GetCallerIdentity"}, "it has no resource of its own"
    assert operator["cloudformation:DescribeStacks"] == {"{'Ref': 'AWS::StackId'}"}
    assert operator["lambda:InvokeFunction"] == {"{'Fn::GetAtt': ['WebhookFunction', 'Arn']}"}
    assert operator["secretsmanager:PutSecretValue"] == {"{'Ref': 'MusicApiKeySecret'}"}
    assert "secretsmanager:GetSecretValue" not in operator, "the key is put, never read"
    assert "sqs:SendMessage" in operator
    assert {"dynamodb:Query", "dynamodb:UpdateItem"} <= set(operator)
