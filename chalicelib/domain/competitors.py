"""Competitor domains learned from sales: when a rep disqualifies a lead as a competitor, the company's email
domain joins the competitor rule of the rules that ask for it (`learned_from_sales: true`), so the next
person from that company does not reach sales on score.

Competitors read pricing and API docs like the best buyer, and a customer rarely keeps its competitor list
up to date; the rep who took the call knows. What is learned is the company's domain only, and only when it
names a company: a free or student mailbox (any other email rule of the rules that costs points matches it,
or it is one of the large consumer mail providers) is never learned. A hand-raise from a learned domain is
still routed (buyers decide), flagged low-fit like any other. Marketing reads and removes learned domains
(GET/DELETE /rules/competitors). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.rules import FitRule, Rules
from chalicelib.domain.scoring import in_domains

MAX_LEARNED_COMPETITORS = 500  # domains kept; past it nothing more is learned until marketing removes some
# The reason a rep types when the lead works for a competitor: "competitor", "Competitor - pricing intel".
COMPETITOR_REASON = re.compile(r"^\s*competitor\b", re.IGNORECASE)
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Consumer mail providers, whoever's rules forget to list them: a competitor writing from one of these
# tells us nothing about anyone else who does.
CONSUMER_MAILBOXES = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "hotmail.com", "outlook.com", "live.com",
        "msn.com", "aol.com", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "pm.me",
        "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru", "mail.ru",
        "qq.com", "163.com", "126.com", "zoho.com", "fastmail.com", "hey.com", "tutanota.com",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LearnedCompetitor:
    """One learned domain: which, when, from which lead and whose disqualification."""

    domain: str
    at: datetime
    lead_id: str
    actor: str

    def to_json(self) -> dict[str, Any]:
        at = self.at.isoformat()
        return {"domain": self.domain, "at": at, "lead_id": self.lead_id, "actor": self.actor}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LearnedCompetitor:
        return cls(str(data["domain"]), datetime.fromisoformat(data["at"]), str(data["lead_id"]),
                   str(data["actor"]))  # fmt: skip


def says_competitor(reason: object, flag: object = None) -> bool:
    """Whether a disqualification says the lead works for a competitor: the `competitor` flag when given (an
    explicit false wins over the reason), else a reason that starts with the word ("competitor",
    "Competitor: fishing for pricing")."""
    if flag is not None:
        return flag is True
    return isinstance(reason, str) and COMPETITOR_REASON.match(reason) is not None


def learning_rule(rules: Rules) -> FitRule | None:
    """The competitor rule that learns from sales, if the rules have one."""
    return next((rule for rule in rules.fit if rule.learned_from_sales), None)


def learnable_domain(email: object, rules: Rules) -> str | None:
    """The company domain a competitor's address teaches, or None: the rules learn nothing, the address has
    no valid domain, it is a consumer or student mailbox (another email rule costing points matches it), or
    the domain is known already."""
    rule = learning_rule(rules)
    if rule is None or not isinstance(email, str) or "@" not in email:
        return None
    address = email.strip().lower()
    domain = address.rsplit("@", 1)[1].strip(".")
    if not DOMAIN.match(domain) or domain in CONSUMER_MAILBOXES:
        return None
    if in_domains(address, rule.domain_set):
        return None
    for other in rules.fit:
        if other is rule or other.trait != "email" or other.points >= 0:
            continue
        if other.pattern is not None and other.pattern.search(address):
            return None
        if other.domains is not None and in_domains(address, other.domain_set):
            return None
    return domain


def with_learned_competitors(rules: Rules, domains: Collection[str]) -> Rules:
    """`rules` with `domains` added to the rule that learns from sales (a new document, so the scoring
    caches it carries start empty); `rules` itself when there is nothing to add."""
    rule = learning_rule(rules)
    if rule is None or not domains:
        return rules
    known = list(rule.domains or ())
    added = sorted(set(domains) - rule.domain_set)
    if not added:
        return rules
    fit = [
        {**r.model_dump(exclude_none=True), "domains": [*known, *added]} if r is rule else r.model_dump()
        for r in rules.fit
    ]
    return Rules.model_validate({**rules.model_dump(), "fit": fit})
