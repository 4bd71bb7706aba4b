"""The local stack behind `make run`: the same parts as AWS, on 127.0.0.1, started and stopped together.

It starts DynamoDB Local (data kept across restarts), a moto server standing in for SQS and Step Functions
(with state machine execution switched on), creates the tables, queues and state machine and seeds the dev
keys, then runs what Lambda would (scripts/local_runner.py, scripts/local_streams.py): a queue poller that
hands SQS batches to `app.apply_events` with ReportBatchItemFailures semantics, a ticker that calls
`app.send_due_touches` like the schedule would, and a poller of the prospects table's stream that hands
effects to `app.dispatch_effects`. `chalice local` serves the HTTP API, answering unknown paths as API
Gateway does on AWS (scripts/chalice_compat.py); its events queue is journaled (LEADLOOP_LOCAL_JOURNAL makes
wiring build a JournaledQueue). While it runs, data/stack.json tells `make keys`, `make report` and
`make demo` where it listens.

No accepted event is lost: chalice local journals every queued body before answering and the runner records
what it applied (scripts/local_journal.py); on start the rest is put back on the queue. Ctrl-C (SIGINT or
SIGTERM) stops chalice local first, drains the queue and the stream into the handlers, then stops every
process it started (a second Ctrl-C skips the drain; the journal keeps what was left). If this process is
killed outright, its children die with it (Linux), so a restart finds its ports free.
`scripts/demo.py` reuses `LocalStack` to run a stack of its own.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script (`python scripts/local_stack.py`) or loaded by path from tests: its siblings import alike,
# and so does the app (the runner is the app's Lambda stand-in).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import dynamodb_local  # noqa: E402
from local_journal import EventJournal, requeue  # noqa: E402
from local_processes import (  # noqa: E402
    STOP_TIMEOUT_S,
    Child,
    StackError,
    quiet_to_log,
    spawn,
    wait_until_listening,
)
from local_runner import REGION, QueueRunner, Ticker  # noqa: E402
from local_streams import StreamPoller  # noqa: E402

COUNTS_CHECKPOINT_FILE = "counts-stream-checkpoint.json"
COUNTS_DEAD_LETTER_FILE = "counts-dead-letter.jsonl"
COUNT_ATTEMPTS = 10**9  # the count reader retries a batch until it is counted (or the stack stops)

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_DYNAMODB_LOCAL = REPO_ROOT / "scripts" / "install_dynamodb_local.sh"

DRAIN_TIMEOUT_S = 120.0  # bounds a stop; whatever is left stays in the journal for the next start
MOTO_SERVER_COMMAND = "moto-server"  # this script, run as the moto server child (see serve_moto)
CHALICE_LOCAL_COMMAND = "chalice-local"  # this script, run as chalice local (scripts/chalice_compat.py)
WITH_STACK_COMMAND = "with-stack"  # `with-stack -- CMD...`: CMD with the running stack's environment

DEV_KEY_DEFAULTS = {
    "LEADLOOP_DEV_WRITE_KEY": "dev-write-key",
    "LEADLOOP_DEV_SALES_KEY": "dev-sales-key",
    "LEADLOOP_DEV_MARKETING_KEY": "dev-marketing-key",
    "LEADLOOP_DEV_ADMIN_KEY": "dev-admin-key",
}

# Not under "leadloop": Chalice sets its app logger (named after the app) to ERROR unless debug is on.
log = logging.getLogger("local_stack")

# What chalicelib.adapters.bootstrap.ensure_local_resources returns -> the variable chalicelib/config.py
# reads it from.
RESOURCE_VARIABLES = {
    "queue_url": "LEADLOOP_QUEUE_URL",
    "dead_letter_queue_url": "LEADLOOP_DLQ_URL",
    "touches_queue_url": "LEADLOOP_TOUCHES_QUEUE_URL",
    "sla_state_machine_arn": "LEADLOOP_SLA_STATE_MACHINE_ARN",
}


@dataclass(frozen=True, slots=True)
class StackLayout:
    """Where the stack listens and keeps its files; everything overridable from the environment."""

    http_port: int
    dynamodb_port: int
    moto_port: int
    state_dir: Path
    outbox_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "events-journal"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dynamodb_url(self) -> str:
        return f"http://127.0.0.1:{self.dynamodb_port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def ports(self) -> dict[str, int]:
        return {
            "HTTP API (PORT)": self.http_port,
            "DynamoDB Local (LEADLOOP_DYNAMODB_PORT)": self.dynamodb_port,
            "moto server (LEADLOOP_MOTO_PORT)": self.moto_port,
        }


def layout_from_env(environ: Mapping[str, str]) -> StackLayout:
    state_dir = Path(environ.get("LEADLOOP_LOCAL_DIR", REPO_ROOT / ".local"))
    return StackLayout(
        http_port=_port(environ, "PORT", 8000),
        dynamodb_port=_port(environ, "LEADLOOP_DYNAMODB_PORT", 8001),
        moto_port=_port(environ, "LEADLOOP_MOTO_PORT", 8002),
        state_dir=state_dir.resolve(),
        outbox_dir=Path(environ.get("LEADLOOP_OUTBOX_DIR", REPO_ROOT / "outbox")).resolve(),
    )


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{name}={raw!r} is not a TCP port number (1-65535)")
    return int(raw)


def taken_ports(layout: StackLayout) -> list[str]:
    """Names and numbers of the ports something else already listens on."""
    return [f"{name} port {port}" for name, port in layout.ports().items() if not _port_is_free(port)]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers set, so a socket lingering in TIME_WAIT does not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # DynamoDB Local binds every interface, so probe them all, not just loopback.
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def signing_secret(state_dir: Path) -> str:
    """The local signing secret: generated on first run and kept, so signed links survive restarts."""
    path = state_dir / "signing-secret"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def stack_environment(layout: StackLayout, environ: Mapping[str, str]) -> dict[str, str]:
    """Everything the app reads (chalicelib/config.py), on top of the caller's environment."""
    env = dict(environ)
    env.update(
        {
            "LEADLOOP_STAGE": "local",
            "LEADLOOP_TABLE_PREFIX": "leadloop-local-",
            "LEADLOOP_DYNAMODB_ENDPOINT": layout.dynamodb_url,
            "LEADLOOP_AWS_ENDPOINT": layout.moto_url,
            "LEADLOOP_OUTBOX_DIR": str(layout.outbox_dir),
            "LEADLOOP_LOCAL_JOURNAL": str(layout.journal_dir),
            "LEADLOOP_ARCHIVE_DIR": str(layout.state_dir / "archive"),  # the rules lab's event archive
            "LEADLOOP_COUNT_IN_STREAM": "1",  # counts moved per stream batch by count_effects, as on AWS
            "LEADLOOP_PUBLIC_URL": layout.public_url,
            "LEADLOOP_SIGNING_SECRET": signing_secret(layout.state_dir),
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, default in DEV_KEY_DEFAULTS.items():
        env[name] = environ.get(name) or default
    # A developer's AWS profile or session token must not leak into calls meant for the local fakes.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(name, None)
    return env


# What a client of the running stack needs (`make keys`, `make report`, `make demo`): written to
# <state dir>/data/stack.json once the stack serves, removed when it stops, so they follow its PORT and
# LEADLOOP_DYNAMODB_PORT without being told them again.
STACK_FILE = "stack.json"
CLIENT_VARIABLES = (
    "LEADLOOP_STAGE",
    "LEADLOOP_TABLE_PREFIX",
    "LEADLOOP_DYNAMODB_ENDPOINT",
    "LEADLOOP_AWS_ENDPOINT",
    "LEADLOOP_OUTBOX_DIR",
    "LEADLOOP_ARCHIVE_DIR",  # scripts/lab_demo.py plays a month into the stack's archive
    "LEADLOOP_COUNT_IN_STREAM",  # a client writing profiles leaves its counts to the stack's count reader
    "LEADLOOP_PUBLIC_URL",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    *DEV_KEY_DEFAULTS,
    *RESOURCE_VARIABLES.values(),
)


def stack_file(environ: Mapping[str, str]) -> Path:
    return layout_from_env(environ).data_dir / STACK_FILE


def write_stack_file(layout: StackLayout, env: Mapping[str, str]) -> Path:
    path = layout.data_dir / STACK_FILE
    record = {
        "pid": os.getpid(),
        "url": layout.public_url,
        "ports": layout.ports(),
        "env": {name: env[name] for name in CLIENT_VARIABLES if name in env},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)
    return path


def running_stack(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The running local stack's record (url, ports, the environment its clients need), or None when
    none runs (no file, or the process that wrote it is gone: killed outright, it cannot remove it)."""
    try:
        path = stack_file(environ)
        record = json.loads(path.read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError, StackError):
        return None
    return dict(record)


def local_url(environ: Mapping[str, str]) -> str:
    """Where a client finds the local stack: PORT when given, else the running stack, else port 8000."""
    stack = None if environ.get("PORT") else running_stack(environ)
    return str(stack["url"]) if stack else f"http://127.0.0.1:{environ.get('PORT') or 8000}"


def client_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with the settings of the running stack, or (none running) of the stack `environ` would
    start: its ports from PORT, LEADLOOP_DYNAMODB_PORT and LEADLOOP_MOTO_PORT."""
    stack = running_stack(environ)
    if stack is not None:
        settings = dict(stack["env"])
    else:
        layout = layout_from_env(environ)
        settings = {k: v for k, v in stack_environment(layout, environ).items() if k in CLIENT_VARIABLES}
    return {**environ, **settings}


# Each webhook provider and the WebhookSecrets fields (chalicelib/config.py) it needs, all of them.
WEBHOOK_SECRETS = {
    "sendgrid": ("sendgrid_public_key_b64",),
    "mailgun": ("mailgun_signing_key",),
    "postmark": ("postmark_username", "postmark_password"),
    "ses": ("ses_topic_arns",),
    "resend": ("resend_secret",),
    "hubspot": ("hubspot_client_secret",),
    "crm": ("crm_secret",),
}


def unconfigured_webhooks(env: Mapping[str, str]) -> dict[str, list[str]]:
    """Provider -> the environment variables still to set, for each webhook that refuses every call."""
    from chalicelib.config import load_settings

    secrets = load_settings(env).webhook_secrets
    return {
        provider: [f"LEADLOOP_{name.upper()}" for name in names if not getattr(secrets, name)]
        for provider, names in WEBHOOK_SECRETS.items()
        if not all(getattr(secrets, name) for name in names)
    }


def find_dynamodb_jar() -> Path | None:
    """The DynamoDBLocal.jar that scripts/install_dynamodb_local.sh installed, if it did."""
    return dynamodb_local.find_jar()


def install_dynamodb_local() -> Path:
    """Install DynamoDB Local (and Java) when missing; a no-op when already there."""
    done = subprocess.run(
        ["bash", str(INSTALL_DYNAMODB_LOCAL)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise StackError(f"{INSTALL_DYNAMODB_LOCAL.name} failed (exit {done.returncode}); see its output")
    return Path(lines[-1])


def dynamodb_jar(environ: Mapping[str, str]) -> Path:
    configured = environ.get("LEADLOOP_DYNAMODB_JAR")
    jar = Path(configured) if configured else install_dynamodb_local()
    if not jar.is_file():
        raise StackError(f"DynamoDB Local jar not found at {jar}; run scripts/install_dynamodb_local.sh")
    return jar


def enable_stepfunctions_execution(moto_url: str) -> None:
    """Make moto run ASL definitions; must happen before the state machine is created (moto keeps two
    backends, and only the executing one runs the definition)."""
    body = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
    request = urllib.request.Request(
        f"{moto_url}/moto-api/config", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def serve_moto(argv: list[str]) -> None:
    """`moto_server`, with scripts/moto_compat.py's Step Functions fix applied in its process: without it
    a second SLA execution (a second lead awaiting acceptance) fails with a 500 (getmoto/moto#10077)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from moto import server
    from moto_compat import allow_repeated_executions

    allow_repeated_executions()
    server.main(argv)


@dataclass
class LocalStack:
    """The running parts, in start order; `stop()` undoes `start()` in reverse, whatever state it reached."""

    layout: StackLayout
    env: dict[str, str]
    chalice_log: Path | None = None  # None: chalice local writes to this terminal
    children: list[Child] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)  # set: stop without draining
    queue_runner: QueueRunner | None = None
    stream_poller: StreamPoller | None = None
    count_poller: StreamPoller | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], chalice_to_log: bool = False) -> LocalStack:
        """`chalice_to_log`: send chalice local's output to the logs folder instead of this terminal."""
        layout = layout_from_env(environ)
        chalice_log = layout.log_dir / "chalice.log" if chalice_to_log else None
        return cls(layout=layout, env=stack_environment(layout, environ), chalice_log=chalice_log)

    @property
    def chalice(self) -> Child | None:
        return next((child for child in self.children if child.name == "chalice local"), None)

    def start(self) -> None:
        taken = taken_ports(self.layout)
        if taken:
            raise StackError(f"already in use: {', '.join(taken)} (stop what uses it or pick another port)")
        for directory in (self.layout.data_dir, self.layout.log_dir, self.layout.outbox_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._start_dynamodb_local(dynamodb_jar(self.env))
        self._start_moto()
        self.resources = self._bootstrap()
        self._replay_journal()
        # chalice local before the runner's threads: spawning forks, and a fork must not copy their locks.
        self._start_chalice()
        self._start_runner()
        write_stack_file(self.layout, self.env)

    def _start_dynamodb_local(self, jar: Path) -> None:
        argv = dynamodb_local.server_command(
            "java", jar, self.layout.dynamodb_port, "-dbPath", str(self.layout.data_dir)
        )
        # cwd: DynamoDB Local drops a metadata file in its working directory; keep it out of the checkout.
        child = spawn(
            "DynamoDB Local",
            argv,
            self.env,
            self.layout.log_dir / "dynamodb-local.log",
            self.layout.state_dir,
        )
        self.children.append(child)
        wait_until_listening(child, self.layout.dynamodb_port)

    def _start_moto(self) -> None:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            MOTO_SERVER_COMMAND,
            "-H",
            "127.0.0.1",
            "-p",
            str(self.layout.moto_port),
        ]
        child = spawn("moto server", argv, self.env, self.layout.log_dir / "moto.log", self.layout.state_dir)
        self.children.append(child)
        wait_until_listening(child, self.layout.moto_port)
        enable_stepfunctions_execution(self.layout.moto_url)

    def _bootstrap(self) -> dict[str, Any]:
        # The app reads its settings from the environment, in this process (runner) and in chalice local.
        os.environ.update(self.env)
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from chalicelib import config
        from chalicelib.adapters import bootstrap

        settings = config.load_settings()
        resources = dict(bootstrap.ensure_local_resources(settings))
        bootstrap.seed_dev_keys(settings)
        # The queue and state machine exist only now; the app finds them through these variables.
        for key, variable in RESOURCE_VARIABLES.items():
            if key in resources:
                self.env[variable] = resources[key]
        os.environ.update(self.env)
        return resources

    def _sqs(self) -> Any:
        import boto3

        return boto3.client("sqs", endpoint_url=self.layout.moto_url, region_name=REGION)

    def _replay_journal(self) -> None:
        """Accepted events never applied before the last stop (or crash) go back on the fresh queue, before
        chalice local can accept new ones (compaction needs the journal to itself)."""
        requeue(EventJournal(self.layout.journal_dir), self._sqs(), self.resources["queue_url"])

    def _start_runner(self) -> None:
        import app as leadloop

        # The app's INFO lines (each nurture sweep) go to runner.log; warnings and errors still show here.
        quiet_to_log(leadloop.app.log, self.layout.log_dir / "runner.log")
        journal = EventJournal(self.layout.journal_dir)
        self.queue_runner = QueueRunner(
            self._sqs(), self.resources["queue_url"], leadloop.apply_events, journal
        )
        ticker = Ticker(leadloop.send_due_touches, float(self.env.get("LEADLOOP_TICK_SECONDS", "5")))
        workers: list[tuple[str, Any]] = [("queue-runner", self.queue_runner.run), ("ticker", ticker.run)]
        if "touches_queue_url" in self.resources:  # the sweep fans out to a send worker, as on AWS
            touches = QueueRunner(
                self._sqs(), self.resources["touches_queue_url"], leadloop.send_touches, name="send_touches"
            )
            workers.append(("send-worker", touches.run))
        if hasattr(leadloop, "dispatch_effects"):  # the outbox's dispatcher (issue 11 #5) may not exist yet
            self.stream_poller = self._stream_poller(leadloop.dispatch_effects)
            workers.append(("effects-stream", self.stream_poller.run))
        if hasattr(leadloop, "count_effects"):  # the stream's second reader, as on AWS: counts per batch
            self.count_poller = self._stream_poller(
                leadloop.count_effects,
                name="count_effects",
                checkpoint_file=COUNTS_CHECKPOINT_FILE,
                dead_letter_file=COUNTS_DEAD_LETTER_FILE,
                # As on AWS: a batch set aside could never be counted later (the checkpoint moves past it).
                max_attempts=COUNT_ATTEMPTS,
            )
            workers.append(("counts-stream", self.count_poller.run))
        for name, target in workers:
            thread = threading.Thread(target=target, args=(self.stopping,), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _stream_poller(self, handler: Any, **options: Any) -> StreamPoller:
        """A reader of the prospects table's stream on DynamoDB Local, handing batches to `handler`."""
        import boto3

        return StreamPoller(
            boto3.client("dynamodb", endpoint_url=self.layout.dynamodb_url, region_name=REGION),
            boto3.client("dynamodbstreams", endpoint_url=self.layout.dynamodb_url, region_name=REGION),
            f"{self.env['LEADLOOP_TABLE_PREFIX']}prospects",
            handler,
            self.layout.data_dir,
            **options,
        )

    def _start_chalice(self) -> None:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            CHALICE_LOCAL_COMMAND,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.layout.http_port),
            "--no-autoreload",
            "--stage",
            "local",
        ]
        child = spawn("chalice local", argv, self.env, self.chalice_log, REPO_ROOT)
        self.children.append(child)
        wait_until_listening(child, self.layout.http_port)

    def wait(self, stop_requested: threading.Event) -> int:
        """Block until chalice local exits or a stop is requested; the exit code for the whole stack."""
        chalice = self.chalice
        assert chalice is not None, "wait() before start()"
        while not stop_requested.wait(0.2):
            if not chalice.alive():
                log.error(
                    "chalice local exited with code %s (log: %s)\n%s",
                    chalice.process.returncode,
                    chalice.log_path,
                    chalice.log_tail(),
                )
                return chalice.process.returncode or 1
        return 0

    def stop(self) -> None:
        """Stop accepting (chalice local first), apply what was accepted, then stop the rest."""
        if self.children:
            log.info("stopping %s", ", ".join(child.name for child in reversed(self.children)))
        (self.layout.data_dir / STACK_FILE).unlink(missing_ok=True)
        chalice = self.chalice
        if chalice is not None:
            chalice.stop()
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=STOP_TIMEOUT_S)
        self._drain()
        for child in reversed(self.children):
            child.stop()

    def _drain(self) -> None:
        if self.queue_runner is None or self.hurry.is_set():
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            left = self.queue_runner.backlog()
            if left.waiting:
                log.info(
                    "applying the %d queued message(s) before stopping (Ctrl-C again: later)", left.waiting
                )
            left = self.queue_runner.drain(deadline - time.monotonic(), self.hurry)
            for poller in (self.stream_poller, self.count_poller):
                if poller is not None:
                    poller.drain(max(1.0, deadline - time.monotonic()), self.hurry)
        except Exception:  # the outermost edge: the journal still has every unapplied message
            log.exception("draining failed; what was left is replayed on the next start")
            return
        if left.waiting or left.in_flight:
            log.warning(
                "%d message(s) not applied (they failed, or the drain was cut short): replayed on next start",
                left.waiting + left.in_flight,
            )
        else:  # all applied, and chalice local (the journal's writer) is stopped: leave an empty journal
            EventJournal(self.layout.journal_dir).compact()

    def banner(self) -> str:
        webhooks = unconfigured_webhooks(self.env)
        unconfigured = ""
        if webhooks:
            unconfigured = (
                f"webhooks not configured (they answer 401): {', '.join(webhooks)}\n"
                + "".join(
                    f"  {provider:<9} set {' and '.join(names)}\n" for provider, names in webhooks.items()
                )
                + '  then restart; README "Configuring the webhook secrets" says which value each needs\n'
            )
        keys = "\n".join(
            f"  {name.removeprefix('LEADLOOP_DEV_').lower():<14} {self.env[name]}"
            for name in DEV_KEY_DEFAULTS
        )
        return (
            f"\nLeadloop local stack: {self.layout.public_url}\n"
            f"console: {self.layout.public_url}/console (sign in with the sales, marketing or admin key)\n"
            f"dev keys (tracking: Basic '<write key>:'; sales/marketing/admin: 'Bearer <key>'):\n{keys}\n"
            f"outbox: {self.layout.outbox_dir}\n"
            f"logs: {self.layout.log_dir} (chalice.log: requests and server errors; runner.log: queue and"
            " nurture sweeps)\n"
            f"{unconfigured}"
            "Ctrl-C stops everything.\n"
        )


def main() -> int:
    # Library chatter (botocore's "Found credentials", PynamoDB's settings notice) stays below WARNING.
    logging.basicConfig(level=logging.WARNING, format="[local-stack] %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    stack: LocalStack | None = None
    try:
        # Startup chatter (chalice local's "Serving on", PynamoDB's settings notice, request lines) goes to
        # .local/logs so the banner is the last thing printed; a failed start prints the log's tail.
        stack = LocalStack.from_env(os.environ, chalice_to_log=True)
        with _interruptible(stop_requested):
            stack.start()
        print(stack.banner(), flush=True)
        return stack.wait(stop_requested)
    except StackError as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        return 1
    except _Interrupted:
        return 0
    finally:
        if stack is not None:
            # A second Ctrl-C skips the drain (the journal keeps what is left) but must not cut the
            # cleanup short and leave children behind.
            hurry = stack.hurry
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: hurry.set())
            stack.stop()


class _Interrupted(Exception):
    pass


class _interruptible:
    """Turns a stop request during startup into an exception, so startup does not run to the end first."""

    def __init__(self, stop_requested: threading.Event) -> None:
        self._stop_requested = stop_requested
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._raise)

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _raise(self, signum: int, frame: object) -> None:
        self._stop_requested.set()
        raise _Interrupted(signal.Signals(signum).name)


if __name__ == "__main__":
    if sys.argv[1:2] == [MOTO_SERVER_COMMAND]:
        serve_moto(sys.argv[2:])
        sys.exit(0)
    if sys.argv[1:2] == [WITH_STACK_COMMAND]:
        command = sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]
        os.execvpe(command[0], command, client_environment(os.environ))
    if sys.argv[1:2] == [CHALICE_LOCAL_COMMAND]:
        from chalice_compat import serve_chalice_local

        sys.exit(serve_chalice_local(sys.argv[2:]))
    sys.exit(main())
