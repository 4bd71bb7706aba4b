"""The one place that builds adapters and services: lazily, once per process, from Settings.

Nothing is constructed at import time (moto must be running before a client exists in tests); `reset()`
forgets everything so a test can rebuild against fresh settings.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import yaml

from chalicelib.adapters.archive import Blobs, EventArchive, FolderBlobs, S3Blobs
from chalicelib.adapters.archive_queue import ErasedLeads, ForgettingLeadEvents, QueuedArchive
from chalicelib.adapters.backtest_jobs import StepFunctionsLauncher, StoredJobs
from chalicelib.adapters.certificates import CachedCertificateFetcher
from chalicelib.adapters.competitor_list import StoredCompetitorList
from chalicelib.adapters.dynamo import (
    ActivityLog,
    ContentStore,
    Counters,
    DynamoSeenChunks,
    EffectLedger,
    IdentityStore,
    KeyStore,
    NonceStore,
    ProspectStore,
    Tables,
)
from chalicelib.adapters.dynamo_accounts import DynamoAccounts
from chalicelib.adapters.dynamo_privacy import DynamoPersonRecords, DynamoSuppressionList
from chalicelib.adapters.dynamo_repository import DynamoProspects
from chalicelib.adapters.local_copies import JournalCopies, OutboxCopies
from chalicelib.adapters.mail import (
    Mailer,
    OutboxMailer,
    PacedMailer,
    SendPacer,
    SesMailer,
    ses_max_send_rate,
)
from chalicelib.adapters.notify import SalesNotifier
from chalicelib.adapters.queue import DeadLetters, EventQueue, JournaledQueue, TouchQueue
from chalicelib.adapters.shadow_rows import DynamoShadowRows
from chalicelib.adapters.template_library import choosable, load_templates_in_force
from chalicelib.adapters.templates import (
    ParsedTemplate,
    SenderFields,
    TemplateRenderer,
    load_shipped_templates,
)
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.config import Settings, load_settings
from chalicelib.domain.competitors import with_learned_competitors
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.effects.dispatch import Dispatcher
from chalicelib.usecases.accounts import AccountService
from chalicelib.usecases.auth import Authenticator
from chalicelib.usecases.backtest import BacktestJobs, BacktestService
from chalicelib.usecases.competitors import CompetitorService
from chalicelib.usecases.intake import IntakeService
from chalicelib.usecases.leads import LeadService
from chalicelib.usecases.marketing import MarketingService
from chalicelib.usecases.nurture import NurtureService, TemplateCatalogue
from chalicelib.usecases.nurture_fanout import TouchFanout
from chalicelib.usecases.privacy import ErasedAddresses, ErasureNotConfigured, PrivacyService
from chalicelib.usecases.scoreboard import Scoreboard
from chalicelib.usecases.shadow import ShadowScoring, ShadowService

log = logging.getLogger("leadloop.wiring")
DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
RULES_KEY = "rules#default"
CACHE_SECONDS = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def settings() -> Settings:
    return load_settings()


@cache
def tables() -> Tables:
    s = settings()
    return Tables(prefix=s.table_prefix, host=s.dynamodb_endpoint, region=s.region)


@cache
def aws(service: str) -> Any:
    s = settings()
    endpoint = s.aws_endpoint if service in ("sqs", "stepfunctions") else None
    return boto3.client(service, region_name=s.region, endpoint_url=endpoint)


@cache
def prospects() -> ProspectStore:
    return ProspectStore(tables())


@cache
def identities() -> IdentityStore:
    return IdentityStore(tables())


@cache
def activity() -> ActivityLog:
    return ActivityLog(tables())


@cache
def counters() -> Counters:
    return Counters(tables(), shards=settings().counter_shards)


@cache
def content() -> ContentStore:
    return ContentStore(tables())


@cache
def nonces() -> NonceStore:
    return NonceStore(tables())


@cache
def keys() -> KeyStore:
    return KeyStore(tables())


@cache
def accounts() -> DynamoAccounts:
    return DynamoAccounts(tables())


@cache
def authenticator() -> Authenticator:
    return Authenticator(keys())


class _Expiring:
    """A value reloaded at most every CACHE_SECONDS (rules and templates edited through the API)."""

    def __init__(self, load: Any) -> None:
        self._load = load
        self._value: Any = None
        self._at = -1e9

    def __call__(self) -> Any:
        if time.monotonic() - self._at > CACHE_SECONDS:
            self._value, self._at = self._load(), time.monotonic()
        return self._value

    def forget(self) -> None:
        self._at = -1e9


def load_default_rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


def _load_rules() -> Rules:
    """The published rules with the competitor domains sales taught them (domain/competitors.py)."""
    saved = content().latest(RULES_KEY)
    if saved is None:
        published = load_default_rules()
    else:
        published = parse_rules({**yaml.safe_load(saved.body), "version": saved.version})
    return with_learned_competitors(published, learned_competitor_domains())


@cache
def competitor_list() -> StoredCompetitorList:
    return StoredCompetitorList(content())


@cache
def competitor_service() -> CompetitorService:
    return CompetitorService(competitors=competitor_list(), clock=utc_now, forget_rules=rules().forget)


def learned_competitor_domains() -> frozenset[str]:
    return frozenset(entry.domain for entry in competitor_list().entries())


@cache
def rules() -> _Expiring:
    return _Expiring(_load_rules)


@cache
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


@cache
def shipped_templates() -> dict[str, ParsedTemplate]:
    return load_shipped_templates()


def _load_templates() -> dict[str, ParsedTemplate]:
    return load_templates_in_force(shipped_templates(), content(), renderer())


@cache
def templates() -> _Expiring:
    return _Expiring(_load_templates)


@cache
def scoreboard() -> Scoreboard:
    # Built per call from the cached stores, so reset() never leaves a stale one behind.
    templates = catalogue()
    return Scoreboard(
        counters(),
        content(),
        utc_now,
        templates=lambda: {name: t.meta for name, t in templates.all().items()},
    )


def catalogue() -> TemplateCatalogue:
    # Nurture chooses among active templates only; the marketing API reads paused and deleted ones too.
    return TemplateCatalogue(lambda: choosable(templates()()))


@cache
def event_queue() -> EventQueue:
    s = settings()
    if not s.queue_url:
        raise RuntimeError("LEADLOOP_QUEUE_URL is not set: ingest has nowhere to put events")
    if s.local_journal_dir is not None:
        return JournaledQueue(aws("sqs"), s.queue_url, s.local_journal_dir)
    return EventQueue(aws("sqs"), s.queue_url)


@cache
def dead_letters() -> DeadLetters:
    return DeadLetters(aws("sqs"), settings().dead_letter_queue_url)


@cache
def mailer() -> Mailer:
    s = settings()
    if s.email_transport == "ses":
        return SesMailer(aws("ses"), s.ses_configuration_set)
    return OutboxMailer(s.outbox_dir)


SEND_SHARE = 0.9  # of SES's rate, for nurture touches: the rest is headroom for owner notifications


@cache
def send_rate() -> float | None:
    """Emails per second all send workers together may send: the setting, else SES's own quota, else
    (the outbox) unpaced."""
    s = settings()
    rate = s.ses_max_send_rate
    if rate is None and s.email_transport == "ses":
        rate = ses_max_send_rate(aws("ses")) or 1.0  # unknown: SES's sandbox rate, safe anywhere
    return rate * SEND_SHARE if rate is not None else None


@cache
def touch_mailer() -> Mailer:
    """The nurture sender's mailer, paced to this worker's share of the SES rate."""
    rate = send_rate()
    return PacedMailer(mailer(), SendPacer(rate / settings().send_concurrency if rate else None))


@cache
def touch_queue() -> TouchQueue | None:
    url = settings().touches_queue_url
    return TouchQueue(aws("sqs"), url) if url else None


@cache
def touch_fanout() -> TouchFanout | None:
    """None without a touches queue: the sweep then sends in-process (`NurtureService.send_due`)."""
    queue = touch_queue()
    if queue is None:
        return None
    return TouchFanout(due=prospect_repository(), queue=queue, send_rate=send_rate, clock=utc_now)


@cache
def notifier() -> SalesNotifier:
    s = settings()
    return SalesNotifier(
        s.outbox_dir,
        slack_url=s.slack_webhook_url,
        webhook_urls=s.sales_webhook_urls,
        sales_addresses=s.sales_addresses,
        webhook_secret=s.signing_secret,
        mailer=mailer(),
        sender=s.ses_from,
    )


@cache
def workflow() -> SlaWorkflow:
    s = settings()
    return SlaWorkflow(aws("stepfunctions") if s.sla_state_machine_arn else None, s.sla_state_machine_arn)


@cache
def archive_blobs() -> Blobs | None:
    """The archive's store: the S3 bucket on AWS, the folder on the local stack, none when neither is set."""
    s = settings()
    if s.archive_bucket:
        return S3Blobs(aws("s3"), s.archive_bucket)
    if s.archive_dir is not None:
        return FolderBlobs(s.archive_dir)
    return None


@cache
def event_archive() -> EventArchive | None:
    blobs = archive_blobs()
    if blobs is None:
        return None
    return EventArchive(blobs, retention_days=settings().archive_retention_days)


@cache
def erased_leads() -> ErasedLeads:
    return ErasedLeads(tables())


def lead_events() -> ForgettingLeadEvents | None:
    """What an erase rewrites: the archive, after marking the person's lead ids erased (the archiver drops
    their events still queued; a compaction running meanwhile leaves them out)."""
    archive = event_archive()
    if archive is None:
        return None
    return ForgettingLeadEvents(archive, erased_leads(), utc_now)


@cache
def archive_writer() -> EventArchive | QueuedArchive | None:
    """Where the worker archives what it applied: the archive queue on AWS (app.archive_events writes the
    objects), else the archive itself."""
    s = settings()
    if s.archive_queue_url and event_archive() is not None:
        return QueuedArchive(aws("sqs"), s.archive_queue_url)
    return event_archive()


@cache
def backtest_service() -> BacktestService:
    s = settings()

    def profile(lead_id: str) -> Any:
        stored = prospect_repository().get(lead_id)
        return stored.item if stored is not None else None

    return BacktestService(
        archive=event_archive(),
        published=lambda: rules()(),
        rules_source=lambda version: str(marketing_service().rules(version)["source"]),
        profile=profile,
        # Beside the archive (backtests/), so any invocation reads a job; in memory when there is none.
        jobs=StoredJobs(blobs) if (blobs := archive_blobs()) is not None else BacktestJobs(),
        launch=StepFunctionsLauncher(aws("stepfunctions"), s.backtest_state_machine_arn)
        if s.backtest_state_machine_arn and blobs is not None
        else None,
        slices=s.backtest_slices,
        clock=utc_now,
        # The active templates' metas, read when a backtest starts; the job carries them to its shards.
        catalogue=lambda: [t.meta for t in catalogue().all().values()],
        learned=learned_competitor_domains,
    )


@cache
def prospect_repository() -> DynamoProspects:
    return DynamoProspects(prospects())


def lead_url(lead_id: str) -> str:
    return f"{settings().public_url}/leads/{lead_id}"


@cache
def dispatcher() -> Dispatcher:
    return Dispatcher(
        activity=activity(),
        counters=counters(),
        ledger=EffectLedger(tables()),
        notifier=notifier(),
        workflow=workflow(),
        rules=rules(),
        lead_url=lead_url,
        accounts=accounts(),
        competitors=competitor_list(),
    )


@cache
def lead_service() -> LeadService:
    s = settings()
    return LeadService(
        prospects=prospect_repository(),
        identities=identities(),
        activity=activity(),
        counters=counters(),
        rules=rules(),
        effects=dispatcher(),
        public_url=s.public_url,
        clock=utc_now,
        erased=erased_addresses(),
        accounts=accounts(),
        shadow=shadow_scoring(),
        count_in_stream=s.count_in_stream,
        seen_chunks=DynamoSeenChunks(tables()),
    )


@cache
def shadow_scoring() -> ShadowScoring:
    """The rules shadow as the worker sees it: read from the content store at most every 30 s."""
    return ShadowScoring(
        versions=content(),
        rows=DynamoShadowRows(tables()),
        # Each side's next template (GET /rules/shadow's template_changes), read with the shadow.
        live_rules=rules(),
        catalogue=lambda: [t.meta for t in catalogue().all().values()],
        learned=learned_competitor_domains,
    )


@cache
def shadow_service() -> ShadowService:
    def profile(lead_id: str) -> Any:
        stored = prospect_repository().get(lead_id)
        return stored.item if stored is not None else None

    return ShadowService(
        versions=content(),
        rows=DynamoShadowRows(tables()),
        rules_source=lambda version: str(marketing_service().rules(version)["source"]),
        save_rules=lambda text, author: marketing_service().save_rules(text, author),
        profile=profile,
        activity=activity(),
        clock=utc_now,
        forget=shadow_scoring().forget,  # this process sees a change at once; others within 30 s
        catalogue=lambda: [t.meta for t in catalogue().all().values()],
    )


@cache
def account_service() -> AccountService:
    return AccountService(accounts=accounts(), prospects=prospect_repository(), rules=rules(), clock=utc_now)


@cache
def nurture_service() -> NurtureService:
    s = settings()
    return NurtureService(
        leads=lead_service(),
        prospects=prospect_repository(),
        catalogue=catalogue(),
        renderer=renderer(),
        mailer=touch_mailer(),
        rules=rules(),
        sender=SenderFields(name=s.sender_name, company=s.sender_company, address=s.sender_address),
        sender_address=s.ses_from,
        public_url=s.public_url,
        signing_secret=s.signing_secret,
        clock=utc_now,
        erased=erased_addresses(),
        counters=counters(),
    )


@cache
def marketing_service() -> MarketingService:
    return MarketingService(
        content=content(),
        renderer=renderer(),
        shipped_templates=shipped_templates,
        templates_in_force=templates(),
        default_rules_text=DEFAULT_RULES.read_text,
        forget_templates=templates().forget,  # a save is in force at once in this process
        forget_rules=rules().forget,
        compose=lambda prospect, draft: nurture_service().compose(prospect, draft, rules()(), utc_now()),
        clock=utc_now,
    )


@cache
def erased_addresses() -> ErasedAddresses | None:
    """None without a suppression salt: nothing can have been erased, so there is nothing to look up."""
    salt = settings().suppression_salt
    return ErasedAddresses(DynamoSuppressionList(tables()), salt) if salt else None


@cache
def privacy_service() -> PrivacyService:
    s = settings()
    if not s.suppression_salt:
        raise ErasureNotConfigured(
            "erase and export need the suppression salt: put 'suppression_salt' in the secrets parameter"
        )
    return PrivacyService(
        leads=lead_service(),
        prospects=prospect_repository(),
        records=DynamoPersonRecords(tables()),
        suppressions=DynamoSuppressionList(tables()),
        activity=activity(),
        copies=OutboxCopies(s.outbox_dir),
        sla=workflow(),
        salt=s.suppression_salt,
        clock=utc_now,
        archive=JournalCopies(s.local_journal_dir) if s.local_journal_dir is not None else None,
        memberships=accounts(),
        events=lead_events(),
        shadow=shadow_scoring(),
    )


def _confirm_subscription(url: str) -> None:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - URL checked as an SNS host
        answer.read()


@cache
def intake_service() -> IntakeService:
    s = settings()
    return IntakeService(
        auth=authenticator(),
        queue=event_queue(),
        nonces=nonces(),
        secrets=s.webhook_secrets,
        fetch_certificate=CachedCertificateFetcher(),
        confirm_subscription=_confirm_subscription,
        clock=utc_now,
    )


def reset() -> None:
    """Forget every built object (tests, or after settings change)."""
    for built in list(globals().values()):
        if callable(built) and hasattr(built, "cache_clear"):
            built.cache_clear()
