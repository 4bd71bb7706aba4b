"""The console's lead page on the local stack: how long a signed-in salesperson waits for one lead's page.

Boots `scripts/local_stack.py` as bench/latency.py does (DynamoDB Local, moto, the runner, chalice local on
free loopback ports), routes one lead through `/v1/batch` (pages, identify, a demo request), signs in to
the console with the sales key as a browser would (the sign-in form's CSRF token and cookie, then the POSTed
key) and GETs `/console/leads/{id}` repeatedly: the server's whole render (summary, activity, timeline,
next touch, engagement chart) over HTTP, one request at a time. Reports p50, p90 and max against the
issue's target (≤ 1 s). A figure for bench/results.json, never a test assertion.
"""

from __future__ import annotations

import http.client
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.latency import (
    NOTIFICATION_TIMEOUT_S,
    SALES_KEY,
    dynamodb_jar,
    hand_raise,
    page_view,
    post_batch,
    request,
    running_stack,
    sales_headers,
)

RENDERS = 50
TARGET_S = 1.0  # issue 13: a lead page renders in ≤ 1 s on the local stack


def _call(
    base: str, method: str, path: str, cookie: str = "", body: str | None = None
) -> tuple[int, str, str]:
    """(status, body, the session cookie it set or ''); no redirects followed: the cookie rides on a 303."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        text = answer.read().decode(errors="replace")
        set_cookie = (answer.getheader("Set-Cookie") or "").split(";", 1)[0]
        return answer.status, text, set_cookie
    finally:
        connection.close()


def _sign_in(base: str, key: str) -> str:
    _, form, anonymous = _call(base, "GET", "/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    if token is None:
        raise RuntimeError("the sign-in page carries no CSRF token")
    status, _, session = _call(
        base, "POST", "/console/sign-in", anonymous, urlencode({"key": key, "csrf": token.group(1)})
    )
    if status != 303 or not session:
        raise RuntimeError(f"console sign-in answered {status}")
    return session


def _routed_lead(base: str, run: str) -> str:
    user = f"console-bench-{run}"
    email = f"{user}@bench.example"
    post_batch(base, [page_view(user, path) for path in ("/pricing", "/docs/api", "/security")])
    post_batch(base, hand_raise(user, email))
    deadline = time.monotonic() + NOTIFICATION_TIMEOUT_S * 3
    while time.monotonic() < deadline:
        status, body = request(f"{base}/leads/{email}", headers=sales_headers(SALES_KEY))
        if status == 200 and isinstance(body, dict) and body.get("state") == "sales_ready":
            return str(body["id"])
        time.sleep(0.2)
    raise RuntimeError("the bench lead was not routed to sales in time")


def _nearest_rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


def measure(renders: int = RENDERS) -> dict[str, Any]:
    jar = dynamodb_jar()
    if jar is None:
        return {"skipped": "DynamoDB Local or Java is not installed (make dynamodb-local)"}
    with (
        tempfile.TemporaryDirectory(prefix="leadloop-console-") as scratch,
        running_stack(Path(scratch), jar) as stack,
    ):
        lead_id = _routed_lead(stack.url, uuid.uuid4().hex[:6])
        cookie = _sign_in(stack.url, SALES_KEY)
        path = f"/console/leads/{lead_id}"
        status, page, _ = _call(stack.url, "GET", path, cookie)  # the first render loads templates: not timed
        if status != 200 or "Journey" not in page:
            raise RuntimeError(f"the lead page answered {status}")
        seconds: list[float] = []
        for _ in range(renders):
            started = time.perf_counter()
            status, page, _ = _call(stack.url, "GET", path, cookie)
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"the lead page answered {status}")
    seconds.sort()
    return {
        "renders": renders,
        "page_bytes": len(page.encode()),
        "p50_ms": round(_nearest_rank(seconds, 0.5) * 1000, 1),
        "p90_ms": round(_nearest_rank(seconds, 0.9) * 1000, 1),
        "max_ms": round(seconds[-1] * 1000, 1),
        "target_ms": TARGET_S * 1000,
        "within_target": seconds[-1] <= TARGET_S,
    }


def render(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"console lead page: skipped ({result['skipped']})"
    return (
        f"console lead page, local stack ({result['renders']} renders, {result['page_bytes']:,} bytes): "
        f"p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, max {result['max_ms']} ms "
        f"(target ≤ {result['target_ms']:.0f} ms)"
    )
