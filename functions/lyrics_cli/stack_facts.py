"""`lyrics-to-song stack show` and `lyrics-to-song key set`: the stack's facts in one
place, and the music API key put where the functions read it (docs/deploy.md)."""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from lyrics_to_song.errors import MusicApiError
from lyrics_to_song.services import checked_key

from .stack_target import CliError, Cloud, ExitCode

KEY_OUTPUT = "MusicApiKeySecretArn"
# The settings a user asks about first, among the outputs.
SETTINGS = (
    "MaxSongsPerDay",
    "MaxSongsInFlight",
    "TenantSongsPerDay",
    "TenantSongsInFlight",
    "TenantPolicy",
    "TypicalSongSeconds",
)
MAX_KEY_CHARS = 512


@dataclass(frozen=True)
class StackFacts:
    name: str
    outputs: dict[str, str]
    key_set: bool | None  # None: the command may not look at the secret
    key_changed: str | None  # when the key was last put (ISO), if known


def facts(cloud: Cloud) -> StackFacts:
    """The stack's outputs, and whether its API key was put since the stack made the
    placeholder (read from the secret's versions: the key itself is never read)."""
    arn = cloud.outputs.get(KEY_OUTPUT)
    key_set: bool | None = None
    changed = None
    if arn:
        try:
            secret = cloud.client("secretsmanager").describe_secret(SecretId=arn)
        except Exception:
            secret = None
        if secret is not None:
            versions = secret.get("VersionIdsToStages", {})
            created = secret.get("CreatedDate")
            last = secret.get("LastChangedDate")
            key_set = len(versions) > 1 or (
                last is not None and created is not None and last > created
            )
            changed = last.isoformat() if key_set and last is not None else None
    return StackFacts(cloud.stack_name, dict(sorted(cloud.outputs.items())), key_set, changed)


def facts_text(found: StackFacts) -> str:
    key = {
        True: f"set (last put {found.key_changed})" if found.key_changed else "set",
        False: "NOT SET: the functions hold a placeholder; put yours with `lyrics-to-song key set`",
        None: "unknown (this identity may not describe the secret)",
    }[found.key_set]
    lines = [f"stack      {found.name}", f"API key    {key}", "", "settings"]
    lines += [f"  {name:<22} {found.outputs[name]}" for name in SETTINGS if name in found.outputs]
    lines += ["", "outputs"]
    lines += [f"  {name:<34} {value}" for name, value in found.outputs.items()]
    return "\n".join(lines)


def facts_dict(found: StackFacts) -> dict[str, Any]:
    return {
        "stack": found.name,
        "api_key_set": found.key_set,
        "api_key_changed_at": found.key_changed,
        "settings": {name: found.outputs[name] for name in SETTINGS if name in found.outputs},
        "outputs": found.outputs,
    }


def read_key(stdin: TextIO | None = None) -> str:
    """The key from standard input (a pipe) or a prompt that does not echo it; never
    from the command's arguments, where the process list and shell history would show it."""
    stdin = stdin or sys.stdin
    raw = stdin.readline() if not stdin.isatty() else getpass.getpass("API in One key: ")
    key = raw.strip()
    if not key:
        raise CliError("no key given: pipe it in, or type it at the prompt", ExitCode.USAGE)
    if len(key) > MAX_KEY_CHARS:
        raise CliError(f"that is not a key: longer than {MAX_KEY_CHARS} characters", ExitCode.USAGE)
    try:
        return checked_key(key, "the key")
    except MusicApiError as exc:  # smart quotes, spaces or control characters in it
        raise CliError(str(exc), ExitCode.USAGE) from None


def put_key(cloud: Cloud, key: str) -> str:
    """Put the key in the secret the functions read; the secret's ARN."""
    arn = cloud.outputs.get(KEY_OUTPUT)
    if not arn:
        raise CliError(
            f"stack {cloud.stack_name!r} has no {KEY_OUTPUT} output: deploy it again",
            ExitCode.ENVIRONMENT,
        )
    cloud.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=key)
    return arn
