"""The nurture use case: choose each due prospect's next message, claim it, render it, send it, record it.

`compose` builds the email for a prospect and a template; both sending and the marketers' preview call it,
so a preview is exactly what would be sent. The scheduler reads only the due index: items read per sweep
grow with the number of prospects due, not with the pool.

A touch is sent at most once however sweeps overlap or die: it is claimed first (a version-checked write of
the chosen message, its send id, and a next touch one lease away; of two sweeps reading the same prospect
the loser of the write skips), then sent, then marked sent (with its feed entry and counter, as effects of
that write). A sweep that dies between claim and mark leaves the claim; after the lease the next sweep sends
that same message with the same send id (the outbox mailer writes a send id once; SES cannot deduplicate,
see `adapters.mail`). A try that fails is recorded on the prospect (why, without its data) and retried with
a growing backoff, then parked (`domain.messaging`); everyone else's sends go on. A try SES throttled sent
nothing: it is released (no try counted, the same message due again at once) and `SendThrottled` raised, so
the caller backs off. `send_due` sends in-process; the deployed sweep fans out instead (`nurture_fanout`),
and the send workers call `touch` for each lead, which sends only what is due, so a lead enqueued twice is
sent once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.mail import Mailer, OutgoingEmail, SendThrottled
from chalicelib.adapters.templates import (
    ParsedTemplate,
    ProspectFields,
    RenderContext,
    SenderFields,
    TemplateRenderer,
)
from chalicelib.adapters.tokens import REDIRECT, UNSUBSCRIBE, sign
from chalicelib.domain.bandit import LEARNING_PERIOD, Posteriors, evidence_from_counters
from chalicelib.domain.decisions import Effect, EmailOutcome, Noted
from chalicelib.domain.messaging import (
    CLAIM_MAX_AGE,
    CLAIMED,
    FAILED,
    MAX_TRIES,
    SENT,
    Choice,
    abandon_claim,
    choose_next_message,
    claim_touch,
    mark_sent,
    pending_claim,
    plan_next_touch,
    record_failure,
    retry_at,
    retry_claim,
    why_not_emailed,
)
from chalicelib.domain.profiling import buying_stage, persona_of
from chalicelib.domain.prospect import MAX_LABEL_CHARS, Prospect, SentMessage
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import score, top_interests
from chalicelib.domain.suppression import SuppressedAddress
from chalicelib.domain.throttled_try import release_try
from chalicelib.errors import (
    ConcurrentUpdate,
    InvalidContent,
    LeadloopError,
    StorageUnavailable,
    UnreadableRecord,
)
from chalicelib.usecases.leads import LeadService
from chalicelib.usecases.nurture_templates import TemplateCatalogue, render_failure
from chalicelib.usecases.ports import ProspectRepository, ScoreboardCounters, Versioned

log = logging.getLogger("leadloop.nurture")

SETTLE_ATTEMPTS = 5  # writes tried to record how a try ended, each after reloading a changed prospect


class NurtureService:
    def __init__(
        self,
        *,
        leads: LeadService,
        prospects: ProspectRepository,
        catalogue: TemplateCatalogue,
        renderer: TemplateRenderer,
        mailer: Mailer,
        rules: Callable[[], Rules],
        sender: SenderFields,
        sender_address: str,
        public_url: str,
        signing_secret: str,
        clock: Callable[[], datetime],
        erased: Callable[[str], SuppressedAddress | None] | None = None,
        counters: ScoreboardCounters | None = None,
    ) -> None:
        """`counters`: where the outcomes of past sends are counted (the chooser's evidence); without them
        the chooser has only the marketer's priorities to go on."""
        self._leads = leads
        self._prospects = prospects
        self._catalogue = catalogue
        self._renderer = renderer
        self._mailer = mailer
        self._rules = rules
        self._sender = sender
        self._from = sender_address
        self._public_url = public_url
        self._secret = signing_secret
        self._clock = clock
        self._erased = erased  # the suppression list of erased people's addresses (None: not kept)
        self._counters = counters

    def compose(
        self, p: Prospect, template: ParsedTemplate, rules: Rules, now: datetime, send_id: str | None = None
    ) -> OutgoingEmail:
        """The email `template` makes for `p`: used by both send and preview, so they cannot differ. Tracked
        links carry `send_id`, so a click counts as that email's outcome."""
        if not p.email:
            raise InvalidContent("this prospect has no email address")
        scores = score(p, rules, now)
        unsubscribe_url = (
            f"{self._public_url}/unsubscribe/{sign(UNSUBSCRIBE, {'l': p.lead_id}, self._secret)}"
        )
        name = template.meta.name

        def tracked(url: str, topics: tuple[str, ...]) -> str:
            link = {"u": url, "t": list(topics), "l": p.lead_id, "m": name}
            if send_id:
                link["s"] = send_id
            token = sign(REDIRECT, link, self._secret)
            return f"{self._public_url}/r/{token}"

        fields = ProspectFields(
            email=p.email,
            first_name=_text(p.traits.get("first_name")),
            last_name=_text(p.traits.get("last_name")),
            company=p.company or None,
            title=_text(p.traits.get("title")),
            persona=persona_of(p, rules),
            stage=buying_stage(p, scores, rules, now),
            top_interests=tuple(topic for topic, _ in top_interests(p, rules, now, limit=3)),
        )
        rendered = self._renderer.render(
            template,
            RenderContext(
                prospect=fields, sender=self._sender, unsubscribe_url=unsubscribe_url, link_builder=tracked
            ),
        )
        headers = {
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Leadloop-Lead-Id": p.lead_id,
            "X-Leadloop-Template": f"{name}@{template.meta.version}",
        }
        return OutgoingEmail(
            to=p.email,
            sender=self._from,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            headers=headers,
            tags={"lead_id": p.lead_id, "template": name},
        )

    def preview(self, template_name: str, p: Prospect) -> dict[str, Any]:
        now = self._clock()
        template = self._catalogue.get(template_name)
        email = self.compose(p, template, self._rules(), now)
        return {
            "template": template_name,
            "version": template.meta.version,
            "to": email.to,
            "from": email.sender,
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "headers": email.headers,
        }

    def choose(self, p: Prospect, now: datetime) -> Choice | None:
        rules = self._rules()
        metas = [t.meta for t in self._catalogue.all().values()]
        choice = choose_next_message(p, metas, rules, now, evidence=self.evidence())
        return choice if isinstance(choice, Choice) else None

    def evidence(self) -> Posteriors:
        """What each template's sends did in each context so far: one read of the learning counters."""
        if self._counters is None:
            return {}
        return evidence_from_counters(self._counters.read(LEARNING_PERIOD))

    def send_due(self, limit: int = 500) -> dict[str, int]:
        """Send every touch now due. Items read grow with the number due, not with the pool. One prospect's
        failure is recorded on it and the sweep goes on; only storage trouble or SES throttling stops it
        (every prospect would fail alike; the next tick tries again)."""
        counts = {"due": 0, "sent": 0, "skipped": 0, "failed": 0}
        evidence: Posteriors | None = None
        for lead_id in self._prospects.due(self._clock(), limit):
            counts["due"] += 1
            if evidence is None:  # once per tick, and only when someone is due
                evidence = self.evidence()
            try:
                outcome = self.touch(lead_id, evidence)
            except SendThrottled:
                log.warning("SES throttled the sweep; the rest due waits for the next tick")
                counts["due"] -= 1
                break
            except StorageUnavailable:
                raise
            except Exception:
                # The edge of one prospect's unit of work (a bug, or a failure nothing below foresaw): it must
                # not stall everyone due after it. A claim it made is retried after its lease, and counts
                # as a try, so a prospect that keeps failing this way is parked too.
                log.exception("nurture touch of %s failed; the sweep goes on", lead_id)
                outcome = FAILED
            counts[outcome] += 1
        return counts

    def touch(self, lead_id: str, evidence: Posteriors | None = None) -> str:
        """One prospect, if due: claim the touch (a version-checked write), send it, mark it sent. Its
        outcome: sent, skipped (not due, or another sender has it) or failed; raises SendThrottled."""
        now = self._clock()
        try:
            stored = self._prospects.get(lead_id)
        except UnreadableRecord as error:
            # Nothing can be recorded on a profile that cannot be read; it stays due and is skipped each
            # time, at the cost of one place in the sweep.
            log.error("stored profile of %s cannot be read (%s); not emailed", lead_id, error.code)
            return FAILED
        if stored is None or stored.item.next_touch_at is None or stored.item.next_touch_at > now:
            return "skipped"  # gone, or not due (already sent by an earlier delivery of the same lead)
        p = stored.item
        rules = self._rules()
        claim = pending_claim(p)
        if claim is not None and retry_at(claim) > now:
            return "skipped"  # its try is still in flight in another sweep
        if claim is not None and why_not_emailed(p) is not None:
            # Unsubscribed or handed to sales since the claim: not sent. A lead back in nurture within
            # CLAIM_MAX_AGE gets this message; later than that, a fresh choice.
            p.next_touch_at = plan_next_touch(p, rules, now)
            self._quiet_save(stored, p, rules, now)
            return "skipped"
        if claim is not None and now - claim.at > CLAIM_MAX_AGE:
            abandon_claim(claim, now)
            claim = None
        if claim is not None and claim.template not in self._catalogue.all():
            # Paused or deleted since it was chosen: marketing stopped it, so it is not sent; a fresh choice.
            abandon_claim(claim, now, f"template {claim.template} was paused or deleted before it was sent")
            claim = None
        if claim is not None:
            if claim.tries >= MAX_TRIES:  # the last try died without a word
                return self._fail(p, stored.version, claim, "interrupted: the last try never finished", now)
            retry_claim(claim, now)
        else:
            metas = [t.meta for t in self._catalogue.all().values()]
            send_id = f"{lead_id}-{len(p.messages) + 1}-{now:%Y%m%d%H%M}"
            # Seeded by the lead and the touch's number (the default), not the send id's minute: a preview of
            # the next touch (`choose`) picks what the sweep will send.
            choice = choose_next_message(
                p, metas, rules, now, evidence=self.evidence() if evidence is None else evidence
            )
            if not isinstance(choice, Choice):
                p.nurture_waiting = choice.why[:MAX_LABEL_CHARS]  # on the lead's page: why no email
                planned = plan_next_touch(p, rules, now)
                # Nothing fits today: look again after one cadence interval rather than on every tick.
                p.next_touch_at = (
                    max(planned, now + timedelta(days=rules.cadence.min_days_between)) if planned else None
                )
                self._quiet_save(stored, p, rules, now)
                return "skipped"
            claim = claim_touch(p, send_id, choice.template, choice.why, now, choice.context)
        p.next_touch_at = plan_next_touch(p, rules, now)  # the lease's end
        try:
            version = self._save(p, rules, stored.version, now)
        except ConcurrentUpdate:
            # Another sweep claimed this touch first, or an event changed the prospect: the next sweep
            # looks again (and finds the claim, or chooses afresh).
            log.info("lost the claim on %s's touch; not sending", lead_id)
            return "skipped"
        return self._send(p, version, claim, now)

    def _send(self, p: Prospect, version: int, claim: SentMessage, now: datetime) -> str:
        rules = self._rules()
        try:
            template = self._catalogue.get(claim.template)
            email = self.compose(p, template, rules, now, claim.send_id)
        except LeadloopError as error:
            return self._fail(p, version, claim, render_failure(claim.template, error), now)
        email.tags["send_id"] = claim.send_id
        email.headers["X-Leadloop-Send-Id"] = claim.send_id
        if self._erased is not None and self._erased(email.to) is not None:
            # The profile is suppressed when such an address arrives; this guard holds whatever changed since.
            return self._fail(p, version, claim, "the address belongs to an erased person (suppressed)", now)
        try:
            self._mailer.send(email, now)
        except SendThrottled:
            release_try(claim, now)  # nothing was sent: due again at once, and not counted as a try
            p.next_touch_at = plan_next_touch(p, rules, now)
            try:
                self._save(p, rules, version, now)
            except ConcurrentUpdate:  # the claim then waits out its lease, and is retried after it
                log.info("could not release the throttled try of %s; retried after its lease", p.lead_id)
            raise
        except (StorageUnavailable, OSError) as error:
            return self._fail(p, version, claim, f"the mailer failed ({type(error).__name__})", now)
        sent_version = template.meta.version

        def sent(_: Prospect, message: SentMessage) -> list[Effect]:
            if message.status == SENT:
                return []
            mark_sent(message, sent_version, now)
            data: dict[str, Any] = {
                "template": message.template,
                "send_id": message.send_id,
                "why": message.reason,
            }
            if message.tries > 1:
                data["tries"] = message.tries
            return [
                EmailOutcome(template=message.template, outcome="sent", learn_in=message.context),
                Noted("email_sent", "leadloop", data),
            ]

        self._settle(p, version, claim.send_id, now, sent)
        return SENT

    def _fail(self, p: Prospect, version: int, claim: SentMessage, error: str, now: datetime) -> str:
        """Record the failed try on the prospect (activity, and a key moment when it parks nurture)."""

        def failed(current: Prospect, message: SentMessage) -> list[Effect]:
            if message.status != CLAIMED:
                return []
            parks = record_failure(current, message, error, now)
            data: dict[str, Any] = {
                "template": message.template,
                "send_id": message.send_id,
                "error": error,
                "tries": message.tries,
            }
            if parks:
                data["parked"] = True
            else:
                data["retry_at"] = retry_at(message).isoformat()
            failure = Noted("email_failed", "leadloop", data)
            return [EmailOutcome(template=message.template, outcome="failed"), failure]

        log.warning("nurture email %s to %s failed: %s", claim.send_id, p.lead_id, error)
        self._settle(p, version, claim.send_id, now, failed)
        return FAILED

    def _settle(
        self,
        p: Prospect,
        version: int,
        send_id: str,
        now: datetime,
        settle: Callable[[Prospect, SentMessage], list[Effect]],
    ) -> None:
        """Record how a claimed try ended, with its effects, in a version-checked write; when the prospect
        changed meanwhile (an event), reload and record again. If it never lands, the claim stays and is
        retried after its lease (the outbox mailer then sends nothing new)."""
        rules = self._rules()
        for _ in range(SETTLE_ATTEMPTS):
            message = next((m for m in reversed(p.messages) if m.send_id == send_id), None)
            if message is None:
                log.warning("touch %s is no longer on %s's profile; nothing to record", send_id, p.lead_id)
                return
            effects = settle(p, message)
            if not effects:
                return
            p.next_touch_at = plan_next_touch(p, rules, now)
            try:
                self._save(p, rules, version, now, effects)
                return
            except ConcurrentUpdate:
                stored = self._prospects.get(p.lead_id)
                if stored is None:
                    log.warning("%s was deleted (merged?) before touch %s was recorded", p.lead_id, send_id)
                    return
                p, version = stored.item, stored.version
        log.error("could not record how touch %s of %s ended; retried after its lease", send_id, p.lead_id)

    def _save(
        self, p: Prospect, rules: Rules, version: int | None, now: datetime, effects: Sequence[Effect] = ()
    ) -> int:
        return self._leads.save_profile(p, score(p, rules, now), version, now, effects=effects)

    def _quiet_save(self, stored: Versioned[Prospect], p: Prospect, rules: Rules, now: datetime) -> None:
        try:
            self._save(p, rules, stored.version, now)
        except ConcurrentUpdate:
            log.info("prospect changed while its touch was prepared; the next sweep looks again")


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
