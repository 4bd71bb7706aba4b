"""The nurture use case: choose each due prospect's next message, render it, send it, record it.

`compose` builds the email for a prospect and a template; both sending and the marketers' preview call it,
so a preview is exactly what would be sent. The scheduler reads only the due index: items read per sweep
grow with the number of prospects due, not with the pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo import ActivityEntry, ActivityLog, Counters, ProspectStore, StoredProspect
from chalicelib.adapters.mail import Mailer, OutgoingEmail
from chalicelib.adapters.templates import (
    ParsedTemplate,
    ProspectFields,
    RenderContext,
    SenderFields,
    TemplateRenderer,
)
from chalicelib.domain.apply import record_send
from chalicelib.domain.messaging import Choice, choose_next_message, plan_next_touch
from chalicelib.domain.profiling import buying_stage, persona_of
from chalicelib.domain.prospect import Prospect, prospect_from_doc
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoreboard import by_period
from chalicelib.domain.scoring import score, top_interests
from chalicelib.errors import ConcurrentUpdate, InvalidContent, NotFound
from chalicelib.services import ACTIVITY_TTL_DAYS, LeadService
from chalicelib.tokens import REDIRECT, UNSUBSCRIBE, sign

log = logging.getLogger("leadloop.nurture")


class TemplateCatalogue:
    """The templates in force: shipped defaults, overridden by saved versions (see the marketing API)."""

    def __init__(self, load: Callable[[], dict[str, ParsedTemplate]]) -> None:
        self._load = load

    def all(self) -> dict[str, ParsedTemplate]:
        return self._load()

    def get(self, name: str) -> ParsedTemplate:
        templates = self._load()
        if name not in templates:
            raise NotFound(f"no template named {name!r}; known: {', '.join(sorted(templates))}")
        return templates[name]


class NurtureService:
    def __init__(
        self,
        *,
        leads: LeadService,
        prospects: ProspectStore,
        activity: ActivityLog,
        counters: Counters,
        catalogue: TemplateCatalogue,
        renderer: TemplateRenderer,
        mailer: Mailer,
        rules: Callable[[], Rules],
        sender: SenderFields,
        sender_address: str,
        public_url: str,
        signing_secret: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._leads = leads
        self._prospects = prospects
        self._activity = activity
        self._counters = counters
        self._catalogue = catalogue
        self._renderer = renderer
        self._mailer = mailer
        self._rules = rules
        self._sender = sender
        self._from = sender_address
        self._public_url = public_url
        self._secret = signing_secret
        self._clock = clock

    def compose(self, p: Prospect, template: ParsedTemplate, rules: Rules, now: datetime) -> OutgoingEmail:
        """The email `template` makes for `p`: used by both send and preview, so they cannot differ."""
        if not p.email:
            raise InvalidContent("this prospect has no email address")
        scores = score(p, rules, now)
        unsubscribe_url = (
            f"{self._public_url}/unsubscribe/{sign(UNSUBSCRIBE, {'l': p.lead_id}, self._secret)}"
        )
        name = template.meta.name

        def tracked(url: str, topics: tuple[str, ...]) -> str:
            token = sign(REDIRECT, {"u": url, "t": list(topics), "l": p.lead_id, "m": name}, self._secret)
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
        choice = choose_next_message(p, metas, rules, now)
        return choice if isinstance(choice, Choice) else None

    def send_due(self, limit: int = 500) -> dict[str, int]:
        """Send every touch now due. Items read grow with the number due, not with the pool."""
        now = self._clock()
        counts = {"due": 0, "sent": 0, "skipped": 0}
        for lead_id in self._prospects.due(now, limit):
            counts["due"] += 1
            counts["sent" if self._touch(lead_id, now) else "skipped"] += 1
        return counts

    def _touch(self, lead_id: str, now: datetime) -> bool:
        stored = self._prospects.get(lead_id)
        if stored is None:
            return False
        rules = self._rules()
        p = prospect_from_doc(stored.doc)
        metas = [t.meta for t in self._catalogue.all().values()]
        choice = choose_next_message(p, metas, rules, now)
        if not isinstance(choice, Choice):
            planned = plan_next_touch(p, rules, now)
            # Nothing fits today: look again after one cadence interval rather than on every tick.
            p.next_touch_at = (
                max(planned, now + timedelta(days=rules.cadence.min_days_between)) if planned else None
            )
            self._quiet_save(stored, p, rules, now)
            return False
        template = self._catalogue.get(choice.template.name)
        email = self.compose(p, template, rules, now)
        send_id = f"{lead_id}-{len(p.messages) + 1}-{now:%Y%m%d%H%M}"
        email.tags["send_id"] = send_id
        email.headers["X-Leadloop-Send-Id"] = send_id
        self._mailer.send(email, now)
        record_send(p, send_id, template.meta.name, template.meta.version, now, choice.why)
        p.next_touch_at = plan_next_touch(p, rules, now)
        self._quiet_save(stored, p, rules, now)
        self._activity.append(
            lead_id,
            [
                ActivityEntry(
                    lead_id=lead_id,
                    at=now,
                    kind="email_sent",
                    actor="leadloop",
                    data={"template": template.meta.name, "send_id": send_id, "why": choice.why},
                    ttl_days=ACTIVITY_TTL_DAYS,
                )
            ],
        )
        self._counters.add(by_period({f"template:{template.meta.name}:sent": 1.0}, now))
        return True

    def _quiet_save(self, stored: StoredProspect, p: Prospect, rules: Rules, now: datetime) -> None:
        try:
            self._leads.save_profile(p, score(p, rules, now), stored.version, now)
        except ConcurrentUpdate:
            log.info("prospect changed while its touch was prepared; the next sweep looks again")


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
