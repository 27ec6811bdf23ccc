"""The song request: its fields, the model's limits, and validation before any money is spent."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .data.rows import DEFAULT_TENANT
from .errors import InvalidRequest
from .tenants import check_tenant

# The API's fields and the model's limits: docs/music-api.md ("Endpoints", "Limits of the model").
ALLOWED_BITRATES = (32000, 60000, 64000, 128000, 256000)
ALLOWED_SAMPLE_RATES = (16000, 24000, 32000, 44100)
DEFAULT_BITRATE = 256000
DEFAULT_SAMPLE_RATE = 44100
MAX_PROMPT_CHARS = 2000
MAX_LYRICS_CHARS = 3500
MAX_REQUEST_ID_CHARS = 128
MAX_METADATA_BYTES = 2048
REQUEST_FIELDS = (
    "prompt",
    "lyrics",
    "bitrate",
    "sample_rate",
    "model",
    "request_id",
    "metadata",
    "tenant",
    "callback_url",
    "task_token",
    "state_machine",
)
MAX_TASK_TOKEN_CHARS = 1024  # as Step Functions issues them
# A state machine's ARN, as `$$.StateMachine.Id` gives it.
_STATE_MACHINE_PATTERN = re.compile(
    r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}"
)
# Whole-string patterns, used with fullmatch: `$` would also match before a final newline.
_MODEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REQUEST_ID_PATTERN = re.compile(r"[\x21-\x7e]+")


def decode_json(text: str) -> Any:
    """json.loads, with each way it can refuse a text as an InvalidRequest saying why
    (without this, nesting too deep or an integer of thousands of digits would escape
    as RecursionError or ValueError and the message would never end)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidRequest("it is nested too deeply") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer …"
        raise InvalidRequest(str(exc).split(";")[0]) from None


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages to people who wrote JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


def is_valid_request_id(value: Any) -> bool:
    """A producer's id for its request: printable ASCII without spaces, at most 128."""
    return (
        isinstance(value, str)
        and bool(_REQUEST_ID_PATTERN.fullmatch(value))
        and len(value) <= MAX_REQUEST_ID_CHARS
    )


@dataclass(frozen=True)
class SongRequest:
    prompt: str
    lyrics: str
    model: str
    bitrate: int = DEFAULT_BITRATE
    sample_rate: int = DEFAULT_SAMPLE_RATE
    request_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tenant: str = DEFAULT_TENANT
    callback_url: str | None = None  # checked against CALLBACK_HOSTS and DNS by submit
    # A Step Functions task waiting for the song (docs/step-functions.md): its token, and
    # the state machine it is of (checked against CALLBACK_STATE_MACHINES by submit).
    task_token: str | None = None
    state_machine: str | None = None

    def api_body(self) -> dict[str, Any]:
        """The JSON body of `POST /api/v1/audio/music`."""
        return {
            "model": self.model,
            "prompt": self.prompt,
            "lyrics": self.lyrics,
            "bitrate": self.bitrate,
            "sample_rate": self.sample_rate,
        }

    def as_item(self) -> dict[str, Any]:
        """What the task row keeps of the request (everything needed to resubmit it)."""
        item: dict[str, Any] = self.api_body()
        if self.request_id is not None:
            item["request_id"] = self.request_id
        if self.metadata:
            item["metadata"] = dict(self.metadata)
        if self.tenant != DEFAULT_TENANT:  # so requests made before tenants keep their identity
            item["tenant"] = self.tenant
        if self.callback_url is not None:
            item["callback_url"] = self.callback_url
        if self.task_token is not None:
            item["task_token"] = self.task_token
            item["state_machine"] = self.state_machine
        return item

    def fingerprint(self) -> str:
        """A stable hash of what is being paid for, for requests without a request_id."""
        canonical = json.dumps(self.as_item(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if value is None:
        raise InvalidRequest(f"'{name}' is required")
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string, got {json_type(value)}")
    value = value.strip()
    if not value:
        raise InvalidRequest(f"'{name}' must not be empty")
    if len(value) > limit:
        raise InvalidRequest(
            f"'{name}' is {len(value)} characters; the model accepts at most {limit}"
        )
    return value


def _choice(data: Mapping[str, Any], name: str, allowed: tuple[int, ...], default: int) -> int:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(
            f"'{name}' must be a whole number, one of {', '.join(map(str, allowed))}; got {value!r}"
        )
    if value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(map(str, allowed))}; got {value}")
    return value


def parse_request(data: Any, default_model: str, default_prompt: str | None = None) -> SongRequest:
    """Check a request body (already decoded from JSON) and return it as a SongRequest.

    `default_prompt` fills a missing prompt (lyric files may rely on it); queued requests
    pass None so a missing prompt is an error.
    """
    if not isinstance(data, Mapping):
        raise InvalidRequest(f"a song request must be a JSON object, got {json_type(data)}")
    unknown = sorted(set(data) - set(REQUEST_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(REQUEST_FIELDS)}"
        )
    if default_prompt is not None and data.get("prompt") is None:
        data = {**data, "prompt": default_prompt}
    model = data.get("model", default_model)
    if not isinstance(model, str) or not _MODEL_PATTERN.fullmatch(model):
        raise InvalidRequest(
            f"'model' must be a model name such as 'minimax-music' "
            f"(letters, digits, '.', '_', '-'; at most 64); got {model!r}"
        )
    request_id = data.get("request_id")
    if request_id is not None and not is_valid_request_id(request_id):
        raise InvalidRequest(
            f"'request_id' must be a string of 1 to {MAX_REQUEST_ID_CHARS} printable ASCII "
            f"characters without spaces; got {request_id!r}"
        )
    callback_url = data.get("callback_url")
    if callback_url is not None and (not isinstance(callback_url, str) or not callback_url.strip()):
        raise InvalidRequest(f"'callback_url' must be an https URL, got {callback_url!r}")
    task_token, state_machine = _task(data)
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidRequest(f"'metadata' must be a JSON object, got {json_type(metadata)}")
    if len(json.dumps(metadata, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        raise InvalidRequest(f"'metadata' must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return SongRequest(
        prompt=_text(data, "prompt", MAX_PROMPT_CHARS),
        lyrics=_text(data, "lyrics", MAX_LYRICS_CHARS),
        model=model,
        bitrate=_choice(data, "bitrate", ALLOWED_BITRATES, DEFAULT_BITRATE),
        sample_rate=_choice(data, "sample_rate", ALLOWED_SAMPLE_RATES, DEFAULT_SAMPLE_RATE),
        request_id=request_id,
        metadata=dict(metadata),
        tenant=check_tenant(data["tenant"], "'tenant'") if "tenant" in data else DEFAULT_TENANT,
        callback_url=callback_url.strip() if callback_url is not None else None,
        task_token=task_token,
        state_machine=state_machine,
    )


def _task(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`task_token` and `state_machine`, given together or not at all."""
    token, machine = data.get("task_token"), data.get("state_machine")
    if token is None and machine is None:
        return None, None
    if not (
        isinstance(token, str) and 1 <= len(token) <= MAX_TASK_TOKEN_CHARS and token.isprintable()
    ):
        raise InvalidRequest(
            f"'task_token' must be a Step Functions task token ($$.Task.Token), 1 to "
            f"{MAX_TASK_TOKEN_CHARS} printable characters"
        )
    if not (isinstance(machine, str) and _STATE_MACHINE_PATTERN.fullmatch(machine)):
        raise InvalidRequest(
            "'state_machine' must be the ARN of the state machine whose task waits "
            f"($$.StateMachine.Id), given with 'task_token'; got {machine!r}"
        )
    return str(token), machine


# What a request asks to be paid for and told of; a Step Functions token is not part of it
# (a workflow's retry sends the same request with a new one).
_NOT_ASKED = ("task_token", "state_machine")


def same_song(kept: str | None, request_json: str) -> bool:
    """Whether a job made for the request kept as `kept` (a row's `request_json`) was
    made for this one too, its token aside (docs/inputs.md: Job identity)."""
    if kept is None:
        return False  # refused before it was read: no request of its own

    def asked(text: str) -> dict[str, Any]:
        return {k: v for k, v in json.loads(text).items() if k not in _NOT_ASKED}

    return asked(kept) == asked(request_json)
