"""The console's tests: over HTTP in-process (the e2e loop fixture), and in a real Chromium.

The browser tests serve app.py on a free port with chalice's own local server (what `chalice local` runs)
in a thread of the test process, over moto's DynamoDB and SQS, as the e2e loop does; prospects arrive
through `/v1/batch` on that server and the queue is drained into the worker handler. Chromium is Debian's
(/usr/bin/chromium, installed by scripts/install_chromium.sh); Playwright never downloads a browser.
axe-core comes from node_modules (package-lock.json pins it) and is evaluated in each page checked.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from moto import mock_aws

from chalicelib import wiring
from chalicelib.adapters.bootstrap import ensure_local_resources, seed_dev_keys
from chalicelib.config import load_settings
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Loop, loop  # noqa: F401 - the in-process loop, for the HTTP-level console tests

CHROMIUM = Path(os.environ.get("LEADLOOP_CHROMIUM", "/usr/bin/chromium"))
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "docs" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WRITE_KEY = "dev-write-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ConsoleStack:
    url: str
    loop: Loop

    def batch(self, batch: dict[str, Any]) -> None:
        """POST a Segment batch to the served app, as a tracking client would, and apply it."""
        basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/v1/batch",
            data=json.dumps(batch).encode(),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        self.loop.drain()


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalDevServer, create_local_server

    tmp = tmp_path_factory.mktemp("console")
    port = _free_port()
    env = {
        "LEADLOOP_STAGE": "test",
        "LEADLOOP_TABLE_PREFIX": f"b{uuid.uuid4().hex[:8]}-",
        "LEADLOOP_OUTBOX_DIR": str(tmp / "outbox"),
        "LEADLOOP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("LEADLOOP_DYNAMODB_ENDPOINT", "LEADLOOP_AWS_ENDPOINT", "LEADLOOP_SLA_STATE_MACHINE_ARN"):
            patch.delenv(name, raising=False)
        settings = load_settings()
        resources = ensure_local_resources(settings)
        patch.setenv("LEADLOOP_QUEUE_URL", resources["queue_url"])
        patch.setenv("LEADLOOP_DLQ_URL", resources["dead_letter_queue_url"])
        seed_dev_keys(settings)
        wiring.reset()
        import app

        config = Config.create(chalice_app=app.app, app_name="leadloop")
        if isinstance(app.app, CustomLocalChalice):
            # chalice's create_local_server rebases the app's class once per process; a second browser test
            # file in the same pytest worker reuses that class (rebasing again is an inheritance cycle).
            server = LocalDevServer(app.app, config, "127.0.0.1", port)
        else:
            server = create_local_server(app.app, config, "127.0.0.1", port)
        thread = threading.Thread(target=server.serve_forever, name="console-server", daemon=True)
        thread.start()
        try:
            loop = Loop(cast(Any, None), wiring.aws("sqs"), resources["queue_url"], tmp / "outbox")
            yield ConsoleStack(f"http://127.0.0.1:{port}", loop)
        finally:
            server.shutdown()
            thread.join(timeout=30)
            wiring.reset()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `bash scripts/install_chromium.sh` (make test does)")
    if not AXE.exists():
        pytest.fail(f"axe-core missing at {AXE}: run `bash scripts/install_chromium.sh` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
