"""`lyrics-to-song`: parse, run the command, map errors to exit codes (docs/command-line.md)."""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points

from botocore.exceptions import BotoCoreError, ClientError

from .commands import Output, again, run
from .parser import INTERRUPTED, OUTPUT_CLOSED, build_parser
from .stack_target import CliError, ExitCode, aws_errors

# `demo` and `local` run the local stack (infra/local_cloud, with the dev extras); it
# offers them as entry points of this group, so the command line imports none of it.
LOCAL_TOOLS_GROUP = "lyrics_to_song.local_tools"


def _local_tool(name: str, argv: list[str]) -> int:
    try:
        (found,) = entry_points(group=LOCAL_TOOLS_GROUP, name=name)
        tool = found.load()
    except (ValueError, ImportError) as exc:
        missing = getattr(exc, "name", None) or "local_cloud"
        print(
            f"error: `{name}` needs the local stack's packages ({missing} is missing): "
            "pip install 'lyrics-to-song[dev]', or run `make demo` in the repository",
            file=sys.stderr,
        )
        return ExitCode.ENVIRONMENT
    return int(tool(argv))


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
    out = Output(args.json, id_only=getattr(args, "quiet", False), command=again(args))
    try:
        code = run(args, out)
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
            + (f" ({again(args)} status {job})" if job else ""),
            file=sys.stderr,
        )
        return INTERRUPTED
    except BrokenPipeError:
        # Whoever read the output stopped reading; nothing more to say, and nothing to flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OUTPUT_CLOSED
    if out.as_json:
        print(json.dumps({"error": message, "exit_code": int(code)}))
    print(f"error: {out.hinted(message)}", file=sys.stderr)
    return code
