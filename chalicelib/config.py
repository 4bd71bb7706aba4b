"""Settings, read from the environment once and checked, with errors that name what is missing.

Deployed stages read secrets (webhook keys, the token signing secret) from one SSM SecureString parameter
named by LEADLOOP_SECRETS_PARAMETER; the local stack and tests pass them as environment variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.ingest.webhooks import WebhookSecrets

REPO_ROOT = Path(__file__).resolve().parents[1]
DEV_KEYS = {
    "write": ("LEADLOOP_DEV_WRITE_KEY", "dev-write-key"),
    "sales": ("LEADLOOP_DEV_SALES_KEY", "dev-sales-key"),
    "marketing": ("LEADLOOP_DEV_MARKETING_KEY", "dev-marketing-key"),
    "admin": ("LEADLOOP_DEV_ADMIN_KEY", "dev-admin-key"),
}
SECRET_FIELDS = (
    "sendgrid_public_key_b64",
    "mailgun_signing_key",
    "postmark_username",
    "postmark_password",
    "resend_secret",
    "hubspot_client_secret",
    "crm_secret",
)


class ConfigurationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    dynamodb_endpoint: str | None
    aws_endpoint: str | None  # SQS and Step Functions (moto server locally)
    queue_url: str | None
    dead_letter_queue_url: str | None
    sla_state_machine_arn: str | None
    public_url: str
    signing_secret: str = field(repr=False)
    email_transport: str  # "outbox" | "ses"
    outbox_dir: Path
    ses_from: str
    ses_configuration_set: str | None
    slack_webhook_url: str | None = field(repr=False)
    sales_webhook_urls: tuple[str, ...] = field(repr=False)
    webhook_secrets: WebhookSecrets = field(repr=False)
    sender_name: str = "Acme Analytics"
    sender_address: str = "Acme Analytics, 1 Example Street, Springfield"

    @property
    def is_local(self) -> bool:
        return self.stage in ("local", "test")

    def dev_keys(self) -> dict[str, str]:
        """role -> key; only the local stack seeds these, deployed stages never know them."""
        return {role: os.environ.get(var, default) for role, (var, default) in DEV_KEYS.items()}


def _secrets_from(env: Mapping[str, str]) -> dict[str, str]:
    """Secrets: the SSM parameter when configured (deployed), else LEADLOOP_<NAME> variables (local)."""
    parameter = env.get("LEADLOOP_SECRETS_PARAMETER")
    if parameter:
        import boto3  # only deployed stages get here; keeps import time low elsewhere

        response = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
        loaded = json.loads(response["Parameter"]["Value"])
        return {str(key): str(value) for key, value in loaded.items()}
    names = (*SECRET_FIELDS, "signing_secret", "ses_topic_arns")
    return {name: env[f"LEADLOOP_{name.upper()}"] for name in names if env.get(f"LEADLOOP_{name.upper()}")}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    stage = env.get("LEADLOOP_STAGE", "local")
    secrets = _secrets_from(env)
    signing_secret = secrets.get("signing_secret", "")
    if not signing_secret:
        if stage not in ("local", "test"):
            raise ConfigurationError(
                "LEADLOOP signing secret is missing: put 'signing_secret' in the LEADLOOP_SECRETS_PARAMETER "
                "parameter (or LEADLOOP_SIGNING_SECRET locally)"
            )
        signing_secret = "local-development-signing-secret"
    transport = env.get("LEADLOOP_EMAIL_TRANSPORT", "outbox")
    if transport not in ("outbox", "ses"):
        raise ConfigurationError(f"LEADLOOP_EMAIL_TRANSPORT must be 'outbox' or 'ses', got {transport!r}")
    topic_arns = tuple(arn for arn in secrets.get("ses_topic_arns", "").split(",") if arn)
    return Settings(
        stage=stage,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        table_prefix=env.get("LEADLOOP_TABLE_PREFIX", f"leadloop-{stage}-"),
        dynamodb_endpoint=env.get("LEADLOOP_DYNAMODB_ENDPOINT") or None,
        aws_endpoint=env.get("LEADLOOP_AWS_ENDPOINT") or None,
        queue_url=env.get("LEADLOOP_QUEUE_URL") or None,
        dead_letter_queue_url=env.get("LEADLOOP_DLQ_URL") or None,
        sla_state_machine_arn=env.get("LEADLOOP_SLA_STATE_MACHINE_ARN") or None,
        public_url=env.get("LEADLOOP_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        signing_secret=signing_secret,
        email_transport=transport,
        outbox_dir=Path(env.get("LEADLOOP_OUTBOX_DIR", str(REPO_ROOT / "outbox"))),
        ses_from=env.get("LEADLOOP_SES_FROM", "Acme Analytics <hello@example.com>"),
        ses_configuration_set=env.get("LEADLOOP_SES_CONFIGURATION_SET") or None,
        slack_webhook_url=env.get("LEADLOOP_SLACK_WEBHOOK_URL") or None,
        sales_webhook_urls=tuple(url for url in env.get("LEADLOOP_SALES_WEBHOOK_URLS", "").split(",") if url),
        webhook_secrets=WebhookSecrets(
            **{name: secrets[name] for name in SECRET_FIELDS if name in secrets}, ses_topic_arns=topic_arns
        ),
    )
