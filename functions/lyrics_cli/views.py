"""How jobs are shown: a dict for `--json`, lines of text for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lyrics_to_song.check_timing import LikelyWindow
from lyrics_to_song.data.rows import JobState, Row, WebhookState, whole_number
from lyrics_to_song.data.spend import Counts

from .line_place import Place
from .spend_report import SpendReport
from .tenant_settings import CapsUse
from .webhook_tools import Secrets


def when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def size_text(size: int | None) -> str:
    if size is None:
        return "size unknown"
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1e6:.1f} MB"


def expected(row: Row, window: LikelyWindow, now: float) -> str | None:
    """When the song should be ready, for a job the API is making (None otherwise)."""
    if row.state is not JobState.PENDING or row.submitted_at is None:
        return None
    age = now - row.submitted_at
    learned = (
        f"learned from {window.songs} songs"
        if window.songs
        else "the stack's TypicalSongSeconds, until it has 10 songs to learn from"
    )
    usual = f"usually ready {window.start:.0f}-{window.end:.0f} s after submission ({learned})"
    if age < window.start:
        return f"{age:.0f} s in; {usual}: in {window.start - age:.0f}-{window.end - age:.0f} s"
    if age <= window.end:
        return f"{age:.0f} s in; {usual}: within {window.end - age:.0f} s"
    return f"{age:.0f} s in, longer than usual; {usual}"


def expected_dict(row: Row, window: LikelyWindow) -> dict[str, Any] | None:
    if row.state is not JobState.PENDING or row.submitted_at is None:
        return None
    return {
        "from": when(row.submitted_at + window.start),
        "by": when(row.submitted_at + window.end),
        "learned_from_songs": window.songs,
    }


def hold_text(row: Row) -> str | None:
    """Why a job waits, and since when in its tenant's line (or, for a resubmission or a
    job an earlier version held, when it is tried again): docs/producers.md, Held jobs;
    None when nothing holds it."""
    hold = row.hold
    if hold is None:
        return None
    if row.line_at is not None:
        since = datetime.fromtimestamp(row.line_at, UTC).strftime("%H:%M:%S UTC")
        return f"{hold.reason}; in its tenant's line since {since}"
    again = datetime.fromtimestamp(hold.until, UTC).strftime("%H:%M:%S UTC")
    what = "" if row.state is JobState.HELD else "its resubmission waits: "
    return f"{what}{hold.reason}; tried again at {again}"


def hold_dict(row: Row) -> dict[str, Any] | None:
    hold = row.hold
    if hold is None:
        return None
    return {
        "cap": hold.cap,
        "reason": hold.reason,
        "since": when(hold.since),
        "in_line_since": when(row.line_at),
        "tried_again_at": None if row.line_at is not None else when(hold.until),
        "resubmission": row.state is not JobState.HELD,
    }


def job_dict(
    row: Row,
    songs_bucket: str,
    window: LikelyWindow | None = None,
    place: Place | None = None,
) -> dict[str, Any]:
    """The job as `--json` prints it (docs/command-line.md)."""
    return {
        "job_id": row.job_id,
        "state": row.state.value,
        "ended": row.state.terminal,
        "source": row.source,
        "request_id": row.request_id,
        "tenant": row.tenant,
        "task_id": row.task_id,
        "model": row.model,
        "created_at": when(row.created_at),
        "submitted_at": when(row.submitted_at),
        "finished_at": when(row.finished_at),
        "polls": row.polls,
        "error": row.error,
        "held": hold_dict(row),
        "line": place.as_dict() if place else None,
        "song": (
            {
                "s3_uri": f"s3://{songs_bucket}/{row.song_key}",
                "bytes": row.song_bytes,
                "duration_seconds": row.duration_seconds,
            }
            if row.song_key
            else None
        ),
        "notified": row.notified,
        "resubmits": row.resubmits,
        "cost": row.charge.as_dict(),
        "expected_ready": expected_dict(row, window) if window else None,
        "callback_url": row.callback_url,
        "webhook": webhook_dict(row),
        "workflow": (
            {"state": row.task.state, "attempts": row.task.attempts, "answer": row.task.answer}
            if row.task
            else None
        ),
    }


def webhook_dict(row: Row) -> dict[str, Any] | None:
    hook = row.webhook
    if hook is None:
        return None
    return {
        "state": hook.state.value,
        "delivery_id": hook.delivery_id,
        "attempts": hook.attempts,
        "last_answer": hook.answer,
        "queued_at": when(hook.queued_at),
        "ended_at": when(hook.ended_at),
        "next_attempt_at": when(hook.next_at),
        "log": [
            {
                "delivery_id": attempt.delivery_id,
                "at": when(attempt.at),
                "seconds": attempt.seconds,
                "answer": attempt.answer,
            }
            for attempt in hook.log
        ],
    }


def webhook_log_text(row: Row) -> str:
    """`webhook log JOB`: each attempt, oldest first, then where the webhook stands."""
    hook = row.webhook
    if hook is None:
        return f"job {row.job_id} has sent no webhook"
    lines = [f"{'AT':<20}  {'SECONDS':>7}  {'DELIVERY':<36}  ANSWER"]
    lines += [
        f"{when(a.at):<20}  {a.seconds:>7.2f}  {a.delivery_id:<36}  {a.answer}" for a in hook.log
    ]
    return "\n".join([*lines, f"now: {webhook_text(row)}"])


def webhook_text(row: Row) -> str | None:
    """The webhook of the job's latest ending, in a line (docs/webhooks.md)."""
    hook = row.webhook
    if hook is None:
        return f"to {row.callback_url}, when the job ends" if row.callback_url else None
    tries = f"{hook.attempts} attempt{'s' if hook.attempts != 1 else ''}"
    answer = f", last answer: {hook.answer}" if hook.answer else ""
    if hook.state is WebhookState.DELIVERED:
        return f"delivered at {when(hook.ended_at)} ({tries}{answer})"
    if hook.state is WebhookState.PENDING:
        later = f", next at {when(hook.next_at)}" if hook.next_at else ""
        return f"pending ({tries}{answer}{later})"
    return f"{hook.state.value} at {when(hook.ended_at)} ({tries}{answer})"


def describe(
    row: Row, songs_bucket: str, estimate: str | None = None, place: Place | None = None
) -> str:
    """A few aligned lines about one job (`estimate`: when its song should be ready;
    `place`: where it waits in line)."""
    lines = [
        ("job", row.job_id),
        ("state", row.state.value),
        ("source", row.source),
        ("request", row.request_id),
        ("task", row.task_id),
        ("created", when(row.created_at)),
        ("submitted", when(row.submitted_at)),
        ("finished", when(row.finished_at)),
        ("error", row.error),
        ("held", hold_text(row)),
        ("in line", place.text() if place else None),
        ("expected", estimate),
        ("tenant", row.tenant),
        ("cost", cost_text(row)),
        ("webhook", webhook_text(row)),
        ("workflow", workflow_text(row)),
    ]
    if row.song_key:
        size = size_text(row.song_bytes)
        length = f", {row.duration_seconds:.0f} s" if row.duration_seconds else ""
        lines.append(("song", f"s3://{songs_bucket}/{row.song_key} ({size}{length})"))
    if row.resubmits:
        lines.append(("resubmits", str(row.resubmits)))
    return "\n".join(f"{name:<10} {value}" for name, value in lines if value)


def workflow_text(row: Row) -> str | None:
    """How the Step Functions task waiting for the job was answered (docs/step-functions.md)."""
    task = row.task
    if task is None:
        return None
    said = f" ({task.answer})" if task.answer and task.answer != task.state else ""
    return f"Step Functions task {task.state}{said}"


def cost_text(row: Row) -> str:
    """What the job has cost, from what the row recorded at each submission."""
    charge = row.charge.as_dict()
    paid = f"{charge['credits']} credits (${charge['usd']:.2f})"
    maybe = f"{charge['maybe_credits']} credits (${charge['maybe_usd']:.2f})"
    if charge["status"] == "charged":
        return paid + (f", and maybe {maybe} more" if charge["maybe_credits"] else "")
    if charge["status"] == "maybe charged":
        return f"maybe {maybe}: the outcome of its submission is unknown, ask the API"
    return "nothing"


def table(rows: list[Row], places: dict[str, Place] | None = None) -> str:
    """One line per job, newest first (`places`: of those waiting in line)."""
    if not rows:
        return "no jobs"
    header = f"{'JOB':<36}  {'STATE':<10}  {'CREATED':<20}  SOURCE / ERROR"
    lines = [header]
    for row in rows:
        held = hold_text(row)
        place = (places or {}).get(row.job_id)
        held = f"{held}; {place.short()}" if held and place else held
        detail = f"held: {held}" if held else row.error or row.source
        lines.append(
            f"{row.job_id:<36}  {row.state.value:<10}  {when(row.created_at):<20}  {detail}"
        )
    return "\n".join(lines)


def progress(row: Row | None, elapsed: float, estimate: str | None = None) -> str:
    """One line for `wait` each time the job moves on."""
    if row is None:
        what = "queued: waiting for the submit function to take it"
    elif row.hold is not None:
        what = f"HELD: {hold_text(row)}" + (f"; {estimate}" if estimate else "")
    elif row.state.terminal:
        what = row.state.value + (f": {row.error}" if row.error else "")
    elif row.task_id:
        checks = f"{row.polls} check" + ("" if row.polls == 1 else "s")
        what = f"{row.state.value}: the music API is making the song ({checks} so far)"
        if estimate:
            what += f"; {estimate}"
    else:
        what = f"{row.state.value}: sending it to the music API"
    return f"[{elapsed:5.0f} s] {what}"


def caps_table(uses: list[CapsUse]) -> str:
    """Tenants' caps, one line each, with what is used of them now."""
    if not uses:
        return "no tenant has caps of its own (set some: `lyrics-to-song caps set --help`)"
    budgets = any(use.caps.monthly_credits is not None for use in uses)
    month = f"  {'CREDITS THIS MONTH':>18}" if budgets else ""
    lines = [f"{'TENANT':<32}  {'TODAY / PER DAY':>15}  {'IN FLIGHT / AT ONCE':>19}{month}"]
    for use in uses:
        day = f"{use.today} / {use.caps.per_day}"
        flight = f"{use.in_flight} / {use.caps.in_flight}"
        budget = use.caps.monthly_credits
        spent = f"{use.month_credits} / {budget}" if budget is not None else "-"
        mark = "" if use.caps.own else "  (the stack's defaults for tenants)"
        used = f"  {spent:>18}" if budgets else ""
        lines.append(f"{use.caps.tenant:<32}  {day:>15}  {flight:>19}{used}{mark}")
    return "\n".join(lines)


def caps_dicts(uses: list[CapsUse]) -> list[dict[str, Any]]:
    return [
        {
            "tenant": use.caps.tenant,
            "per_day": use.caps.per_day,
            "in_flight": use.caps.in_flight,
            "used_today": use.today,
            "in_flight_now": use.in_flight,
            "own": use.caps.own,
            "monthly_credits": use.caps.monthly_credits,
            "credits_this_month": use.month_credits,
        }
        for use in uses
    ]


ENDINGS = ("COMPLETED", "FAILED", "TIMED_OUT", "UNKNOWN", "CANCELLED")


def spend_text(report: SpendReport) -> str:
    """The span's spend per group, its total, what is left today, and the doubts."""
    lines = [f"spent from {report.first} to {report.last} (UTC), by {report.by}"]
    if report.by == "state":
        lines.append(f"{'STATE':<12}  {'ENDINGS':>7}")
        lines += [f"{name:<12}  {c.ended[name]:>7}" for name, c in report.groups.items()]
    else:
        header = f"{report.by.upper():<32}  {'SONGS':>5}  {'CREDITS':>8}  {'USD':>9}  {'MAYBE':>6}"
        lines.append(header + "".join(f"  {state:>9}" for state in ENDINGS))
        for name, counts in [*report.groups.items(), ("total", report.total)]:
            lines.append(_spend_line(name, counts))
    for cap in report.today:
        whose = "the stack" if cap.tenant is None else f"tenant {cap.tenant}"
        lines.append(f"today: {whose} {cap.used} of {cap.cap} songs, {cap.left} left")
    for cap in report.this_month:
        lines.append(
            f"this month: tenant {cap.tenant} {cap.used} of {cap.cap} credits, {cap.left} left"
        )
    if report.held:
        per_tenant = ", ".join(f"{tenant} {n}" for tenant, n in report.held.items())
        lines.append(
            f"held by a cap now: {sum(report.held.values())} job(s), unpaid ({per_tenant}); "
            "see `lyrics-to-song list --status HELD`"
        )
    if report.maybe_jobs:
        lines.append(
            f"maybe charged: {len(report.maybe_jobs)} job(s) whose outcome is unknown; "
            "check them with the API before resubmitting:"
        )
        lines += [f"  {job}  {tenant}  {day}" for job, tenant, day in report.maybe_jobs]
    return "\n".join(lines)


def _spend_line(name: str, counts: Counts) -> str:
    line = (
        f"{name:<32}  {counts.charged_songs:>5}  {counts.charged_credits:>8g}  "
        f"{counts.charged_usd:>9.2f}  {counts.maybe_credits:>6g}"
    )
    return line + "".join(f"  {counts.ended.get(state, 0):>9}" for state in ENDINGS)


def _counts_dict(counts: Counts) -> dict[str, Any]:
    return {
        "charged_songs": counts.charged_songs,
        "credits": whole_number(counts.charged_credits),
        "usd": round(counts.charged_usd, 4),
        "maybe_songs": counts.maybe_songs,
        "maybe_credits": whole_number(counts.maybe_credits),
        "maybe_usd": round(counts.maybe_usd, 4),
        "ended": dict(sorted(counts.ended.items())),
    }


def spend_dict(report: SpendReport) -> dict[str, Any]:
    return {
        "from": report.first,
        "to": report.last,
        "by": report.by,
        "groups": {name: _counts_dict(counts) for name, counts in report.groups.items()},
        "total": _counts_dict(report.total),
        "today": [
            {"tenant": cap.tenant, "cap": cap.cap, "used": cap.used, "left": cap.left}
            for cap in report.today
        ],
        "this_month": [
            {"tenant": cap.tenant, "credits": cap.cap, "used": cap.used, "left": cap.left}
            for cap in report.this_month
        ],
        "maybe_charged_jobs": [
            {"job_id": job, "tenant": tenant, "day": day} for job, tenant, day in report.maybe_jobs
        ],
        "held_jobs": report.held,
    }


def senders_text(found: dict[str, list[str]], policy: str | None) -> str:
    """`senders show`: each bound sender and its tenants, and what the policy does."""
    if policy == "open":
        rule = "TenantPolicy=open: any sender may name any tenant; bindings are not checked"
    else:
        rule = "TenantPolicy=bound: a sender bound to none may submit for the default tenant only"
    if not found:
        return f"no sender is bound to a tenant\n{rule}"
    width = max(len("SENDER"), *(len(sender) for sender in found))
    lines = [f"{'SENDER':<{width}}  TENANTS"]
    lines += [f"{sender:<{width}}  {', '.join(tenants)}" for sender, tenants in found.items()]
    return "\n".join([*lines, rule])


def secrets_text(found: Secrets) -> str:
    """The current secret alone on its line (for `$(…)`), and the old one's end."""
    lines = [found.current]
    if found.previous is not None:
        lines.append(
            f"(the previous secret, {found.previous}, signs too until "
            f"{when(found.previous_until)}: every delivery carries both signatures till then)"
        )
    if found.legacy_until is not None:
        lines.append(
            "(the secret default's receivers held before this version signs too until "
            f"{when(found.legacy_until)}: give them this one before then)"
        )
    return "\n".join(lines)


def secrets_dict(tenant: str, found: Secrets) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "secret": found.current,
        "previous_secret": found.previous,
        "previous_until": when(found.previous_until),
        "legacy_until": when(found.legacy_until),
    }
