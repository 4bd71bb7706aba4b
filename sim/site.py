"""The simulated company's website: its pages and downloadable assets, and which of the rules' topics each
one is about.

The site is the sim's own world, written like a real B2B SaaS site (pricing, docs, customers, careers), not
derived from the rules. What a page is *about* in the rules' vocabulary is decided by the rules themselves
(each topic's `url` pattern, as `chalicelib.domain.profiling` applies it), so when the rules' vocabulary
changes, the sim's hidden interests follow it: a prospect's interests are drawn from the rules' topics that
at least one page or asset of the site matches (a topic the site has no content for cannot be read about).

`intent` marks pages that buyers read near a decision (pricing, security, integration docs): the sim's
behaviour model raises their share as a buyer nears and enters their readiness window. That is a property
of the page, not of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.rules import Rules


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    category: str  # what the site's own analytics labels it (sent as properties.category)
    intent: bool = False
    careers: bool = False


@dataclass(frozen=True, slots=True)
class Asset:
    """A gated download; the site sends `Content Downloaded` with its name, URL and its own topic label."""

    name: str
    url: str
    label: str | None  # the site's taxonomy label (properties.topic), None for general content
    category: str


PAGES: tuple[Page, ...] = (
    Page("/", "Acme Analytics", "home"),
    Page("/features", "Features", "product"),
    Page("/product", "Product overview", "product"),
    Page("/about", "About us", "company"),
    Page("/blog/five-kpis-every-ops-team-tracks", "Five KPIs every ops team tracks", "blog"),
    Page("/blog/why-spreadsheets-break", "Why spreadsheets break at scale", "blog"),
    Page("/blog/data-team-hiring-guide", "Hiring your first data team", "blog"),
    Page("/blog/warehouse-vs-lake", "Warehouse or lake?", "blog"),
    Page("/docs", "Documentation", "docs"),
    Page("/docs/concepts", "Concepts", "docs"),
    Page("/pricing", "Pricing", "pricing", intent=True),
    Page("/plans/enterprise", "Enterprise plan", "pricing", intent=True),
    Page("/roi-calculator", "ROI calculator", "roi", intent=True),
    Page("/value", "The value of Acme Analytics", "roi"),
    Page("/integrations", "Integrations", "integrations", intent=True),
    Page("/integrations/snowflake", "Snowflake integration", "integrations", intent=True),
    Page("/integrations/salesforce", "Salesforce integration", "integrations"),
    Page("/docs/api", "API reference", "docs", intent=True),
    Page("/docs/api/webhooks", "Webhooks", "docs"),
    Page("/developers", "Developers", "docs"),
    Page("/security", "Security", "security", intent=True),
    Page("/trust", "Trust center", "security", intent=True),
    Page("/compliance/gdpr", "GDPR", "security"),
    Page("/security/soc2", "SOC 2 report", "security", intent=True),
    Page("/features/reporting", "Reporting", "product"),
    Page("/dashboards", "Dashboards", "product"),
    Page("/analytics/templates", "Analytics templates", "product"),
    Page("/customers", "Customers", "customers"),
    Page("/customers/northwind-retail", "Northwind Retail", "customers"),
    Page("/case-studies/fintech-month-end", "Fintech month-end close", "customers"),
    Page("/docs/getting-started", "Getting started", "docs"),
    Page("/tour", "Product tour", "product"),
    Page("/onboarding/checklist", "Onboarding checklist", "docs"),
    Page("/careers", "Careers", "careers", careers=True),
    Page("/jobs/data-engineer", "Data Engineer (remote)", "careers", careers=True),
    Page("/careers/life-at-acme", "Life at Acme", "careers", careers=True),
)

ASSETS: tuple[Asset, ...] = (
    Asset("Security whitepaper", "/assets/security-whitepaper.pdf", "security", "whitepaper"),
    Asset("ROI workbook", "/assets/roi-workbook.xlsx", "roi", "tool"),
    Asset("Pricing guide", "/assets/pricing-guide.pdf", "pricing", "guide"),
    Asset("API reference (PDF)", "/assets/integrations-api-reference.pdf", "integrations", "guide"),
    Asset(
        "Northwind Retail case study", "/assets/customers/northwind-retail.pdf", "case-studies", "case study"
    ),
    Asset("Dashboard templates", "/assets/dashboards-templates.zip", "reporting", "template"),
    Asset("Onboarding checklist", "/assets/onboarding-checklist.pdf", "getting-started", "checklist"),
    Asset("State of analytics 2026", "/assets/state-of-analytics-2026.pdf", None, "report"),
)


def topics_at(rules: Rules, location: str) -> tuple[str, ...]:
    """The rules' topics whose URL pattern matches `location` (as the product matches a page path)."""
    return tuple(
        rule.topic
        for rule in rules.topics
        if rule.url_pattern is not None and rule.url_pattern.search(location)
    )


@dataclass(frozen=True)
class SiteMap:
    """The site read through one rules document: pages and assets per topic, the topics it has content for."""

    pages_by_topic: dict[str, tuple[Page, ...]]
    assets_by_topic: dict[str, tuple[Asset, ...]]
    generic: tuple[Page, ...]  # neither intent nor careers: home, blog, product, docs
    intent: tuple[Page, ...]
    careers: tuple[Page, ...]
    docs: tuple[Page, ...]

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.pages_by_topic) | set(self.assets_by_topic)))


def site_map(rules: Rules) -> SiteMap:
    pages: dict[str, list[Page]] = {}
    for page in PAGES:
        for topic in topics_at(rules, page.path):
            pages.setdefault(topic, []).append(page)
    assets: dict[str, list[Asset]] = {}
    for asset in ASSETS:
        for topic in topics_at(rules, asset.url):
            assets.setdefault(topic, []).append(asset)
    return SiteMap(
        pages_by_topic={topic: tuple(found) for topic, found in pages.items()},
        assets_by_topic={topic: tuple(found) for topic, found in assets.items()},
        generic=tuple(p for p in PAGES if not p.intent and not p.careers),
        intent=tuple(p for p in PAGES if p.intent),
        careers=tuple(p for p in PAGES if p.careers),
        docs=tuple(p for p in PAGES if p.path.startswith(("/docs", "/developers"))),
    )
