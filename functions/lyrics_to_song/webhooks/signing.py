"""Webhook signatures as Standard Webhooks 1.0 gives them (docs/webhooks.md: Checking a
webhook), so a receiver can check them with any of its libraries.

`webhook-signature` is `v1,` and the base64 HMAC-SHA256 of
`<webhook-id>.<webhook-timestamp>.<body>`, keyed with the secret's bytes: a secret is
`whsec_` and base64 (the prefix may be left out). Each tenant, `default` included, has a
secret of its own derived from the stack's root key, `whsec_` +
base64(HMAC-SHA256(root, "tenant:<name>")): one tenant's secret tells nothing of the
root's or of another's, and the stack keeps one secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form's name, not a secret
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def secret_key(secret: str) -> bytes:
    """The bytes a secret keys its HMAC with: its base64 decoded, as receivers' libraries
    decode it (padding added, the prefix dropped)."""
    return base64.b64decode(secret.strip().removeprefix(SECRET_PREFIX) + "==")


def tenant_secret(root: str, tenant: str, generation: int = 0) -> str:
    """The tenant's signing secret, in `whsec_` form, derived from the stack's root key:
    `tenant:<name>` for its first generation, `tenant:<name>:<generation>` for a later
    one (`lyrics-to-song webhook rotate`). `default`'s too: the root itself signs nothing
    but `default`'s deliveries for a while after an upgrade (`legacy_secret`)."""
    label = f"tenant:{tenant}" + (f":{generation}" if generation else "")
    derived = hmac.new(secret_key(root), label.encode(), hashlib.sha256)
    return SECRET_PREFIX + base64.b64encode(derived.digest()).decode()


def legacy_secret(root: str) -> str:
    """What `default`'s receivers held before every tenant's secret was derived: the root
    key itself. It signs `default`'s deliveries beside the new secret for the overlap
    that `tenants import` sets on upgrade (docs/webhooks.md), and is never printed."""
    return SECRET_PREFIX + root.strip().removeprefix(SECRET_PREFIX)


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
