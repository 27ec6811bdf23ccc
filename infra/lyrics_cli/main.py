"""`lyrics-to-song`: argument parsing, output and exit codes; the work is in jobs.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lyrics_to_song.check_timing import LikelyWindow
from lyrics_to_song.data.rows import RESUBMITTABLE, JobState, Row
from lyrics_to_song.song_request import (
    ALLOWED_BITRATES,
    ALLOWED_SAMPLE_RATES,
    DEFAULT_BITRATE,
    DEFAULT_SAMPLE_RATE,
)

from . import jobs, senders, spend_report, views, webhook_tools
from .spend_report import GROUPINGS
from .stack_target import DEFAULT_STACK_NAME, CliError, Cloud, ExitCode, aws_errors, connect

STACK_ENV = "LYRICS_TO_SONG_STACK"
# How long `wait` looks for a job that has no row yet before saying it does not exist.
MISSING_AFTER_SECONDS = 60.0
# The reader of our output went away (`list | head`): the code a shell gives for SIGPIPE.
OUTPUT_CLOSED = 141
INTERRUPTED = 130  # Ctrl-C, as shells report a command stopped by SIGINT
# The request fields a lyric file can set (front matter or JSON) and their flags.
FILE_FIELDS = ("prompt", "bitrate", "sample_rate", "model", "callback_url")


def _number(kind: type[int] | type[float], *, minimum: float, above: bool) -> Any:
    """An argparse type: a number of `kind` at least (or, with `above`, more than) `minimum`."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(
                f"{text} must be {'more than' if above else 'at least'} {minimum:g}"
            )
        return value

    return parse


POSITIVE_INT = _number(int, minimum=0, above=True)
POSITIVE_SECONDS = _number(float, minimum=0, above=True)
SECONDS = _number(float, minimum=0, above=False)


def _common(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """Options every command takes, before or after its name."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--stack",
        default=default(os.environ.get(STACK_ENV, DEFAULT_STACK_NAME)),
        help=f"CloudFormation stack name (default ${STACK_ENV} or {DEFAULT_STACK_NAME})",
    )
    parser.add_argument("--region", default=default(None), help="AWS region of the stack")
    parser.add_argument(
        "--endpoint-url", default=default(None), help="AWS endpoint (moto, LocalStack)"
    )
    parser.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help="use the local stack of `make local` (moto on 127.0.0.1:4566)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="machine-readable output"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lyrics-to-song",
        description="Turn lyrics into songs with a lyrics-to-song stack, and follow the jobs.",
        epilog="exit codes: 0 ok, 1 job failed / timed out / unknown outcome, 2 bad usage or "
        "input, 3 no such job, 4 stack not found / no credentials / AWS error, 5 wait timed "
        f"out, {INTERRUPTED} interrupted (Ctrl-C; jobs go on), {OUTPUT_CLOSED} the output "
        "was closed early (as by `| head`)",
    )
    _common(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _common(sub, defaults=False)
        return sub

    submit = command("submit", "upload a lyric file, or queue a request from --prompt/--lyrics")
    submit.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="lyric file (.txt or .json); --prompt, --bitrate, --sample-rate and --model are "
        "written into its front matter (or JSON) before it is uploaded",
    )
    submit.add_argument("--prompt", help="style and mood of the song")
    submit.add_argument("--lyrics", help="the lyrics ('-' reads them from standard input)")
    submit.add_argument("--key", help="S3 key for the FILE (default: its name)")
    submit.add_argument(
        "--request-id",
        help="your id for a request from --prompt/--lyrics (repeats are ignored); without one "
        "the request itself is its identity: the same prompt, lyrics and options twice are "
        "one song",
    )
    submit.add_argument(
        "--bitrate",
        type=int,
        metavar="BPS",
        help=f"{', '.join(map(str, ALLOWED_BITRATES))} (default {DEFAULT_BITRATE})",
    )
    submit.add_argument(
        "--sample-rate",
        type=int,
        metavar="HZ",
        help=f"{', '.join(map(str, ALLOWED_SAMPLE_RATES))} (default {DEFAULT_SAMPLE_RATE})",
    )
    submit.add_argument("--model", help="model name (default: the stack's)")
    submit.add_argument(
        "--tenant",
        help="the producer it is for (docs/producers.md); default "
        "'default', or for a FILE the stack's rule (its metadata, or its first folder)",
    )
    submit.add_argument(
        "--callback-url",
        metavar="URL",
        help="https URL that gets the job's notice, signed, when it ends (docs/webhooks.md)",
    )
    submit.add_argument("--wait", action="store_true", help="then wait for the song")
    submit.add_argument(
        "-q", "--quiet", action="store_true", help="print only the job id (for scripts)"
    )
    _wait_options(submit)

    status = command("status", "show one job")
    status.add_argument("job", help="job id (job-…)")

    listing = command("list", "list jobs, newest first")
    listing.add_argument(
        "--status", choices=[s.value for s in JobState], type=str.upper, help="only this state"
    )
    listing.add_argument(
        "--limit", type=POSITIVE_INT, default=20, help="at most this many (default 20)"
    )

    wait = command("wait", "show progress until the job has its song or has failed")
    wait.add_argument("job", help="job id (job-…)")
    _wait_options(wait)
    wait.add_argument(
        "--missing-after",
        type=SECONDS,
        default=MISSING_AFTER_SECONDS,
        help="a job with no row after this many seconds is not found: exit 3 "
        f"(default {MISSING_AFTER_SECONDS:.0f}; a job just queued gets one within seconds)",
    )

    fetch = command("fetch", "download the song of a completed job")
    fetch.add_argument("job", help="job id (job-…)")
    fetch.add_argument(
        "-o", "--output", help="file to write ('-' for standard output; default: the song's name)"
    )

    resubmit = command("resubmit", "pay again for a FAILED, TIMED_OUT or UNKNOWN job")
    resubmit.add_argument("job", help="job id (job-…)")
    resubmit.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    resubmit.add_argument("--wait", action="store_true", help="then wait for the new ending")
    _wait_options(resubmit)

    _tenant_commands(command)

    # Listed for --help; main() hands their arguments to the local stack's tools unparsed.
    commands.add_parser(
        "demo", help="run the whole pipeline on this machine and write an MP3 (dev extras)"
    )
    commands.add_parser("local", help="keep the local stack running for --local (dev extras)")
    return parser


def _tenant_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The commands about producers: their caps, their default callback, what they spent."""
    caps = command(
        "caps",
        "show or set a tenant's own caps (songs per UTC day, songs in flight), beside the "
        "stack's; they apply from the next submission, without a redeploy",
    )
    show, set_caps = _actions(
        caps,
        show="a tenant's caps (its own, or the stack's defaults for tenants) and what is used "
        "of them today; without --tenant, every tenant with caps of its own",
        set="set a tenant's own caps; a tenant without any needs both",
    )
    show.add_argument("--tenant", help="the tenant (all with caps of their own when not given)")
    set_caps.add_argument("--tenant", help="the tenant (required)")
    set_caps.add_argument("--per-day", type=POSITIVE_INT, help="songs submitted per UTC day")
    set_caps.add_argument("--in-flight", type=POSITIVE_INT, help="songs being made at once")

    callback = command(
        "callback",
        "show, set or remove a tenant's default callback_url: the webhook of its jobs that "
        "name none (docs/webhooks.md)",
    )
    show_url, set_url, unset_url = _actions(
        callback,
        show="a tenant's default callback_url",
        set="set a tenant's default callback_url (--url)",
        unset="remove a tenant's default callback_url: its jobs then get no webhook "
        "unless they name one",
    )
    for action in (show_url, set_url, unset_url):
        action.add_argument("--tenant", required=True, help="the tenant ('default' for the rest)")
    set_url.add_argument("--url", required=True, help="the https URL")

    senders = command(
        "senders",
        "show, bind or unbind the senders (IAM users or roles, by their SQS SenderId) "
        "that may submit for a tenant under TenantPolicy=bound",
    )
    show_senders, bind, unbind = _actions(
        senders,
        show="every bound sender and its tenants (with --tenant, those that may submit for it)",
        bind="let a sender submit for a tenant (naming none, it submits for its only one); "
        "shows what it may now",
        unbind="take a tenant from a sender's; shows what it may now",
    )
    show_senders.add_argument("--tenant", help="only the senders of this tenant")
    for action in (bind, unbind):
        action.add_argument("--tenant", required=True, help="the tenant ('default' included)")
        action.add_argument(
            "--sender",
            required=True,
            help="the IAM user's or role's unique id (AIDA…, AROA…), as SQS's SenderId gives it",
        )

    webhook = command(
        "webhook", "what a tenant's webhook receiver needs to check deliveries (docs/webhooks.md)"
    )
    show_secret, rotate, log, resend, recover = _actions(
        webhook,
        secret="print the tenant's signing secret (whsec_…), for its receiver; reading it "  # noqa: S106 - a help text
        "needs secretsmanager:GetSecretValue on the stack's WebhookSecretArn",
        rotate="give the tenant a new secret; the old one signs too for --overlap-hours",
        log="every attempt of the job's webhooks: when, how long, what the receiver answered",
        resend="send the job's last notice again: the same webhook-id, a fresh signature",
        recover="send again every webhook given up or refused since a time",
    )
    for action in (show_secret, rotate):
        action.add_argument("--tenant", default="default", help="the tenant (default)")
    rotate.add_argument(
        "--overlap-hours",
        type=POSITIVE_SECONDS,
        default=24.0,
        help="how long both secrets sign, for receivers to change over (24)",
    )
    for action in (log, resend):
        action.add_argument("job", help="the job id (job-…)")
    recover.add_argument("--since", required=True, help="a date or time, UTC (2026-11-29)")
    recover.add_argument("--tenant", help="only this tenant's jobs")

    spend = command(
        "spend",
        "credits and dollars spent and how jobs ended, per UTC day's counters, and what is "
        "left of today's caps",
    )
    span = spend.add_mutually_exclusive_group()
    span.add_argument("--month", help="YYYY-MM (default: this month so far)")
    span.add_argument("--since", help="YYYY-MM-DD: from that day to today")
    spend.add_argument("--tenant", help="only this tenant")
    spend.add_argument("--by", choices=GROUPINGS, default="tenant", help="group by (tenant)")


def _actions(parser: argparse.ArgumentParser, **helps: str) -> list[argparse.ArgumentParser]:
    """A command's actions (`caps show`, `caps set`), each with its own options and help."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    made = []
    for name, help_text in helps.items():
        action = actions.add_parser(name, help=help_text, description=help_text)
        _common(action, defaults=False)
        made.append(action)
    return made


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=POSITIVE_SECONDS,
        default=900.0,
        help="give up after this many seconds (900)",
    )
    parser.add_argument(
        "--interval", type=POSITIVE_SECONDS, default=5.0, help="seconds between checks (5)"
    )


class Output:
    """Text for people on stdout, progress on stderr, or one JSON document for scripts;
    `id_only`: just the job id on stdout (`job=$(lyrics-to-song submit -q …)`)."""

    def __init__(self, as_json: bool, id_only: bool = False) -> None:
        self.as_json = as_json
        self.id_only = id_only

    def result(self, text: str, data: Any) -> None:
        if self.id_only and isinstance(data, dict) and "job_id" in data:
            print(data["job_id"])
        else:
            print(json.dumps(data, indent=2, ensure_ascii=False) if self.as_json else text)

    def progress(self, text: str) -> None:
        if not self.as_json:
            print(text, file=sys.stderr, flush=True)


def _prepared(args: argparse.Namespace) -> jobs.LyricUpload | dict[str, Any]:
    """The lyric file or song request to submit, checked before any AWS call: bad input
    is exit 2 whether or not the stack is reachable, and no flag is silently dropped."""
    if args.file is not None:
        if args.lyrics is not None:
            raise CliError("give a FILE or --lyrics, not both", ExitCode.USAGE)
        if args.request_id is not None:
            raise CliError(
                "--request-id names a request from --prompt/--lyrics; a FILE's job is named "
                "by its key and content",
                ExitCode.USAGE,
            )
        fields = {name: getattr(args, name) for name in FILE_FIELDS}
        return jobs.prepare_file(
            args.file,
            key=args.key,
            fields={k: v for k, v in fields.items() if v is not None},
            tenant=args.tenant,
        )
    if args.lyrics is None or args.prompt is None:
        raise CliError("give a lyric FILE, or both --prompt and --lyrics", ExitCode.USAGE)
    if args.key is not None:
        raise CliError(
            "--key names the uploaded FILE; a request from --prompt/--lyrics is queued",
            ExitCode.USAGE,
        )
    lyrics = sys.stdin.read() if args.lyrics == "-" else args.lyrics
    body: dict[str, Any] = {"prompt": args.prompt, "lyrics": lyrics}
    for name in ("request_id", "bitrate", "sample_rate", "model", "tenant", "callback_url"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    jobs.check_request(body)
    return body


def _submit(
    cloud: Cloud,
    prepared: jobs.LyricUpload | dict[str, Any],
    args: argparse.Namespace,
    out: Output,
) -> ExitCode:
    if isinstance(prepared, jobs.LyricUpload):
        submitted = jobs.upload_file(cloud, prepared)
    else:
        submitted = jobs.submit_request(cloud, prepared)
    text, data = _submitted_text(submitted, prepared, _again(args))
    if args.wait:
        out.progress(text.splitlines()[0])
        return _wait(cloud, submitted.job_id, args, out, refused_id=submitted.refused_id)
    out.result(text, data)
    return ExitCode.OK


def _submitted_text(
    submitted: jobs.Submitted, prepared: jobs.LyricUpload | dict[str, Any], again: str
) -> tuple[str, dict[str, Any]]:
    """What `submit` says: where the job went, or which earlier job the request already is."""
    job_id = submitted.job_id
    data: dict[str, Any] = {"job_id": job_id, "submitted_to": submitted.where, "new": True}
    earlier = submitted.earlier
    if earlier is not None:
        state = earlier.state.value + (f" ({earlier.error})" if earlier.error else "")
        data |= {"new": False, "state": earlier.state.value}
        follow = (
            f"{again} resubmit {job_id} pays for a new song"
            if earlier.state in RESUBMITTABLE
            else f"see it with: {again} status {job_id}"
        )
        return (
            f"{job_id}  already submitted: the same request is the same job, now {state}; "
            f"nothing new is paid\n{follow}",
            data,
        )
    where = submitted.where
    if isinstance(prepared, jobs.LyricUpload) and prepared.applied:
        flags = ", ".join("--" + name.replace("_", "-") for name in prepared.applied)
        where += f" ({flags} written into the file)"
        data["written_into_file"] = list(prepared.applied)
    return f"{job_id}  submitted to {where}\nfollow it with: {again} wait {job_id}", data


def _again(args: argparse.Namespace) -> str:
    """The command with the options that reach this stack, for the hints printed."""
    parts = ["lyrics-to-song"]
    if args.local:
        parts.append("--local")
    if args.stack != os.environ.get(STACK_ENV, DEFAULT_STACK_NAME):
        parts += ["--stack", args.stack]
    for flag, value in (("--region", args.region), ("--endpoint-url", args.endpoint_url)):
        if value:
            parts += [flag, value]
    return " ".join(parts)


def _wait(
    cloud: Cloud,
    job_id: str,
    args: argparse.Namespace,
    out: Output,
    *,
    resubmits: int = 0,
    refused_id: str | None = None,
) -> ExitCode:
    windows: dict[str | None, LikelyWindow] = {}

    def on_change(row: Row | None, elapsed: float) -> None:
        estimate = None
        if row is not None:
            if row.model not in windows:
                windows[row.model] = jobs.likely_window(cloud, row.model)
            estimate = views.expected(row, windows[row.model], time.time())
        out.progress(views.progress(row, elapsed, estimate))

    row = jobs.wait_for(
        cloud,
        job_id,
        timeout=args.timeout,
        interval=args.interval,
        on_change=on_change,
        resubmits=resubmits,
        # `submit --wait` and `resubmit --wait` know their job is on its way.
        missing_after=getattr(args, "missing_after", None),
        refused_id=refused_id,
    )
    out.result(views.describe(row, cloud.songs_bucket), views.job_dict(row, cloud.songs_bucket))
    return ExitCode.OK if row.state is JobState.COMPLETED else ExitCode.ENDED_BADLY


def _fetch(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    row = jobs.get_job(cloud, args.job)
    key = jobs.song_key_of(row)
    target = args.output or key.rsplit("/", 1)[-1]
    if target == "-":
        jobs.fetch(cloud, key, sys.stdout.buffer)
        return ExitCode.OK
    path = Path(target)
    partial = path.with_name(path.name + ".part")  # no half-written song under its name
    try:
        with partial.open("wb") as sink:
            size = jobs.fetch(cloud, key, sink)
        partial.replace(path)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}", ExitCode.USAGE) from None
    finally:
        partial.unlink(missing_ok=True)
    out.result(
        f"wrote {target} ({size} bytes)", {"job_id": row.job_id, "file": target, "bytes": size}
    )
    return ExitCode.OK


def _resubmit(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    row = jobs.get_job(cloud, args.job)
    jobs.check_resubmittable(row)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(
                "resubmitting pays for a new song: confirm with --yes when not at a terminal",
                ExitCode.USAGE,
            )
        answer = input(
            f"job {row.job_id} is {row.state.value}: {row.error}\n"
            "Resubmit it? This pays for a new song. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError("not resubmitted", ExitCode.USAGE)
    jobs.resubmit(cloud, row)
    if args.wait:
        out.progress(f"resubmission of {row.job_id} queued")
        return _wait(cloud, row.job_id, args, out, resubmits=row.resubmits + 1)
    out.result(
        f"{row.job_id}  resubmission queued; follow it with: {_again(args)} wait {row.job_id}",
        {"job_id": row.job_id, "resubmitted": True},
    )
    return ExitCode.OK


def _checked_first(args: argparse.Namespace) -> jobs.LyricUpload | dict[str, Any] | None:
    """Everything the command line can check alone, before any AWS call: bad input is
    exit 2 whether or not the stack is reachable. Returns what `submit` will send."""
    if hasattr(args, "job"):
        jobs.check_job_id(args.job)
    if args.command == "caps":
        _check_caps_usage(args)
    if args.command != "submit" and getattr(args, "tenant", None) is not None:
        jobs.check_job_tenant(args.tenant)  # submit's is checked with its request
    local = args.local or args.endpoint_url is not None
    if getattr(args, "callback_url", None) is not None:
        jobs.check_callback(args.callback_url, "--callback-url", local=local)
    if args.command == "callback" and args.action == "set":
        jobs.check_callback(args.url, "--url", local=local)
    if args.command == "webhook" and args.action == "recover":
        webhook_tools.since_time(args.since)
    if args.command == "senders" and args.action != "show":
        args.sender = senders.check_sender(args.sender)
    if args.command == "spend":
        spend_report.span(args.month, args.since, datetime.now(UTC).date())
    return _prepared(args) if args.command == "submit" else None


def _status(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    row = jobs.get_job(cloud, args.job)
    window = jobs.likely_window(cloud, row.model)
    estimate = views.expected(row, window, time.time())
    out.result(
        views.describe(row, cloud.songs_bucket, estimate),
        views.job_dict(row, cloud.songs_bucket, window),
    )
    return ExitCode.OK


def _list(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    state = JobState(args.status) if args.status else None
    rows = jobs.list_jobs(cloud, state=state, limit=args.limit)
    out.result(views.table(rows), [views.job_dict(r, cloud.songs_bucket) for r in rows])
    return ExitCode.OK


def _run(args: argparse.Namespace, out: Output) -> ExitCode:
    prepared = _checked_first(args)
    cloud = connect(
        args.stack, region=args.region, endpoint_url=args.endpoint_url, local=args.local
    )
    if prepared is not None:
        return _submit(cloud, prepared, args, out)
    commands: dict[str, Callable[[Cloud, argparse.Namespace, Output], ExitCode]] = {
        "status": _status,
        "list": _list,
        "wait": lambda cloud, args, out: _wait(cloud, args.job, args, out),
        "fetch": _fetch,
        "caps": _caps,
        "callback": _callback,
        "senders": _senders,
        "webhook": _webhook,
        "spend": _spend,
        "resubmit": _resubmit,
    }
    return commands[args.command](cloud, args, out)


def _spend(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    now = time.time()
    days = spend_report.span(args.month, args.since, datetime.fromtimestamp(now, UTC).date())
    found = spend_report.report(cloud, days, tenant=args.tenant, by=args.by, now=now)
    out.result(views.spend_text(found), views.spend_dict(found))
    return ExitCode.OK


def _check_caps_usage(args: argparse.Namespace) -> None:
    """What `caps` needs, checked before connecting."""
    if args.action == "set":
        if args.tenant is None:
            raise CliError("caps set needs --tenant", ExitCode.USAGE)
        if args.per_day is None and args.in_flight is None:
            raise CliError("caps set needs --per-day, --in-flight or both", ExitCode.USAGE)


def _caps(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.action == "set":
        jobs.set_caps(cloud, args.tenant, per_day=args.per_day, in_flight=args.in_flight)
    uses = jobs.caps_in_use(cloud, args.tenant, time.time())
    out.result(views.caps_table(uses), views.caps_dicts(uses))
    return ExitCode.OK


def _callback(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.action != "show":
        jobs.set_tenant_callback(cloud, args.tenant, getattr(args, "url", None))
    url = jobs.tenant_callback(cloud, args.tenant)
    text = f"tenant {args.tenant}: " + (
        f"jobs that name no callback_url are announced to {url}"
        if url
        else "no default callback_url (only jobs that name one get a webhook)"
    )
    out.result(text, {"tenant": args.tenant, "callback_url": url})
    return ExitCode.OK


def _senders(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.action == "show":
        found = senders.bindings(cloud, tenant=args.tenant)
    else:  # what the sender may do now
        senders.change(cloud, args.action, args.tenant, args.sender)
        found = senders.bindings(cloud, sender=args.sender)
    out.result(
        views.senders_text(found, cloud.tenant_policy),
        {
            "tenant_policy": cloud.tenant_policy,
            "senders": [{"sender": who, "tenants": tenants} for who, tenants in found.items()],
        },
    )
    return ExitCode.OK


def _webhook(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.action in ("secret", "rotate"):
        now = time.time()
        found = (
            webhook_tools.secrets(cloud, args.tenant, now)
            if args.action == "secret"
            else webhook_tools.rotate(cloud, args.tenant, args.overlap_hours * 3600, now)
        )
        out.result(views.secrets_text(found), views.secrets_dict(args.tenant, found))
    elif args.action == "log":
        row = jobs.get_job(cloud, args.job)
        out.result(views.webhook_log_text(row), views.webhook_dict(row))
    elif args.action == "resend":
        row = webhook_tools.resend(cloud, jobs.get_job(cloud, args.job), time.time())
        hook = row.webhook
        assert hook is not None
        out.result(
            f"{row.job_id}  webhook {hook.delivery_id} queued again; follow it with: "
            f"{_again(args)} webhook log {row.job_id}",
            views.webhook_dict(row),
        )
    else:
        since = webhook_tools.since_time(args.since)
        lost = webhook_tools.to_recover(cloud, since, args.tenant)
        sent = [webhook_tools.resend(cloud, row, time.time()) for row in lost]
        out.result(
            f"{len(sent)} webhook(s) given up or refused since {args.since} queued again"
            + "".join(f"\n  {row.job_id}  {row.tenant}" for row in sent),
            [views.webhook_dict(row) for row in sent],
        )
    return ExitCode.OK


def _local_tool(name: str, argv: list[str]) -> int:
    """`demo` and `local` run the local stack, which needs the dev extras (moto)."""
    try:
        if name == "demo":
            from local_cloud.demo import main as tool
        else:
            from local_cloud.serve import main as tool
    except ImportError as exc:
        print(
            f"error: `{name}` needs the local stack's packages ({exc.name} is missing): "
            "pip install 'lyrics-to-song[dev]', or run `make demo` in the repository",
            file=sys.stderr,
        )
        return ExitCode.ENVIRONMENT
    return tool(argv)


LOCAL_TOOLS = ("demo", "local")
_VALUE_OPTIONS = ("--stack", "--region", "--endpoint-url")


def _local_tool_call(argv: list[str]) -> tuple[str, list[str]] | None:
    """`demo ARGS` or `local ARGS`: everything after the name goes to that tool as is."""
    skip = False
    for i, token in enumerate(argv):
        if skip:
            skip = False
        elif token in _VALUE_OPTIONS:
            skip = True
        elif not token.startswith("-"):
            return (token, argv[i + 1 :]) if token in LOCAL_TOOLS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tool = _local_tool_call(argv)
    if tool is not None:
        return _local_tool(*tool)
    args = build_parser().parse_args(argv)
    out = Output(args.json, id_only=getattr(args, "quiet", False))
    try:
        code = _run(args, out)
        sys.stdout.flush()  # here, so a closed pipe is met below rather than at exit
        return code
    except CliError as exc:
        code = exc.code
        message = str(exc)
    except (ClientError, BotoCoreError) as exc:
        error = aws_errors(exc, args.endpoint_url)
        code, message = error.code, str(error)
    except KeyboardInterrupt:
        job = getattr(args, "job", None)
        print(
            "\ninterrupted: only this command stopped; a job already sent goes on in the stack"
            + (f" (lyrics-to-song status {job})" if job else ""),
            file=sys.stderr,
        )
        return INTERRUPTED
    except BrokenPipeError:
        # Whoever read the output stopped reading; nothing more to say, and nothing to flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OUTPUT_CLOSED
    if out.as_json:
        print(json.dumps({"error": message, "exit_code": int(code)}))
    print(f"error: {message}", file=sys.stderr)
    return code
