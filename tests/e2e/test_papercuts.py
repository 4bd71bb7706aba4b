"""Papercuts a newcomer found (issue 16, item 6), each checked the way that newcomer met it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.local import LocalGateway

from tests.conftest import REPO_ROOT, script_module
from tests.e2e import test_webhooks as webhooks
from tests.e2e.conftest import Loop
from tests.e2e.test_webhooks import confirmed, hooks  # noqa: F401 - the webhooks' fixtures

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import chalice_compat  # noqa: E402 - what the local stack applies to chalice local

# ------------------------------------------------------------------ unknown paths and methods


@pytest.fixture
def local_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local gateway as `make run` serves it (restored afterwards)."""
    monkeypatch.setattr(LocalGateway, "handle_request", LocalGateway.handle_request)
    chalice_compat.answer_unknown_routes()


@pytest.mark.parametrize("path", ["/nope", "/leads/x/y/z/w", "/"])
def test_a_path_no_route_serves_answers_the_documented_404(
    loop: Loop, local_gateway: None, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer dev-sales-key"}):
        answer = loop.client.http.get(path, headers=headers)
        assert answer.status_code == 404, answer.body
        assert answer.json_body["error"]["code"] == "not_found"
        assert "openapi.yaml" in answer.json_body["error"]["message"]


def test_a_method_the_path_does_not_serve_answers_the_documented_405(loop: Loop) -> None:
    answer = loop.client.http.delete("/health")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET"
    assert answer.json_body == {
        "error": {"code": "method_not_allowed", "message": "DELETE is not served on /health; use GET"}
    }
    answer = loop.client.http.request("POST", "/templates/welcome", headers={"Authorization": "Bearer x"})
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "PUT", "PATCH", "DELETE"}
    assert answer.json_body["error"]["code"] == "method_not_allowed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chalice_local() -> Iterator[str]:
    """chalice local as the local stack starts it."""
    port = _free_port()
    argv = [sys.executable, str(REPO_ROOT / "scripts" / "local_stack.py"), "chalice-local"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-autoreload", "--stage", "local"]
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    process = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_make_runs_api_answers_an_unknown_path_with_the_documented_404(chalice_local: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{chalice_local}/no/such/route", timeout=10)
    assert refused.value.code == 404
    assert json.loads(refused.value.read())["error"]["code"] == "not_found"


# ------------------------------------------------------------------ clients find the running stack


@pytest.fixture
def running_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A stack started with PORT=18123 and LEADLOOP_DYNAMODB_PORT=<a moto server's port>, as its stack
    file records it; the caller's environment says nothing about either (Makefile's default PORT=8000)."""
    from moto.server import ThreadedMotoServer

    local_stack = script_module("local_stack")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("LEADLOOP_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PORT", raising=False)  # the Makefile passes PORT on only when it is given
    for name in (
        "LEADLOOP_DYNAMODB_PORT",
        "LEADLOOP_DYNAMODB_ENDPOINT",
        "LEADLOOP_TABLE_PREFIX",
        "LEADLOOP_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    started_with = {
        "PORT": "18123",
        "LEADLOOP_DYNAMODB_PORT": str(port),
        "LEADLOOP_MOTO_PORT": str(port),
        "LEADLOOP_LOCAL_DIR": str(tmp_path / "state"),
        "LEADLOOP_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LEADLOOP_DEV_MARKETING_KEY": "their-marketing-key",
    }
    layout = local_stack.layout_from_env(started_with)
    env = local_stack.stack_environment(layout, started_with)
    local_stack.write_stack_file(layout, env)
    try:
        yield {"url": layout.public_url, "env": env, "dynamodb_port": port}
    finally:
        server.stop()


def test_make_keys_uses_the_running_stacks_dynamodb_port(running_stack: dict[str, Any]) -> None:
    from chalicelib.adapters.bootstrap import ensure_local_resources, seed_dev_keys
    from chalicelib.config import load_settings

    env = running_stack["env"]
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        settings = load_settings()
        ensure_local_resources(settings)
        seed_dev_keys(settings)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    done = subprocess.run(
        ["make", "--no-print-directory", "keys", "ARGS=list"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "their-marketing-key" not in done.stdout  # listings never show a key
    assert "marketing" in done.stdout, done.stdout  # the dev keys the stack seeded


def test_make_report_asks_the_running_stack(
    running_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = script_module("report")
    asked: list[tuple[str, str]] = []

    def from_api(url: str, key: str, start: str | None, end: str | None) -> dict[str, Any]:
        asked.append((url, key))
        raise urllib.error.URLError("stop here")

    monkeypatch.setattr(report, "from_api", from_api)
    report.main([])
    assert asked == [("http://127.0.0.1:18123", "their-marketing-key")]


def test_make_demo_without_port_uses_the_running_stack(
    running_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = script_module("demo")
    monkeypatch.setattr(demo, "is_serving", lambda url: url == running_stack["url"])
    played: list[tuple[str, Any]] = []
    monkeypatch.setattr(demo, "play", lambda url, env: played.append((url, dict(env))))
    monkeypatch.setattr(demo.LocalStack, "start", lambda self: pytest.fail("started a second stack"))
    assert demo.main() == 0
    ((url, env),) = played
    assert url == running_stack["url"]
    assert env["LEADLOOP_OUTBOX_DIR"] == running_stack["env"]["LEADLOOP_OUTBOX_DIR"]
    assert env["LEADLOOP_DEV_MARKETING_KEY"] == "their-marketing-key"


# ------------------------------------------------------------------ the banner names unconfigured webhooks


def test_make_runs_banner_names_the_unconfigured_webhooks_and_how_to_configure_them(tmp_path: Path) -> None:
    local_stack = script_module("local_stack")
    environ = {
        "LEADLOOP_LOCAL_DIR": str(tmp_path),
        "LEADLOOP_MAILGUN_SIGNING_KEY": "key-1",
        "LEADLOOP_CRM_SECRET": "s3cret",
        "LEADLOOP_POSTMARK_USERNAME": "only-half",
    }
    banner = local_stack.LocalStack.from_env(environ).banner()
    line = next(line for line in banner.splitlines() if "not configured" in line)
    for provider in ("sendgrid", "postmark", "ses", "resend", "hubspot"):
        assert provider in line
    for configured in ("mailgun", "crm"):
        assert configured not in line
    assert "LEADLOOP_SENDGRID_PUBLIC_KEY_B64" in banner and "LEADLOOP_POSTMARK_PASSWORD" in banner
    assert 'README "Configuring the webhook secrets"' in banner
    assert "s3cret" not in banner and "key-1" not in banner
    assert "/console (sign in with" in banner  # a newcomer finds the console from the banner


# ------------------------------------------------------------------ only SES/SNS confirms subscriptions


NOT_SNS = {
    "hubspot": "hubspot/webhook_batch_v3_signed.json",
    "sendgrid": "sendgrid/event_batch_signed.json",
    "mailgun": "mailgun/delivered_signed.json",
    "resend": "resend/email_delivered_signed.json",
    "postmark": "postmark/delivery.json",
}


@pytest.mark.usefixtures("hooks")
@pytest.mark.parametrize("provider", ["crm", *NOT_SNS])
def test_a_webhook_that_is_not_sns_answers_only_what_it_received(loop: Loop, provider: str) -> None:
    if provider == "crm":
        event = {"id": "crm-1", "lead": "x@example.com", "action": "won", "actor": "jane", "amount": 10}
        fixture_headers, payload = {}, {"events": [event]}
    else:
        _, payload, fixture_headers = webhooks.load_fixture(NOT_SNS[provider], {})
    answer = webhooks.sign(provider, payload, datetime.now(UTC), fixture_headers).post(loop)
    assert answer.status_code == 200, answer.body
    assert set(answer.json_body) == {"received"}


# ------------------------------------------------------------------ the demo shows a nurture email as one


def _eml(path: Path, subject: str, headers: dict[str, str], mtime: float) -> None:
    extra = "".join(f"{name}: {value}\n" for name, value in headers.items())
    path.write_text(
        f"From: a@example.com\nTo: b@example.com\nSubject: {subject}\n{extra}\nbody of {subject}\n"
    )
    os.utime(path, (mtime, mtime))


def test_make_demo_shows_a_nurture_email_not_a_sales_notification(tmp_path: Path) -> None:
    demo = script_module("demo")
    now = time.time()
    _eml(
        tmp_path / "1.eml",
        "Why teams pick us",
        {"X-Leadloop-Template": "welcome@1", "X-Leadloop-Lead-Id": "L-1"},
        now - 60,
    )
    _eml(tmp_path / "2.eml", "New sales-ready lead: Ada", {}, now)  # a sales notification, newer
    lead = {"id": "L-9", "next_touch_at": "2999-01-01T00:00:00+00:00"}
    shown = demo.show_email(tmp_path, now - 120, lead, marketing=None)
    assert "Why teams pick us" in shown
    assert "sales-ready" not in shown


# ------------------------------------------------------------------ template names and stale edits


MARKETING_TEXT = {"Authorization": "Bearer dev-marketing-key", "Content-Type": "text/plain"}


def test_a_bad_template_name_is_echoed_as_written(loop: Loop) -> None:
    answer = loop.client.http.get("/templates/no%20such%20%C3%A9", headers=MARKETING_TEXT)
    assert answer.status_code == 404
    assert "'no such é'" in answer.json_body["error"]["message"]
    assert "%20" not in answer.json_body["error"]["message"]


def test_a_stale_if_match_names_the_template_not_its_storage_key(loop: Loop) -> None:
    source = loop.client.http.get("/templates/pricing-roi", headers=MARKETING_TEXT).json_body["source"]
    changed = source.replace("{% block text %}", "{% block text %}v1\n", 1)
    stale = {**MARKETING_TEXT, "If-Match": '"0"'}
    assert (
        loop.client.http.put("/templates/pricing-roi", headers=stale, body=changed.encode()).status_code
        == 200
    )
    answer = loop.client.http.put("/templates/pricing-roi", headers=stale, body=changed.encode())
    assert answer.status_code == 409
    message = answer.json_body["error"]["message"]
    assert "#" not in message
    assert message == (
        "template 'pricing-roi' was saved by someone else after version 0; "
        "reload it and apply your change again"
    )
