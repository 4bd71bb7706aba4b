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

import pytest
from chalice.local import LocalGateway

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Loop

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
    answer = loop.client.http.request("PATCH", "/templates/welcome", headers={"Authorization": "Bearer x"})
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "PUT"}
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
