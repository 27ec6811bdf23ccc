"""What each command does with its arguments: the calls (jobs.py and its kin), the
output (views.py), the exit code."""

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

from lyrics_to_song.check_timing import LikelyWindow
from lyrics_to_song.data.rows import RESUBMITTABLE, JobState, Row

from . import (
    cancel_jobs,
    jobs,
    line_place,
    senders,
    spend_report,
    stack_facts,
    tenant_admin,
    tenant_settings,
    tenant_views,
    views,
    webhook_test,
    webhook_tools,
)
from .parser import STACK_ENV
from .stack_target import DEFAULT_STACK_NAME, CliError, Cloud, ExitCode, connect

# The request fields a lyric file can set (front matter or JSON) and their flags.
FILE_FIELDS = ("prompt", "bitrate", "sample_rate", "model", "callback_url")


class Output:
    """Text for people on stdout, progress on stderr, or one JSON document for scripts;
    `id_only`: just the job id on stdout (`job=$(lyrics-to-song submit -q …)`)."""

    def __init__(self, as_json: bool, id_only: bool = False, command: str = "") -> None:
        self.as_json = as_json
        self.id_only = id_only
        self.command = command  # `again(args)`: hints name the stack as this command did

    def hinted(self, text: str) -> str:
        """The text with each `lyrics-to-song …` hint carrying the options that reach this
        stack (--local, --stack, --region, --endpoint-url), as the command was run."""
        if not self.command or self.command == "lyrics-to-song":
            return text
        return text.replace("`lyrics-to-song ", f"`{self.command} ")

    def result(self, text: str, data: Any) -> None:
        if self.id_only and isinstance(data, dict) and "job_id" in data:
            print(data["job_id"])
        else:
            print(
                json.dumps(data, indent=2, ensure_ascii=False)
                if self.as_json
                else self.hinted(text)
            )

    def progress(self, text: str) -> None:
        if not self.as_json:
            print(self.hinted(text), file=sys.stderr, flush=True)


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
    if args.tenant is not None:
        tenant_admin.require(cloud, args.tenant)
    if isinstance(prepared, jobs.LyricUpload):
        submitted = jobs.upload_file(cloud, prepared)
    else:
        submitted = jobs.submit_request(cloud, prepared)
    text, data = _submitted_text(submitted, prepared, again(args))
    if args.wait:
        out.progress(text.splitlines()[0])
        code = _wait(cloud, submitted.job_id, args, out, refused_id=submitted.refused_id)
        if code is ExitCode.OK and args.output:  # `submit --wait -o FILE`: the song too
            key = jobs.song_key_of(jobs.get_job(cloud, submitted.job_id))
            out.progress(f"wrote {args.output} ({_save_song(cloud, key, args.output)} bytes)")
        return code
    refused = jobs.refused_for_its_tenant(cloud, submitted, prepared)
    if refused is not None:  # never print an id that will not exist
        out.result(
            f"{refused.job_id}  refused, unpaid: {refused.error}",
            {**views.job_dict(refused, cloud.songs_bucket), "refused": True},
        )
        out.progress(f"refused, unpaid: {refused.error}")
        return ExitCode.ENDED_BADLY
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


def again(args: argparse.Namespace) -> str:
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
        estimate, place = None, None
        if row is not None:
            if row.model not in windows:
                windows[row.model] = jobs.likely_window(cloud, row.model)
            window, now = windows[row.model], time.time()
            place = line_place.place_of(cloud, row, window, now)
            estimate = place.text() if place else views.expected(row, window, now)
        out.progress(views.progress(row, elapsed, estimate))
        if row is not None and place is not None and place.later_day and not args.through_caps:
            raise CliError(
                f"job {row.job_id} is held to another UTC day or month ({place.text()}); "
                f"it goes on: wait again then ({again(args)} wait {row.job_id}), or wait "
                "through with --through-caps",
                ExitCode.TIMEOUT,
            )

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
    size = _save_song(cloud, key, target)
    out.result(
        f"wrote {target} ({size} bytes)", {"job_id": row.job_id, "file": target, "bytes": size}
    )
    return ExitCode.OK


def _save_song(cloud: Cloud, key: str, target: str) -> int:
    """The song into `target` (written as `target.part`, then renamed: no half song is
    left under its name); its size."""
    path = Path(target)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as sink:
            size = jobs.fetch(cloud, key, sink)
        partial.replace(path)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}", ExitCode.USAGE) from None
    finally:
        partial.unlink(missing_ok=True)
    return size


def _resubmit(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    row = jobs.get_job(cloud, args.job)
    jobs.check_resubmittable(row)
    jobs.check_not_repeating(row, args.force)
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
        f"{row.job_id}  resubmission queued; follow it with: {again(args)} wait {row.job_id}",
        {"job_id": row.job_id, "resubmitted": True},
    )
    return ExitCode.OK


def _stack(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    found = stack_facts.facts(cloud)
    out.result(stack_facts.facts_text(found), stack_facts.facts_dict(found))
    return ExitCode.OK


def _key(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    arn = stack_facts.put_key(cloud, stack_facts.read_key())
    out.result(
        f"the API key is set in {arn}; the functions read it within 5 minutes (their cache)",
        {"secret_arn": arn, "set": True},
    )
    return ExitCode.OK


def _cancel(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.held:
        done = cancel_jobs.cancel_tenants_waiting(cloud, args.tenant)
        out.result(
            f"cancelled {len(done)} waiting job(s) of tenant {args.tenant}, unpaid; "
            "their notices go out from the next poll run",
            {"tenant": args.tenant, "cancelled": done},
        )
        return ExitCode.OK
    row = cancel_jobs.cancel_one(cloud, jobs.get_job(cloud, args.job))
    said = (
        "CANCELLED, unpaid; its notice goes out from the next poll run"
        if row.state is JobState.CANCELLED
        else f"its resubmission withdrawn, unpaid; it stays {row.state.value}"
    )
    out.result(f"{row.job_id}  {said}", views.job_dict(row, cloud.songs_bucket))
    return ExitCode.OK


def _check_job_args(args: argparse.Namespace) -> None:
    """The job a command names: by id, lyric file or request id (or, for `cancel
    --held`, a tenant's waiting jobs)."""
    if args.command == "cancel" and args.held:
        if args.tenant is None or args.job is not None or args.request_id is not None:
            raise CliError("cancel --held needs --tenant T, and no JOB", ExitCode.USAGE)
    elif args.command in ("status", "wait", "cancel"):
        jobs.check_job_ref(args.job, args.request_id, args.tenant)
    elif hasattr(args, "job"):
        jobs.check_job_id(args.job)


def _checked_first(args: argparse.Namespace) -> jobs.LyricUpload | dict[str, Any] | None:
    """Everything the command line can check alone, before any AWS call: bad input is
    exit 2 whether or not the stack is reachable. Returns what `submit` will send."""
    _check_job_args(args)
    if args.command == "caps":
        _check_caps_usage(args)
    if args.command != "submit" and getattr(args, "tenant", None) is not None:
        tenant_settings.check_job_tenant(args.tenant)  # submit's is checked with its request
    local = args.local or args.endpoint_url is not None
    if getattr(args, "callback_url", None) is not None:
        jobs.check_callback(args.callback_url, "--callback-url", local=local)
    if args.command == "callback" and args.action == "set":
        jobs.check_callback(args.url, "--url", local=local)
    if args.command == "webhook" and args.action == "recover":
        webhook_tools.since_time(args.since)
    if args.command == "senders" and args.action != "show":
        args.sender = senders.check_sender(args.sender)
    if args.command == "submit" and args.output and (not args.wait or args.output == "-"):
        raise CliError(
            "-o FILE goes with --wait (the song is written once it is made)", ExitCode.USAGE
        )
    if args.command == "list" and args.since:
        webhook_tools.since_time(args.since)
    if args.command == "spend":
        spend_report.span(args.month, args.since, datetime.now(UTC).date())
    return _prepared(args) if args.command == "submit" else None


def _status(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    row = jobs.get_job(cloud, args.job)
    window, now = jobs.likely_window(cloud, row.model), time.time()
    estimate = views.expected(row, window, now)
    place = line_place.place_of(cloud, row, window, now)
    out.result(
        views.describe(row, cloud.songs_bucket, estimate, place),
        views.job_dict(row, cloud.songs_bucket, window, place),
    )
    return ExitCode.OK


def _list(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    state = JobState(args.status) if args.status else None
    since = webhook_tools.since_time(args.since) if args.since else None
    if args.tenant is not None:
        tenant_admin.require(cloud, args.tenant, removed_ok=True)
    rows = jobs.list_jobs(cloud, state=state, limit=args.limit, tenant=args.tenant, since=since)
    now, windows = time.time(), {m: jobs.likely_window(cloud, m) for m in _held_models(rows)}
    places = {
        r.job_id: place
        for r in rows
        if r.model in windows and (place := line_place.place_of(cloud, r, windows[r.model], now))
    }
    out.result(
        views.table(rows, places),
        [views.job_dict(r, cloud.songs_bucket, place=places.get(r.job_id)) for r in rows],
    )
    return ExitCode.OK


def _held_models(rows: list[Row]) -> set[str | None]:
    return {r.model for r in rows if r.state is JobState.HELD and r.line_at is not None}


def run(args: argparse.Namespace, out: Output) -> ExitCode:
    prepared = _checked_first(args)
    cloud = connect(
        args.stack, region=args.region, endpoint_url=args.endpoint_url, local=args.local
    )
    if prepared is not None:
        return _submit(cloud, prepared, args, out)
    if args.command in ("status", "wait", "cancel"):
        if args.tenant is not None:
            tenant_admin.require(cloud, args.tenant, removed_ok=True)
        if not getattr(args, "held", False):
            args.job = jobs.resolve_job(cloud, args.job, args.request_id, args.tenant)
    commands: dict[str, Callable[[Cloud, argparse.Namespace, Output], ExitCode]] = {
        "status": _status,
        "list": _list,
        "wait": lambda cloud, args, out: _wait(cloud, args.job, args, out),
        "fetch": _fetch,
        "tenants": _tenants,
        "caps": _caps,
        "callback": _callback,
        "senders": _senders,
        "webhook": _webhook,
        "spend": _spend,
        "resubmit": _resubmit,
        "cancel": _cancel,
        "stack": _stack,
        "key": _key,
    }
    return commands[args.command](cloud, args, out)


def _tenants(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    said, shown = tenant_admin.act(
        cloud,
        args.action,
        getattr(args, "name", None),
        time.time(),
        getattr(args, "overlap_hours", 72.0),
    )
    found = tenant_admin.views(cloud, shown)
    text = said + tenant_views.tenants_text(found, cloud.tenant_defaults)
    out.result(text, [tenant_views.tenant_dict(view) for view in found])
    return ExitCode.OK


def _spend(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.tenant is not None:
        tenant_admin.require(cloud, args.tenant, removed_ok=True)
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
        if args.per_day is None and args.in_flight is None and args.monthly_credits is None:
            raise CliError(
                "caps set needs --per-day, --in-flight, --monthly-credits or several",
                ExitCode.USAGE,
            )


def _caps(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.tenant is not None:
        tenant_admin.require(cloud, args.tenant)
    if args.action == "set":
        tenant_settings.set_caps(
            cloud,
            args.tenant,
            per_day=args.per_day,
            in_flight=args.in_flight,
            monthly_credits=args.monthly_credits,
        )
    elif args.action == "unset":
        tenant_settings.unset_caps(cloud, args.tenant)
    uses = tenant_settings.caps_in_use(cloud, args.tenant, time.time())
    out.result(views.caps_table(uses), views.caps_dicts(uses))
    return ExitCode.OK


def _callback(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.tenant is None:  # `callback show`: every tenant's, as `caps show` lists them
        found = {t.name: t.callback_url for t in tenant_admin.registry(cloud).all() if t.known}
        lines = [f"{'TENANT':<32}  DEFAULT CALLBACK_URL"]
        lines += [f"{name:<32}  {url or '-'}" for name, url in sorted(found.items())]
        out.result(
            "\n".join(lines),
            [{"tenant": name, "callback_url": url} for name, url in sorted(found.items())],
        )
        return ExitCode.OK
    tenant_admin.require(cloud, args.tenant)
    if args.action != "show":
        tenant_settings.set_tenant_callback(cloud, args.tenant, getattr(args, "url", None))
    url = tenant_settings.tenant_callback(cloud, args.tenant)
    text = f"tenant {args.tenant}: " + (
        f"jobs that name no callback_url are announced to {url}"
        if url
        else "no default callback_url (only jobs that name one get a webhook)"
    )
    out.result(text, {"tenant": args.tenant, "callback_url": url})
    return ExitCode.OK


def _senders(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if args.tenant is not None:
        tenant_admin.require(cloud, args.tenant, removed_ok=args.action != "bind")
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


def _webhook_test(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    url = args.url or tenant_settings.tenant_callback(cloud, args.tenant)
    if url is None:
        raise CliError(
            f"tenant {args.tenant} has no default callback_url: name a receiver with --url",
            ExitCode.USAGE,
        )
    # Sent from this machine, not the stack's: a receiver on loopback may be tried too.
    jobs.check_callback(url, "--url", local=True)
    answer = webhook_test.send(cloud, args.tenant, url)
    ok = 200 <= answer.status < 300
    out.result(
        f"{url} answered {answer.answer} in {answer.seconds:.2f} s "
        f"(webhook-id {answer.delivery_id}, signed for tenant {args.tenant})"
        + ("" if ok else ": a real notice would be tried again later"),
        {
            "url": url,
            "tenant": args.tenant,
            "delivery_id": answer.delivery_id,
            "status": answer.status,
            "answer": answer.answer,
            "delivered": ok,
        },
    )
    return ExitCode.OK if ok else ExitCode.ENDED_BADLY


def _webhook(cloud: Cloud, args: argparse.Namespace, out: Output) -> ExitCode:
    if getattr(args, "tenant", None) is not None:
        tenant_admin.require(cloud, args.tenant, removed_ok=args.action == "recover")
    if args.action in ("secret", "rotate"):
        now = time.time()
        found = (
            webhook_tools.secrets(cloud, args.tenant, now)
            if args.action == "secret"
            else webhook_tools.rotate(cloud, args.tenant, args.overlap_hours * 3600, now)
        )
        out.result(views.secrets_text(found), views.secrets_dict(args.tenant, found))
    elif args.action == "rotate-root":
        until = webhook_tools.rotate_root(cloud, args.overlap_hours * 3600, time.time())
        out.result(
            "a new root key: every tenant's secret is new (`webhook secret --tenant T` prints "
            f"each); the old ones sign too until {views.when(until)}",
            {"previous_until": views.when(until)},
        )
    elif args.action == "test":
        return _webhook_test(cloud, args, out)
    elif args.action == "log":
        row = jobs.get_job(cloud, args.job)
        out.result(views.webhook_log_text(row), views.webhook_dict(row))
    elif args.action == "resend":
        row = webhook_tools.resend(cloud, jobs.get_job(cloud, args.job), time.time())
        hook = row.webhook
        assert hook is not None
        out.result(
            f"{row.job_id}  webhook {hook.delivery_id} queued again; follow it with: "
            f"{again(args)} webhook log {row.job_id}",
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
