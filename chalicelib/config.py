"""Settings, read from the environment once and checked, with errors that name what is missing.

Secrets (webhook keys, the token signing secret) come from one SSM SecureString parameter named by
LEADLOOP_SECRETS_PARAMETER (a JSON object keyed by the names in SECRET_FIELDS, plus `signing_secret` and
`ses_topic_arns`), and, for anything the parameter does not hold, from environment variables named
`LEADLOOP_<NAME>` upper-cased (LEADLOOP_MAILGUN_SIGNING_KEY, LEADLOOP_SES_TOPIC_ARNS as a comma-separated
list, ...). docs/webhooks.md says which value each provider needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

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


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class WebhookSecrets:
    """Credentials the webhooks are checked with. Every field is optional: a provider without its secret
    refuses every call ("<provider> webhook is not configured"). `repr` names what is set, never a value.
    """

    sendgrid_public_key_b64: str | None = None
    mailgun_signing_key: str | None = None
    postmark_username: str | None = None
    postmark_password: str | None = None
    resend_secret: str | None = None
    hubspot_client_secret: str | None = None
    crm_secret: str | None = None
    ses_topic_arns: tuple[str, ...] = ()

    def __repr__(self) -> str:
        configured = [f.name for f in fields(self) if f.name != "ses_topic_arns" and getattr(self, f.name)]
        return f"WebhookSecrets(configured={configured}, ses_topic_arns={list(self.ses_topic_arns)})"

    __str__ = __repr__


class ConfigurationError(RuntimeError):
    pass


SEND_CONCURRENCY = 25  # send workers at once (app.send_touches): 100 touches/s at ~0.25 s a touch


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    dynamodb_endpoint: str | None
    aws_endpoint: str | None  # SQS and Step Functions (moto server locally)
    queue_url: str | None
    dead_letter_queue_url: str | None
    # The local stack only: where ingest journals each accepted body before the 2xx (moto's queue is in
    # memory; scripts/local_journal.py replays what was never applied). Never set on AWS.
    local_journal_dir: Path | None
    sla_state_machine_arn: str | None
    public_url: str
    signing_secret: str = field(repr=False)
    email_transport: str  # "outbox" | "ses"
    outbox_dir: Path
    ses_from: str
    ses_configuration_set: str | None
    slack_webhook_url: str | None = field(repr=False)
    sales_webhook_urls: tuple[str, ...] = field(repr=False)
    # Owners the summary may be emailed to beside the rules' team members (LEADLOOP_SALES_ADDRESSES).
    sales_addresses: tuple[str, ...] = field(repr=False)
    webhook_secrets: WebhookSecrets = field(repr=False)
    sender_name: str = "The Acme Analytics team"
    sender_company: str = "Acme Analytics"
    sender_address: str = "1 Example Street, Springfield"  # the postal address commercial email must carry
    # HMAC key of the suppression list's address hashes; None on a deployed stage whose secrets parameter
    # lacks `suppression_salt` (erase then answers 503 and, nothing erased, nothing is looked up).
    suppression_salt: str | None = field(default=None, repr=False)
    # The event archive (README "Rules lab"): an S3 bucket (AWS), else a folder (the local stack), else none.
    archive_bucket: str | None = None
    archive_dir: Path | None = None
    archive_retention_days: int = 400
    # AWS: the worker queues what it applied here and app.archive_events writes the objects (adapters/
    # archive_queue.py); unset (the local stack, tests): the worker writes the archive itself.
    archive_queue_url: str | None = None
    # The backtest state machine (infra/backtest_workflow.asl.json): set on AWS, where POST /rules/backtest
    # starts it; unset (the local stack) a backtest runs in a thread of the API process.
    backtest_state_machine_arn: str | None = None
    backtest_slices: int = 1  # Map children per archive shard (more: less memory and time per child)
    # Partition keys each counter period is spread over (chalicelib.adapters.dynamo_counters): ~1,000
    # counter writes/s each. Raise it freely; never lower it (counts above the new count go unread).
    counter_shards: int = 16
    # Counts moved once per stream batch by app.count_effects (chalicelib/effects/stream_counts.py), not by
    # the writer: set where that consumer reads the prospects table's stream (AWS, the local stack).
    count_in_stream: bool = False
    # The nurture send workers (chalicelib/usecases/nurture_fanout.py): the touches queue the sweep fills, the
    # SES rate all workers share (emails/s; None: GetSendQuota, or unpaced on the outbox), and how many run.
    touches_queue_url: str | None = None
    ses_max_send_rate: float | None = None
    send_concurrency: int = SEND_CONCURRENCY

    @property
    def is_local(self) -> bool:
        return self.stage in ("local", "test")

    def dev_keys(self) -> dict[str, str]:
        """role -> key; only the local stack seeds these, deployed stages never know them."""
        return {role: os.environ.get(var, default) for role, (var, default) in DEV_KEYS.items()}


SECRET_NAMES = (*SECRET_FIELDS, "signing_secret", "ses_topic_arns", "suppression_salt")
# The suppression list of erased people keys its address hashes with this (README "Erase and export").
LOCAL_SUPPRESSION_SALT = "local-development-suppression-salt"


def secret_variable(name: str) -> str:
    """The variable holding secret `name`: `mailgun_signing_key` -> LEADLOOP_MAILGUN_SIGNING_KEY."""
    return f"LEADLOOP_{name.upper()}"


def _secrets_from(env: Mapping[str, str]) -> dict[str, str]:
    """Secrets: the SSM parameter's values when one is configured (deployed), then LEADLOOP_<NAME> variables
    for whatever it does not hold (local stack, tests, or a secret added without editing the parameter)."""
    found: dict[str, str] = {}
    parameter = env.get("LEADLOOP_SECRETS_PARAMETER")
    if parameter:
        found.update(_parameter_secrets(parameter))
    for name in SECRET_NAMES:
        value = (env.get(secret_variable(name)) or "").strip()
        if value and not found.get(name):
            found[name] = value
    return found


def _parameter_secrets(parameter: str) -> dict[str, str]:
    import boto3  # only deployed stages get here; keeps import time low elsewhere

    response = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
    try:
        loaded = json.loads(response["Parameter"]["Value"])
    except json.JSONDecodeError:
        loaded = None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"SSM parameter {parameter} must hold a JSON object of secrets")
    found: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, list):  # ses_topic_arns may be a JSON list
            value = ",".join(str(item) for item in value)
        if value is not None and str(value).strip():
            found[str(key)] = str(value).strip()
    return found


def _public_key_b64(value: str) -> str:
    """SendGrid shows its verification key as base64 DER; a PEM copy of the same key is accepted too."""
    if "-----BEGIN" not in value:
        return "".join(value.split())
    return "".join(line.strip() for line in value.splitlines() if line.strip() and "-----" not in line)


def _webhook_secrets(secrets: Mapping[str, str]) -> WebhookSecrets:
    values = {name: secrets[name] for name in SECRET_FIELDS if secrets.get(name)}
    if "sendgrid_public_key_b64" in values:
        values["sendgrid_public_key_b64"] = _public_key_b64(values["sendgrid_public_key_b64"])
    topics = tuple(arn.strip() for arn in secrets.get("ses_topic_arns", "").split(",") if arn.strip())
    return WebhookSecrets(**values, ses_topic_arns=topics)


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
    return Settings(
        sender_name=env.get("LEADLOOP_SENDER_NAME", "The Acme Analytics team"),
        sender_company=env.get("LEADLOOP_SENDER_COMPANY", "Acme Analytics"),
        sender_address=env.get("LEADLOOP_SENDER_ADDRESS", "1 Example Street, Springfield"),
        stage=stage,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        table_prefix=env.get("LEADLOOP_TABLE_PREFIX", f"leadloop-{stage}-"),
        dynamodb_endpoint=env.get("LEADLOOP_DYNAMODB_ENDPOINT") or None,
        aws_endpoint=env.get("LEADLOOP_AWS_ENDPOINT") or None,
        queue_url=env.get("LEADLOOP_QUEUE_URL") or None,
        dead_letter_queue_url=env.get("LEADLOOP_DLQ_URL") or None,
        local_journal_dir=Path(env["LEADLOOP_LOCAL_JOURNAL"]) if env.get("LEADLOOP_LOCAL_JOURNAL") else None,
        sla_state_machine_arn=env.get("LEADLOOP_SLA_STATE_MACHINE_ARN") or None,
        public_url=env.get("LEADLOOP_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        signing_secret=signing_secret,
        email_transport=transport,
        outbox_dir=Path(env.get("LEADLOOP_OUTBOX_DIR", str(REPO_ROOT / "outbox"))),
        ses_from=env.get("LEADLOOP_SES_FROM", "Acme Analytics <hello@example.com>"),
        ses_configuration_set=env.get("LEADLOOP_SES_CONFIGURATION_SET") or None,
        slack_webhook_url=env.get("LEADLOOP_SLACK_WEBHOOK_URL") or None,
        sales_webhook_urls=tuple(url for url in env.get("LEADLOOP_SALES_WEBHOOK_URLS", "").split(",") if url),
        sales_addresses=_names(env.get("LEADLOOP_SALES_ADDRESSES", "")),
        webhook_secrets=_webhook_secrets(secrets),
        suppression_salt=secrets.get("suppression_salt")
        or (LOCAL_SUPPRESSION_SALT if stage in ("local", "test") else None),
        archive_bucket=env.get("LEADLOOP_ARCHIVE_BUCKET") or None,
        archive_dir=Path(env["LEADLOOP_ARCHIVE_DIR"]) if env.get("LEADLOOP_ARCHIVE_DIR") else None,
        archive_retention_days=_retention_days(env.get("LEADLOOP_ARCHIVE_RETENTION_DAYS", "400")),
        archive_queue_url=env.get("LEADLOOP_ARCHIVE_QUEUE_URL") or None,
        backtest_state_machine_arn=env.get("LEADLOOP_BACKTEST_STATE_MACHINE_ARN") or None,
        backtest_slices=_slices(env.get("LEADLOOP_BACKTEST_SLICES", "1")),
        counter_shards=_counter_shards(env.get("LEADLOOP_COUNTER_SHARDS", "16")),
        count_in_stream=_on_off("LEADLOOP_COUNT_IN_STREAM", env.get("LEADLOOP_COUNT_IN_STREAM", "")),
        touches_queue_url=env.get("LEADLOOP_TOUCHES_QUEUE_URL") or None,
        ses_max_send_rate=_send_rate(env.get("LEADLOOP_SES_MAX_SEND_RATE", "")),
    )


def _on_off(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name} must be 1 or 0, got {text!r}")


def _send_rate(text: str) -> float | None:
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 100_000:
        raise ConfigurationError(f"LEADLOOP_SES_MAX_SEND_RATE must be emails per second > 0, got {text!r}")
    return rate


def _slices(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigurationError(f"LEADLOOP_BACKTEST_SLICES must be 1..64, got {text!r}")
    return int(text)


def _counter_shards(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ConfigurationError(f"LEADLOOP_COUNTER_SHARDS must be 1..100, got {text!r}")
    return int(text)


def _retention_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 3650:
        raise ConfigurationError(f"LEADLOOP_ARCHIVE_RETENTION_DAYS must be 1..3650 days, got {text!r}")
    return days
