"""`make demo`: three prospects' journeys played through Leadloop's public HTTP API, then what sales sees.

Tracking goes through the real Segment Python client (as a customer's backend would send it); sales and
marketing calls are plain HTTP with the dev keys. Uses the stack at LEADLOOP_URL (default: port $PORT when
given, else the running local stack found through its .local/data/stack.json, else port 8000) when one
answers there, otherwise starts one with scripts/local_stack.py's `LocalStack` and stops it afterwards.
Prints the lead pool, one lead's summary (scores with their breakdown, interests, history) and one email
from the outbox.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from segment.analytics import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_stack import (  # noqa: E402
    DEV_KEY_DEFAULTS,
    REPO_ROOT,
    LocalStack,
    StackError,
    client_environment,
    local_url,
)

WAIT_S = 45.0
EMAIL_WAIT_S = 60.0


class DemoError(Exception):
    """The demo could not go on; the message says what failed."""


@dataclass(frozen=True, slots=True)
class Prospect:
    """One scripted journey: who they are and what they do on the website."""

    user_id: str
    anonymous_id: str
    traits: dict[str, Any]
    pages: tuple[str, ...]
    identify_first: bool
    hand_raise: str | None = None

    @property
    def email(self) -> str:
        return str(self.traits["email"])


def cast(run: str) -> list[Prospect]:
    """Three prospects; `run` keeps this run's people apart from earlier runs (local data persists)."""
    return [
        # Browses anonymously, then identifies and asks for a demo: a hand-raise routes to sales at once.
        Prospect(
            user_id=f"ada-{run}",
            anonymous_id=f"anon-ada-{run}",
            traits={
                "email": f"ada.lovelace+{run}@analytical-engines.example",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "title": "VP Engineering",
                "company": {"name": "Analytical Engines", "employee_count": 1200, "industry": "software"},
                "address": {"country": "GB"},
            },
            pages=("/pricing", "/docs/api", "/security"),
            identify_first=False,
            hand_raise="Demo Requested",
        ),
        # A good fit who keeps coming back to pricing: qualifies on score; sales will recycle her.
        Prospect(
            user_id=f"grace-{run}",
            anonymous_id=f"anon-grace-{run}",
            traits={
                "email": f"grace.hopper+{run}@compiler-systems.example",
                "firstName": "Grace",
                "lastName": "Hopper",
                "title": "Director of IT",
                "company": {"name": "Compiler Systems", "employee_count": 300, "industry": "saas"},
                "address": {"country": "US"},
            },
            pages=("/pricing", "/docs/api", "/pricing", "/security", "/docs/api", "/pricing"),
            identify_first=True,
        ),
        # An engineer from a free mailbox reading the API docs: stays in nurture.
        Prospect(
            user_id=f"linus-{run}",
            anonymous_id=f"anon-linus-{run}",
            traits={
                "email": f"linus.{run}@gmail.com",
                "firstName": "Linus",
                "title": "Software Engineer",
                "company": "Hobby Kernel",
            },
            pages=("/docs/api", "/security"),
            identify_first=False,
        ),
    ]


class Api:
    """Leadloop's sales/marketing HTTP API with a Bearer key; errors become DemoError with the answer."""

    def __init__(self, base_url: str, key: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._key = key

    def get(self, path: str, **query: str) -> Any:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self._call("GET", path + suffix, None)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._call("POST", path, json.dumps(body).encode())

    def _call(self, method: str, path: str, body: bytes | None) -> Any:
        request = urllib.request.Request(
            self._base_url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise DemoError(f"{method} {path} answered {exc.code}: {detail}") from exc


def is_serving(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def stack_at(base_url: str, environ: Mapping[str, str]) -> Iterator[Mapping[str, str]]:
    """Yield the environment of a stack serving `base_url`: the running one, or one started for the demo."""
    if is_serving(base_url):
        print(f"Using the stack already running at {base_url}")
        yield client_environment(environ)  # its outbox and dev keys, when it is the local stack
        return
    port = urllib.parse.urlsplit(base_url).port or 80
    stack = LocalStack.from_env({**environ, "PORT": str(port)}, chalice_to_log=True)
    print(f"No stack at {base_url}: starting one (logs in {stack.layout.log_dir}) ...", flush=True)
    try:
        stack.start()
        # The runner calls the handlers in this process; their per-tick log lines would interleave the story.
        logging.getLogger("leadloop").setLevel(logging.WARNING)
        yield stack.env
    finally:
        stack.stop()


def track_journeys(base_url: str, write_key: str, prospects: list[Prospect]) -> None:
    """Send every prospect's journey with the Segment client, in one batched flush, as a backend would."""
    errors: list[str] = []
    client = Client(
        write_key=write_key,
        host=base_url,
        max_retries=1,
        on_error=lambda error, batch: errors.append(f"{error} ({len(batch)} messages)"),
    )
    for person in prospects:
        if person.identify_first:
            client.identify(person.user_id, person.traits, anonymous_id=person.anonymous_id)
        for path in person.pages:
            known = person.identify_first
            who = {"user_id": person.user_id} if known else {"anonymous_id": person.anonymous_id}
            client.page(
                **who,
                category="Website",
                name=path.strip("/").title(),
                properties={"path": path, "url": f"https://leadloop.example{path}"},
            )
        if not person.identify_first:
            client.identify(person.user_id, person.traits, anonymous_id=person.anonymous_id)
        if person.hand_raise:
            client.track(person.user_id, person.hand_raise, {"source": "pricing-page"})
    client.flush()
    client.shutdown()
    if errors:
        raise DemoError("the tracking API refused events: " + "; ".join(errors))


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """Poll `probe` until it returns something truthy: the worker applies events asynchronously."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise DemoError(f"gave up after {timeout_s:.0f} s waiting for {what}")


def lead_ref(email: str) -> str:
    # '@' and '+' are legal in a path segment; sent raw, the route matches whether or not it decodes.
    return urllib.parse.quote(email, safe="@+")


def lead_in_state(sales: Api, email: str, state: str) -> dict[str, Any] | None:
    try:
        summary: dict[str, Any] = sales.get(f"/leads/{lead_ref(email)}")
    except DemoError:
        return None  # not applied yet: the worker has not seen this prospect
    return summary if summary.get("state") == state else None


def pool_table(leads: list[dict[str, Any]], ours: set[str]) -> str:
    rows = [("", "email", "name", "company", "state", "score", "owner")]
    for lead in leads:
        score = lead.get("score")
        rows.append(
            (
                "*" if lead.get("email") in ours else "",
                str(lead.get("email") or lead.get("id")),
                str(lead.get("name") or ""),
                str(lead.get("company") or ""),
                str(lead.get("state")),
                f"{score:.1f}" if isinstance(score, int | float) else str(score or ""),
                str(lead.get("owner") or ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def summary_text(summary: Mapping[str, Any]) -> str:
    identity = summary.get("identity") or {}
    scores = summary.get("scores") or {}
    lines = [
        f"{identity.get('name') or summary['id']} <{identity.get('email')}>, {identity.get('title')} at "
        f"{identity.get('company')}",
        f"state {summary['state']}  owner {summary.get('owner') or '-'}  persona {summary.get('persona')}  "
        f"stage {summary.get('stage')}",
        f"why sales: {summary.get('why_sales') or '-'}",
        f"scores: fit {scores.get('fit')}  engagement {scores.get('engagement')}"
        f"  total {scores.get('total')}",
    ]
    lines += [f"  {b['kind']:<10} {b['rule']:<24} {b['points']:+g}" for b in scores.get("breakdown", [])]
    interests = ", ".join(f"{i['topic']} ({i['weight']:.1f})" for i in summary.get("interests", []))
    lines.append(f"interests: {interests or '-'}")
    lines.append("key moments:")
    lines += [f"  {m['at']}  {m['text']}" for m in summary.get("key_moments", [])[:8]]
    lines.append("history:")
    for t in summary.get("history", []):
        reason = f", {t['reason']}" if t.get("reason") else ""
        lines.append(f"  {t['at']}  {t['from']} -> {t['to']}  ({t['trigger']}{reason})")
    return "\n".join(lines)


def email_text(path: Path) -> str:
    """Headers and the plain-text part of an .eml file, as a person would read it."""
    from email import policy
    from email.parser import BytesParser

    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    headers = "\n".join(f"{name}: {value}" for name, value in message.items())
    body = message.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else "(no text part)"
    return f"{path}\n\n{headers}\n\n{text.strip()}"


# Nurture emails name their template (chalicelib/usecases/nurture.py); sales notifications do not.
NURTURE_HEADER = "X-Leadloop-Template"
LEAD_HEADER = "X-Leadloop-Lead-Id"


def _headers(path: Path) -> Any:
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(path.read_bytes(), headersonly=True)


def newest_email(outbox: Path, since: float, lead_id: str | None = None) -> Path | None:
    """The newest nurture email since `since` (to `lead_id` when given); never a sales notification."""
    emails = sorted(
        (path for path in outbox.glob("*.eml") if path.stat().st_mtime >= since),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for path in emails:
        headers = _headers(path)
        if headers.get(NURTURE_HEADER) and lead_id in (None, headers.get(LEAD_HEADER)):
            return path
    return None


def play(base_url: str, env: Mapping[str, str]) -> None:
    started = time.time()
    run = uuid.uuid4().hex[:6]
    prospects = cast(run)
    ada, grace, linus = prospects
    sales = Api(base_url, env.get("LEADLOOP_DEV_SALES_KEY") or DEV_KEY_DEFAULTS["LEADLOOP_DEV_SALES_KEY"])
    write_key = env.get("LEADLOOP_DEV_WRITE_KEY") or DEV_KEY_DEFAULTS["LEADLOOP_DEV_WRITE_KEY"]

    section("1. Tracking: 3 prospects browse /pricing, /docs/api, /security; Ada requests a demo")
    track_journeys(base_url, write_key, prospects)
    print(f"sent {sum(len(p.pages) + 1 + bool(p.hand_raise) for p in prospects)} events via analytics-python")

    section("2. The worker routes Ada (hand-raise) and Grace (score) to sales; Linus stays in nurture")
    for person, state in ((ada, "sales_ready"), (grace, "sales_ready"), (linus, "nurturing")):
        wait_for(f"{person.email} to be {state}", partial(lead_in_state, sales, person.email, state))
        print(f"{person.email}: {state}")

    section("3. Sales recycles Grace: bad timing, revisit in 90 days")
    grace_id = sales.get(f"/leads/{lead_ref(grace.email)}")["id"]
    sales.post(
        f"/leads/{grace_id}/recycle",
        {"reason": "bad_timing", "note": "Budget opens next fiscal year", "revisit_in_days": 90},
    )
    wait_for("Grace back in nurture", lambda: lead_in_state(sales, grace.email, "nurturing"))
    print(f"{grace.email}: nurturing (recycled: bad_timing)")

    section("The lead pool (GET /leads; * = this run)")
    pool = sales.get("/leads", limit="20")
    print(pool_table(pool.get("leads", []), {p.email for p in prospects}))

    section("Ada's summary (GET /leads/{id})")
    print(summary_text(sales.get(f"/leads/{lead_ref(ada.email)}")))

    section("Linus's nurture email (from the outbox, or previewed)")
    outbox = Path(env.get("LEADLOOP_OUTBOX_DIR") or REPO_ROOT / "outbox")
    linus_summary = sales.get(f"/leads/{lead_ref(linus.email)}")
    print(show_email(outbox, started, linus_summary, Api(base_url, marketing_key(env))))


def marketing_key(env: Mapping[str, str]) -> str:
    return env.get("LEADLOOP_DEV_MARKETING_KEY") or DEV_KEY_DEFAULTS["LEADLOOP_DEV_MARKETING_KEY"]


def show_email(outbox: Path, started: float, lead: Mapping[str, Any], marketing: Api) -> str:
    """This run's first touch when it falls due within a minute; else the newest email in the outbox;
    else what the touch will look like (a preview), since the rules' cadence decides when it goes out."""
    due_in = seconds_until(lead.get("next_touch_at"))
    if due_in is not None and due_in <= EMAIL_WAIT_S:
        email = wait_for(
            "the first nurture email in the outbox",
            lambda: newest_email(outbox, started, str(lead["id"])),
            timeout_s=due_in + EMAIL_WAIT_S,
        )
        return email_text(email)
    when = f"Linus's first touch is due at {lead.get('next_touch_at')} (the rules' cadence)"
    email = newest_email(outbox, 0)
    if email is not None:
        return (
            f"({when}; meanwhile, the newest nurture email already in the outbox, to another lead:)\n\n"
            f"{email_text(email)}"
        )
    templates = marketing.get("/templates").get("templates", [])
    if not templates:
        return f"{when}; no templates to preview"
    chosen = next((t for t in templates if "integrations" in (t.get("topics") or [])), templates[0])
    preview = marketing.post(f"/templates/{chosen['name']}/preview", {"lead_id": lead["id"]})
    headers = "\n".join(f"{name}: {value}" for name, value in (preview.get("headers") or {}).items())
    return (
        f"({when}; the outbox is empty, so here is POST /templates/{chosen['name']}/preview for him:)\n\n"
        f"From: {preview.get('from')}\nTo: {preview.get('to')}\nSubject: {preview.get('subject')}\n"
        f"{headers}\n\n{str(preview.get('text') or '').strip()}"
    )


def seconds_until(moment: str | None) -> float | None:
    if not moment:
        return None
    return max(0.0, (datetime.fromisoformat(moment) - datetime.now(UTC)).total_seconds())


def section(title: str) -> None:
    print(f"\n== {title}\n", flush=True)


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, even through a pipe
    base_url = os.environ.get("LEADLOOP_URL") or local_url(os.environ)
    try:
        with stack_at(base_url, os.environ) as env:
            play(base_url, env)
    except (DemoError, StackError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
