"""The command line's arguments: every command, its options and its help."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lyrics_to_song.data.rows import JobState
from lyrics_to_song.song_request import (
    ALLOWED_BITRATES,
    ALLOWED_SAMPLE_RATES,
    DEFAULT_BITRATE,
    DEFAULT_SAMPLE_RATE,
)

from .spend_report import GROUPINGS
from .stack_target import DEFAULT_STACK_NAME

STACK_ENV = "LYRICS_TO_SONG_STACK"
# The reader of our output went away (`list | head`): the code a shell gives for SIGPIPE.
OUTPUT_CLOSED = 141
INTERRUPTED = 130  # Ctrl-C, as shells report a command stopped by SIGINT
# How long `wait` looks for a job that has no row yet before saying it does not exist.
MISSING_AFTER_SECONDS = 60.0


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
        help="your id for a request from --prompt/--lyrics: the same request again is one "
        "job, another request under the same id is refused (docs/inputs.md: Job identity); "
        "without one the request itself is its identity",
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
        "-o", "--output", metavar="FILE", help="with --wait: write the song there when it is made"
    )
    submit.add_argument(
        "-q", "--quiet", action="store_true", help="print only the job id (for scripts)"
    )
    _wait_options(submit)

    status = command("status", "show one job")
    _job_ref(status)

    listing = command("list", "list jobs, newest first")
    listing.add_argument(
        "--status",
        "--state",
        dest="status",
        choices=[s.value for s in JobState],
        type=str.upper,
        help="only this state",
    )
    listing.add_argument("--tenant", help="only this tenant's jobs")
    listing.add_argument(
        "--since", help="only jobs created since (a date, UTC midnight, or an ISO 8601 time)"
    )
    listing.add_argument(
        "--limit", type=POSITIVE_INT, default=20, help="at most this many (default 20)"
    )

    wait = command("wait", "show progress until the job has its song or has failed")
    _job_ref(wait)
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

    _stack_commands(command)
    resubmit = command("resubmit", "pay again for a FAILED, TIMED_OUT, UNKNOWN or CANCELLED job")
    resubmit.add_argument("job", help="job id (job-…)")
    resubmit.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    resubmit.add_argument(
        "--force",
        action="store_true",
        help="resubmit a job whose failure would most likely repeat (its content refused)",
    )
    resubmit.add_argument("--wait", action="store_true", help="then wait for the new ending")
    _wait_options(resubmit)

    _tenant_commands(command)

    # Listed for --help; main() hands their arguments to the local stack's tools unparsed.
    commands.add_parser(
        "demo", help="run the whole pipeline on this machine and write an MP3 (dev extras)"
    )
    commands.add_parser("local", help="keep the local stack running for --local (dev extras)")
    return parser


def _stack_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The stack's facts and key, and cancelling waiting jobs."""
    stack = command("stack", "the stack's outputs and settings, and whether its API key is set")
    stack.add_argument("action", choices=["show"])
    key = command(
        "key", "put the music API key where the functions read it (standard input or a prompt)"
    )
    key.add_argument("action", choices=["set"])

    cancel = command("cancel", "end a job that waits in line (HELD), unpaid")
    _job_ref(cancel)
    cancel.add_argument(
        "--held", action="store_true", help="every job of --tenant that waits (instead of JOB)"
    )


def _tenant_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The commands about producers: the tenants themselves, their caps, their default
    callback, what they spent."""
    tenants = command(
        "tenants",
        "the stack's tenants: only a registered one may submit, be capped, bound or signed "
        "for (docs/producers.md)",
    )
    add, _, show_one, pause, resume, remove, import_known = _actions(
        tenants,
        add="register a tenant (then set its caps, senders and callback)",
        list="every tenant: paused or not, its caps, senders and jobs under way",
        show="one tenant",
        pause="hold the tenant's new jobs, unpaid, until it is resumed (paid ones go on)",
        resume="let the tenant's jobs go again, its held ones at once",
        remove="remove a tenant with no job under way: its name is refused from then on, "
        "its senders unbound, its webhook secret retired",
        **{
            "import": "register every tenant an earlier version knew by name (caps, "
            "senders, a callback, a secret or jobs): once, on upgrade"
        },
    )
    for action in (add, show_one, pause, resume, remove):
        action.add_argument("name", help="the tenant's name")
    import_known.add_argument(
        "--overlap-hours",
        type=POSITIVE_SECONDS,
        default=72.0,
        help="on upgrade, how long the secret default's receivers held before (the root "
        "key) still signs default's webhooks beside its new one (72)",
    )
    caps = command(
        "caps",
        "show or set a tenant's own caps (songs per UTC day, songs in flight), beside the "
        "stack's; they apply from the next submission, without a redeploy",
    )
    show, set_caps, unset_caps = _actions(
        caps,
        show="a tenant's caps (its own, or the stack's defaults for tenants) and what is used "
        "of them today; without --tenant, every tenant with caps of its own",
        set="set a tenant's own caps; a tenant without any needs both; at most the stack's",
        unset="remove a tenant's own caps: it gets the defaults for tenants again",
    )
    show.add_argument("--tenant", help="the tenant (all with caps of their own when not given)")
    set_caps.add_argument("--tenant", help="the tenant (required)")
    unset_caps.add_argument("--tenant", required=True, help="the tenant")
    set_caps.add_argument("--per-day", type=POSITIVE_INT, help="songs submitted per UTC day")
    set_caps.add_argument("--in-flight", type=POSITIVE_INT, help="songs being made at once")
    set_caps.add_argument(
        "--monthly-credits",
        type=POSITIVE_INT,
        metavar="CREDITS",
        help="credits it may spend per UTC month (a song is CreditsPerSong, 30); more jobs "
        "are held until the month turns",
    )

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
    show_url.add_argument("--tenant", help="only this tenant's (default: every tenant's)")
    for action in (set_url, unset_url):
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
    show_secret, rotate, rotate_root, log, resend, recover, test = _actions(
        webhook,
        secret="print the tenant's signing secret (whsec_…), for its receiver, as the "  # noqa: S106 - a help text
        "webhook function derives it from the stack's root key (lambda:InvokeFunction on "
        "the stack's WebhookFunctionName; the root itself is never printed)",
        rotate="give the tenant a new secret; the old one signs too for --overlap-hours",
        **{
            "rotate-root": "a new root key: every tenant's secret changes; the old ones sign "
            "too for --overlap-hours"
        },
        log="every attempt of the job's webhooks: when, how long, what the receiver answered",
        resend="send the job's last notice again: the same webhook-id, a fresh signature",
        recover="send again every webhook given up or refused since a time",
        test='send a signed example notice ("test": true) to the tenant\'s receiver, or to '
        "--url, and print its answer",
    )
    test.add_argument("--tenant", default="default", help="whose secret signs it (default)")
    test.add_argument("--url", help="the receiver (default: the tenant's default callback_url)")
    for action in (show_secret, rotate):
        action.add_argument("--tenant", default="default", help="the tenant (default)")
    for action in (rotate, rotate_root):
        action.add_argument(
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


def _job_ref(parser: argparse.ArgumentParser) -> None:
    """A job named by what its producer knows: its id, a lyric file, or a request id."""
    parser.add_argument(
        "job",
        nargs="?",
        help="job id (job-…), or a lyric file's s3://bucket/key (the job of its content now)",
    )
    parser.add_argument(
        "--request-id", metavar="ID", help="the job of this request_id (instead of JOB)"
    )
    parser.add_argument("--tenant", help="the request_id's tenant (default 'default')")


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
    parser.add_argument(
        "--through-caps",
        action="store_true",
        help="keep waiting for a job held to another UTC day or month (else: exit 5 at once)",
    )
