"""`lyrics-to-song webhook`: what a tenant's receiver needs (docs/webhooks.md: Checking a
webhook)."""

from __future__ import annotations

from lyrics_to_song.webhooks.signing import tenant_secret

from .stack_target import CliError, Cloud, ExitCode


def secret(cloud: Cloud, tenant: str) -> str:
    """The tenant's signing secret, `whsec_…`, derived from the stack's (which the caller
    must be allowed to read)."""
    if not cloud.webhook_secret_arn:
        raise CliError(
            f"stack {cloud.stack_name!r} has no WebhookSecretArn output: it sends no webhooks",
            ExitCode.ENVIRONMENT,
        )
    found = cloud.client("secretsmanager").get_secret_value(SecretId=cloud.webhook_secret_arn)
    value = str(found.get("SecretString") or "")
    if not value:
        raise CliError("the stack's webhook signing secret has no value", ExitCode.ENVIRONMENT)
    return tenant_secret(value, tenant)
