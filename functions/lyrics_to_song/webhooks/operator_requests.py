"""What the stack's operator asks of the webhook function directly (`lyrics-to-song
webhook secret | rotate | rotate-root`, by lambda:InvokeFunction), so that the root key
never leaves Secrets Manager but for this function (docs/webhooks.md: Checking a webhook):

- `{"operator": "secret", "tenant": T}`: the secrets that sign for T now, derived here;
- `{"operator": "rotate-root"}`: a new root key, made and put here (the command line has
  recorded the overlap first).

Producers cannot reach this: the function's queue hands it SQS batches, never these.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..data.rows import DEFAULT_TENANT
from ..data.webhook_keys import WebhookKeys, WebhookKeyStore
from ..errors import InvalidRequest
from ..tenants import check_tenant
from .delivery import WebhookServices
from .signing import SECRET_PREFIX, tenant_secret


def is_operator_request(event: Mapping[str, Any]) -> bool:
    return "operator" in event


def operator_request(services: WebhookServices, event: Mapping[str, Any]) -> dict[str, Any]:
    """Carry out one request; `{"error": …}` says why not."""
    try:
        if event.get("operator") == "secret":
            tenant = check_tenant(event.get("tenant"), "'tenant'")
            root = partial(_root, services)
            return tenant_secrets(services.keys, root, tenant, services.clock())
        if event.get("operator") == "rotate-root":
            return rotate_root(services)
    except InvalidRequest as exc:
        return {"error": str(exc)}
    return {"error": "'operator' must be 'secret' or 'rotate-root'"}


def tenant_secrets(
    store: WebhookKeyStore | None, root: Callable[[str], str], tenant: str, now: float
) -> dict[str, Any]:
    """The tenant's secret now, and the one before it while that signs too (its own
    rotation, or the root's); for `default` after an upgrade, until when its old secret
    (the root itself, never returned) signs too. `root(stage)`: the root key's version
    AWSCURRENT or AWSPREVIOUS."""
    keys = store.keys(tenant) if store else WebhookKeys()
    current = root("AWSCURRENT")
    generations = keys.signing(now)
    legacy = tenant == DEFAULT_TENANT and now < keys.legacy_until
    found: dict[str, Any] = {
        "tenant": tenant,
        "secret": tenant_secret(current, tenant, generations[0]),
        "previous_secret": None,
        "previous_until": None,
        "legacy_until": keys.legacy_until if legacy else None,
    }
    root_until = store.root_previous_until() if store else 0.0
    if len(generations) > 1:
        found["previous_secret"] = tenant_secret(current, tenant, generations[1])
        found["previous_until"] = keys.previous_until
    elif now < root_until:
        found["previous_secret"] = tenant_secret(root("AWSPREVIOUS"), tenant, keys.generation)
        found["previous_until"] = root_until
    return found


def new_root() -> str:
    """A new random root key, in `whsec_` form."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def rotate_root(services: WebhookServices) -> dict[str, Any]:
    """A new root key, put as the secret's current version (Secrets Manager keeps the one
    before as AWSPREVIOUS)."""
    arn = services.settings.secret_arn
    if arn is None:
        return {"error": "this function's signing secret is not in Secrets Manager"}
    services.secrets().put_secret_value(SecretId=arn, SecretString=new_root())
    return {"rotated": True}


def _root(services: WebhookServices, stage: str) -> str:
    """The root key read afresh (an operator's request right after a rotation must not
    get the cached one)."""
    arn = services.settings.secret_arn
    if arn is None:
        return services.secret()
    found = services.secrets().get_secret_value(SecretId=arn, VersionStage=stage)
    return str(found["SecretString"]).strip()
