"""`make lab-demo`: the rules lab on the local stack (README "Try the rules lab").

Plays scripts/lab_month.py's story on the running local stack (or on `make run`'s, started apart):
1. a month of visitors, as Segment batches through the tracking route, applied by the worker with its clock
   at each batch's time. A month cannot be sent live in a minute (the worker decides at the time it runs, so
   month-old events would be judged a month late), so this step runs app.py in this process on the stack's
   own tables and event archive, with a queue of its own that the stack's runner does not read;
2. sales answering, over HTTP, every lead the live rules routed;
3. a backtest of a draft that raises the engagement threshold (`POST /rules/backtest`, over HTTP);
4. the draft in shadow mode (`PUT /rules/shadow`) on a week of live traffic sent to the stack's own
   tracking route, then discarded.
`--people N` (default 80), `--seed N`, `--engagement N` (the draft's threshold, default 80).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import DemoError, is_serving, marketing_key  # noqa: E402
from lab_month import InProcessMonth, SimulatedClock, play  # noqa: E402
from local_stack import (  # noqa: E402
    DEV_KEY_DEFAULTS,
    REPO_ROOT,
    StackError,
    client_environment,
    layout_from_env,
    local_url,
)

CAUGHT_UP_TIMEOUT_S = 600.0
STACK_BOOT_TIMEOUT_S = 240.0
QUIET_POLLS = 3  # the pool unchanged this many polls in a row, a second apart: the worker has caught up


class HttpLab:
    """scripts/lab_month.py's `Lab` over HTTP: tracking with the write key, the rest with Bearer keys."""

    def __init__(self, base_url: str, env: Mapping[str, str]) -> None:
        self._base = base_url.rstrip("/")
        self._write = _basic(env.get("LEADLOOP_DEV_WRITE_KEY") or DEV_KEY_DEFAULTS["LEADLOOP_DEV_WRITE_KEY"])
        sales = env.get("LEADLOOP_DEV_SALES_KEY") or DEV_KEY_DEFAULTS["LEADLOOP_DEV_SALES_KEY"]
        self._keys = {"sales": sales, "marketing": marketing_key(env)}
        self._queue_url = env.get("LEADLOOP_QUEUE_URL", "")
        endpoint = env.get("LEADLOOP_AWS_ENDPOINT")
        self._queue = (
            _local_sqs(env, endpoint)
            if endpoint and self._queue_url
            else None
        )

    def track(self, batch: list[dict[str, Any]]) -> None:
        status, answer = self._send("POST", "/v1/batch", {"batch": batch}, self._write)
        if status != 200:
            raise DemoError(f"POST /v1/batch answered {status}: {answer}")

    def call(self, role: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self._send(method, path, body, f"Bearer {self._keys[role]}")

    def caught_up(self) -> None:
        """The worker applies the queue in the background: wait until the events queue is empty (nothing
        waiting, nothing in flight) on QUIET_POLLS polls in a row; for a stack whose queue this process
        cannot see, until the scoreboard's stages stop changing."""
        deadline, last, quiet = time.monotonic() + CAUGHT_UP_TIMEOUT_S, None, 0
        while quiet < QUIET_POLLS:
            if time.monotonic() > deadline:
                raise DemoError(f"the worker did not catch up within {CAUGHT_UP_TIMEOUT_S:.0f} s")
            time.sleep(1.0)
            seen = self._backlog()
            quiet = (
                quiet + 1
                if seen is not None and seen == last and (self._queue is None or seen == "0/0")
                else 0
            )
            last = seen

    def _backlog(self) -> str | None:
        if self._queue is not None:
            attributes = self._queue.get_queue_attributes(
                QueueUrl=self._queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            waiting = attributes["ApproximateNumberOfMessages"]
            return f"{waiting}/{attributes['ApproximateNumberOfMessagesNotVisible']}"
        status, metrics = self.call("marketing", "GET", "/metrics")
        return json.dumps(metrics.get("stages"), sort_keys=True) if status == 200 else None

    def _send(self, method: str, path: str, body: Any, authorization: str) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": authorization, "Content-Type": "application/json"}
        request = urllib.request.Request(self._base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                return exc.code, json.loads(detail)
            except ValueError:
                return exc.code, detail


@contextmanager
def separate_stack(base_url: str) -> Iterator[dict[str, str]]:
    """The running stack's client environment; with none running, `make run`'s stack started as a process of
    its own (the month's worker runs in this process with its own clock and queue, and must not share it
    with the stack's runner), stopped with Ctrl-C's signal at the end."""
    if is_serving(base_url):
        print(f"Using the stack already running at {base_url}")
        yield client_environment(os.environ)
        return
    log_path = REPO_ROOT / ".local" / "lab-demo-stack.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"No stack at {base_url}: starting `make run`'s stack (its output in {log_path}) ...", flush=True)
    port = urllib.parse.urlsplit(base_url).port or 80
    with log_path.open("wb") as output:
        stack = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "scripts" / "local_stack.py")],
            env={**os.environ, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STACK_BOOT_TIMEOUT_S
            while not is_serving(base_url):
                if stack.poll() is not None or time.monotonic() > deadline:
                    raise DemoError(f"the local stack did not start; see {log_path}")
                time.sleep(1.0)
            yield client_environment({**os.environ, "PORT": str(port)})
        finally:
            stack.send_signal(signal.SIGINT)  # a clean stop: it drains its queue and stops its children
            try:
                stack.wait(timeout=120)
            except subprocess.TimeoutExpired:
                stack.kill()


@contextmanager
def month_on(env: Mapping[str, str]) -> Iterator[InProcessMonth]:
    """app.py in this process on the stack's tables and archive, its tracking route feeding a queue of its
    own (created on the stack's moto server, deleted afterwards), its worker's clock the month's."""
    # A stack started before the archive was a client variable does not say where it is: the layout does.
    archive = env.get("LEADLOOP_ARCHIVE_DIR") or str(layout_from_env(env).state_dir / "archive")
    endpoint, env = env.get("LEADLOOP_AWS_ENDPOINT"), {**env, "LEADLOOP_ARCHIVE_DIR": archive}
    if not endpoint or not archive or not env.get("LEADLOOP_DYNAMODB_ENDPOINT"):
        raise DemoError("the month is played on the local stack's own tables: start it with `make run`")
    sqs = _local_sqs(env, endpoint)
    queue_url = sqs.create_queue(QueueName=f"lab-month-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    os.environ.update({**env, "LEADLOOP_QUEUE_URL": queue_url})
    logging.getLogger("leadloop").setLevel(logging.WARNING)
    from chalice.test import Client

    from chalicelib import wiring

    clock = SimulatedClock()
    wiring.utc_now = clock  # every service wiring builds from here on reads the month's clock
    wiring.reset()
    import app

    write = env.get("LEADLOOP_DEV_WRITE_KEY") or DEV_KEY_DEFAULTS["LEADLOOP_DEV_WRITE_KEY"]
    try:
        with Client(app.app) as client:
            yield InProcessMonth(client, sqs, queue_url, clock, write_auth=_basic(write))
    finally:
        sqs.delete_queue(QueueUrl=queue_url)


def _local_sqs(env: Mapping[str, str], endpoint: str) -> Any:
    """An SQS client of the stack's moto server, with the stack's (fake) credentials, not this shell's."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def _basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engagement", type=int, default=80, help="the draft's engagement threshold")
    args = parser.parse_args()
    base_url = os.environ.get("LEADLOOP_URL") or local_url(os.environ)
    try:
        with separate_stack(base_url) as env, month_on(env) as month:
            lab = HttpLab(base_url, env)
            play(
                lab,
                month,
                seed=args.seed,
                people=args.people,
                engagement=args.engagement,
                poll=lambda: time.sleep(0.5),
            )
    except (DemoError, StackError, RuntimeError, ValueError) as exc:
        print(f"lab-demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
