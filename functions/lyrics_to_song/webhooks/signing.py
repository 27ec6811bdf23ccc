"""Webhook signatures as Standard Webhooks 1.0 gives them (docs/webhooks.md: Checking a
webhook), so a receiver can check them with any of its libraries.

`webhook-signature` is `v1,` and the base64 HMAC-SHA256 of
`<webhook-id>.<webhook-timestamp>.<body>`, keyed with the secret's bytes: a secret is
`whsec_` and base64 (the prefix may be left out). Each tenant has a secret of its own,
derived from the stack's: the default tenant signs with the stack's secret itself,
another with `whsec_` + base64(HMAC-SHA256(stack key, "tenant:<name>")), so no
tenant's receiver can sign another's notices, and the stack keeps one secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..data.rows import DEFAULT_TENANT

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form's name, not a secret
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def secret_key(secret: str) -> bytes:
    """The bytes a secret keys its HMAC with: its base64 decoded, as receivers' libraries
    decode it (padding added, the prefix dropped)."""
    return base64.b64decode(secret.strip().removeprefix(SECRET_PREFIX) + "==")


def tenant_secret(stack_secret: str, tenant: str, generation: int = 0) -> str:
    """The tenant's signing secret, in `whsec_` form: of its first generation, or of a
    later one (`lyrics-to-song webhook rotate`), `tenant:<name>:<generation>` derived."""
    if tenant == DEFAULT_TENANT and generation == 0:
        return SECRET_PREFIX + stack_secret.strip().removeprefix(SECRET_PREFIX)
    label = f"tenant:{tenant}" + (f":{generation}" if generation else "")
    derived = hmac.new(secret_key(stack_secret), label.encode(), hashlib.sha256)
    return SECRET_PREFIX + base64.b64encode(derived.digest()).decode()


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: list[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one attempt: a signature for each secret that signs now."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: webhook_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(s, webhook_id, timestamp, body) for s in secrets),
    }
