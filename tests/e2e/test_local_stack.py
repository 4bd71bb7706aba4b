"""The local stack as `make run` starts it: real processes, real ports, a real Segment client's bytes.

Boots scripts/local_stack.py (DynamoDB Local, moto server, the queue/schedule runner, chalice local) on free
ports with its state in a temporary directory, sends a captured analytics-python batch and a hand-raise,
waits for the lead to reach the sales pool and for sales to be notified (through the prospects table's
stream), then stops it the way a developer does (Ctrl-C) and checks that nothing it started is left running.

Nothing accepted is lost: N events answered 200 and then Ctrl-C at once, or the runner's process killed
(`kill -9`) mid-stream, are all applied, each once, after a restart (those two boot the stack twice and are
`slow`; the same journal is checked in-process in the default suite).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.queue import JournaledQueue
from tests.conftest import REPO_ROOT, script_module

BOOT_TIMEOUT_S = 120.0
POOL_TIMEOUT_S = 30.0
SEGMENT_WRITE_KEY = "SEG_WRITE_KEY_abc123"  # the key the captured client used
SALES_KEY = "e2e-sales-key"


def _load_local_stack() -> ModuleType:
    return script_module("local_stack")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Stacks:
    """Boots scripts/local_stack.py as `make run` does, on free ports, its state under one folder that
    survives a stop (so a second boot is a restart); whatever it started is killed at the end of the test."""

    def __init__(self, tmp_path: Path, jar: Path) -> None:
        self._tmp_path = tmp_path
        self._jar = jar
        self._started: list[subprocess.Popen[bytes]] = []
        self._children: list[int] = []
        self.boots = 0

    def boot(self) -> tuple[str, subprocess.Popen[bytes], Path]:
        self.boots += 1
        http_port, dynamodb_port, moto_port = _free_ports(3)
        env = {
            **os.environ,
            "PORT": str(http_port),
            "LEADLOOP_DYNAMODB_PORT": str(dynamodb_port),
            "LEADLOOP_MOTO_PORT": str(moto_port),
            "LEADLOOP_DYNAMODB_JAR": str(self._jar),
            "LEADLOOP_LOCAL_DIR": str(self._tmp_path / "state"),
            "LEADLOOP_OUTBOX_DIR": str(self._tmp_path / "outbox"),
            "LEADLOOP_DEV_WRITE_KEY": SEGMENT_WRITE_KEY,
            "LEADLOOP_DEV_SALES_KEY": SALES_KEY,
            "LEADLOOP_TICK_SECONDS": "1",
        }
        log_path = self._tmp_path / f"stack-{self.boots}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "scripts" / "local_stack.py")],
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started.append(process)
        url = f"http://127.0.0.1:{http_port}"
        _wait_until_serving(url, process, log_path)
        self._children.extend(_children_of(process.pid))
        return url, process, log_path

    def kill_everything(self) -> None:
        for process in self._started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in self._children:  # children run in sessions of their own; never leave one behind
            if _running(pid):
                os.killpg(pid, signal.SIGKILL)


def _dynamodb_jar() -> Path:
    jar = _load_local_stack().find_dynamodb_jar()
    if jar is None:
        if os.environ.get("LEADLOOP_SKIP_DYNAMODB_LOCAL") == "1":
            pytest.skip("DynamoDB Local not installed and LEADLOOP_SKIP_DYNAMODB_LOCAL=1")
        pytest.fail("DynamoDB Local is not installed: run `make test` (or scripts/install_dynamodb_local.sh)")
    return jar


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[Stacks]:
    booted = Stacks(tmp_path, _dynamodb_jar())
    try:
        yield booted
    finally:
        booted.kill_everything()


@pytest.fixture
def stack(stacks: Stacks) -> tuple[str, subprocess.Popen[bytes], Path]:
    return stacks.boot()


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if _request(f"{url}/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no answer on /health within {BOOT_TIMEOUT_S:.0f} s:\n{log_path.read_text()[-3000:]}")


def _replay(url: str, capture: dict[str, Any]) -> tuple[int, Any]:
    """Send a captured request's exact bytes and headers (minus the ones tied to the original connection)."""
    connection_bound = ("host", "content-length")
    headers = {name: value for name, value in capture["headers"] if name.lower() not in connection_bound}
    return _request(url + capture["path"], base64.b64decode(capture["wire_body_b64"]), headers)


def _hand_raise(user_id: str) -> bytes:
    return json.dumps(
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Demo Requested",
                    "userId": user_id,
                    "messageId": str(uuid.uuid4()),
                    "timestamp": datetime.now(UTC).isoformat(),
                    "properties": {"source": "e2e"},
                }
            ],
        }
    ).encode()


def _sales_ready(url: str) -> list[dict[str, Any]]:
    sales = {"Authorization": f"Bearer {SALES_KEY}"}
    status, answer = _request(f"{url}/leads?state=sales_ready", headers=sales)
    assert status == 200, answer
    return list(answer["leads"])


@pytest.mark.dynamodb_local
def test_a_hand_raise_reaches_the_sales_pool_and_sales_is_notified_and_ctrl_c_stops_everything(
    stack: tuple[str, subprocess.Popen[bytes], Path], fixtures_dir: Path, tmp_path: Path
) -> None:
    url, process, log_path = stack
    children = _children_of(process.pid)
    assert len(children) >= 3, "expected DynamoDB Local, moto server and chalice local to be running"

    capture = json.loads((fixtures_dir / "tracking-clients" / "segment-plain-batch.json").read_text())
    assert _replay(url, capture) == (200, {"success": True})
    basic = base64.b64encode(f"{SEGMENT_WRITE_KEY}:".encode()).decode()
    track = _request(
        f"{url}/v1/batch",
        _hand_raise("user-123"),
        {"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
    )
    assert track == (200, {"success": True})

    deadline = time.monotonic() + POOL_TIMEOUT_S
    ready = _sales_ready(url)
    while not any(lead.get("email") == "lead@example.com" for lead in ready) and time.monotonic() < deadline:
        time.sleep(0.5)
        ready = _sales_ready(url)
    lead = next((lead for lead in ready if lead.get("email") == "lead@example.com"), None)
    assert lead is not None, f"lead@example.com never reached sales_ready:\n{log_path.read_text()[-3000:]}"
    assert lead["state"] == "sales_ready"
    # The notification is an effect of the routing write: it travels the prospects table's stream to the
    # dispatcher (scripts/local_streams.py), as on AWS.
    notifications = tmp_path / "outbox" / "notifications"
    deadline = time.monotonic() + POOL_TIMEOUT_S
    while not list(notifications.glob(f"*-{lead['id']}.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(notifications.glob(f"*-{lead['id']}.json")), (
        f"sales never notified:\n{log_path.read_text()[-3000:]}"
    )
    # Its counts travel the same stream to its second reader (app.count_effects), once per stream batch.
    sales = {"Authorization": f"Bearer {SALES_KEY}"}
    deadline = time.monotonic() + POOL_TIMEOUT_S
    status, board = _request(f"{url}/metrics", headers=sales)
    while board.get("routed", {}).get("hand_raise", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        status, board = _request(f"{url}/metrics", headers=sales)
    counted = board.get("routed", {}).get("hand_raise")
    assert status == 200 and counted == 1, f"never counted:\n{log_path.read_text()[-3000:]}"

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert [pid for pid in children if _running(pid)] == []


DURABLE_N = 200  # accepted events in the durability checks
DURABLE_BATCH = (
    50  # events per tracking request: the N are accepted in a moment, long before they are applied
)
IN_PROCESS_N = 50  # the same check on moto in-process, which is slow per call
APPLY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 180.0  # a stop drains the queue first


def _track(url: str, events: list[dict[str, Any]]) -> tuple[int, Any]:
    basic = base64.b64encode(f"{SEGMENT_WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
    return _request(f"{url}/v1/batch", json.dumps({"batch": events}).encode(), headers)


def _page_views(count: int) -> dict[str, str]:
    """One page view for each of `count` new prospects: user id -> path."""
    run = uuid.uuid4().hex[:6]
    return {f"durable-{run}-{n}": f"/durable/{run}/{n}" for n in range(count)}


def _accept(url: str, views: dict[str, str]) -> None:
    events = [
        {
            "type": "page",
            "messageId": str(uuid.uuid4()),
            "userId": user,
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {"path": path, "title": "durable"},
        }
        for user, path in views.items()
    ]
    for start in range(0, len(events), DURABLE_BATCH):
        assert _track(url, events[start : start + DURABLE_BATCH]) == (200, {"success": True})


def _applied(url: str, views: dict[str, str]) -> dict[str, list[str]]:
    """Each prospect's page paths as the sales API shows them, once every prospect has one (or time ran
    out: then what there is)."""
    sales = {"Authorization": f"Bearer {SALES_KEY}"}
    applied: dict[str, list[str]] = {}
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while len(applied) < len(views) and time.monotonic() < deadline:
        for user in [user for user in views if user not in applied]:
            status, summary = _request(f"{url}/leads/{user}", headers=sales)
            if status == 200 and summary.get("pages"):
                applied[user] = [page["path"] for page in summary["pages"]]
        if len(applied) < len(views):
            time.sleep(1.0)
    return applied


@pytest.mark.slow
@pytest.mark.dynamodb_local
def test_ctrl_c_right_after_n_accepted_events_then_a_restart_n_applied(stacks: Stacks) -> None:
    url, process, _ = stacks.boot()
    views = _page_views(DURABLE_N)
    _accept(url, views)

    process.send_signal(signal.SIGINT)  # at once: most of the N are still queued
    assert process.wait(timeout=STOP_TIMEOUT_S) == 0

    url, _, log_path = stacks.boot()
    applied = _applied(url, views)
    assert len(applied) == DURABLE_N, f"{DURABLE_N - len(applied)} lost:\n{log_path.read_text()[-3000:]}"
    assert applied == {user: [path] for user, path in views.items()}  # each exactly once


@pytest.mark.slow
@pytest.mark.dynamodb_local
def test_the_runner_killed_mid_stream_then_a_restart_n_applied(stacks: Stacks) -> None:
    url, process, _ = stacks.boot()
    children = _children_of(process.pid)
    views = _page_views(DURABLE_N)
    _accept(url, views)

    os.kill(process.pid, signal.SIGKILL)  # the runner's process: no drain, no cleanup
    process.wait()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    # Its children die with it, moto's in-memory queue included: no orphan keeps a port or the events.
    assert [pid for pid in children if _running(pid)] == []

    url, _, log_path = stacks.boot()
    applied = _applied(url, views)
    assert len(applied) == DURABLE_N, f"{DURABLE_N - len(applied)} lost:\n{log_path.read_text()[-3000:]}"
    assert applied == {user: [path] for user, path in views.items()}


def test_events_accepted_before_every_process_was_killed_are_all_applied_after_the_restart(
    tmp_path: Path,
) -> None:
    """The journal in-process (the default suite's durability check): bodies the local events queue
    accepted, a runner that applied some of them, then moto's memory gone as with `kill -9`; on restart
    the rest is replayed and each body is applied exactly once."""
    local_stack = _load_local_stack()
    journal = local_stack.EventJournal(tmp_path / "journal")
    applied: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        applied.extend(record["body"] for record in event["Records"])
        return {"batchItemFailures": []}

    bodies = [json.dumps({"events": [{"messageId": f"m-{n}"}]}) for n in range(IN_PROCESS_N)]
    with mock_aws():  # the first run: moto's queue lives in this block's memory only
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="events")["QueueUrl"]
        ingest = JournaledQueue(sqs, queue, tmp_path / "journal")
        for start in range(0, IN_PROCESS_N, 10):
            ingest.send_bodies(bodies[start : start + 10])  # each call: one request answered 200
        runner = local_stack.QueueRunner(sqs, queue, handler, journal)
        for _ in range(3):
            runner.poll_once(wait_s=0)
    assert 0 < len(applied) < IN_PROCESS_N  # the crash came mid-stream

    with mock_aws():  # the restart: a fresh, empty moto
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="events")["QueueUrl"]
        assert local_stack.requeue(journal, sqs, queue) == IN_PROCESS_N - len(applied)
        runner = local_stack.QueueRunner(sqs, queue, handler, journal)
        while runner.poll_once(wait_s=0):
            pass
    assert sorted(applied) == sorted(bodies)


def test_a_stop_drains_the_queue_and_what_failed_stays_in_the_journal(tmp_path: Path) -> None:
    local_stack = _load_local_stack()
    journal = local_stack.EventJournal(tmp_path / "journal")
    applied: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        applied.extend(r["body"] for r in event["Records"] if r["body"] != "poison")
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"
            ]
        }

    bodies = [f"event-{n}" for n in range(25)] + ["poison"]
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        JournaledQueue(sqs, queue, tmp_path / "journal").send_bodies(bodies)
        runner = local_stack.QueueRunner(sqs, queue, handler, journal)
        left = runner.drain(timeout_s=60, hurry=threading.Event())

    assert sorted(applied) == sorted(bodies[:-1])
    assert (left.waiting, left.in_flight) == (0, 1)  # the poison waits for redelivery, not for the stop
    assert journal.pending() == ["poison"]  # and the next start replays it


def test_the_runner_deletes_what_the_handler_applied_and_leaves_failures_for_retry_then_the_dlq() -> None:
    local_stack = _load_local_stack()
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        assert context.get_remaining_time_in_millis() > 0
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "poison"]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
        dlq_arn = attributes["QueueArn"]
        queue = sqs.create_queue(
            QueueName="events",
            Attributes={
                "VisibilityTimeout": "0",  # a failure is visible again at once, so the test need not wait
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
            },
        )["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="good")
        sqs.send_message(QueueUrl=queue, MessageBody="poison")
        runner = local_stack.QueueRunner(sqs, queue, handler)

        assert runner.poll_once() == 1
        record = seen[0]["Records"][0]
        assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":events")
        assert {"messageId", "receiptHandle", "body", "attributes", "md5OfBody"} <= record.keys()
        for _ in range(3):
            runner.poll_once()
        bodies = [r["body"] for event in seen for r in event["Records"]]
        assert bodies.count("good") == 1 and bodies.count("poison") == 2
        dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        assert [message["Body"] for message in dead] == ["poison"]


def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        http_port, dynamodb_port = _free_ports(2)
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "local_stack.py")],
            env={
                **os.environ,
                "PORT": str(http_port),
                "LEADLOOP_DYNAMODB_PORT": str(dynamodb_port),
                "LEADLOOP_MOTO_PORT": str(taken),
                "LEADLOOP_LOCAL_DIR": str(tmp_path / "state"),
                "LEADLOOP_DYNAMODB_JAR": str(tmp_path / "never-started.jar"),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"moto server (LEADLOOP_MOTO_PORT) port {taken}" in done.stderr
    assert not (tmp_path / "state" / "logs").exists()
