"""The local stack's child processes: started with their output to a log, made to die with the stack (Linux's
parent-death signal, so `kill -9` of the stack leaves no orphan holding a port), waited on until they
listen, and stopped politely then firmly. Also where the stack's own in-process chatter is sent to a log."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STARTUP_TIMEOUT_S = 90.0  # DynamoDB Local's JVM takes a while on a small machine
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

log = logging.getLogger("local_stack")


class StackError(Exception):
    """The local stack could not start; the message says what to do about it."""


@dataclass
class Child:
    """A process the stack started, in its own process group so a stop reaches its children too."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", self.name, timeout_s)
        # Reap stragglers in the group even when the leader exited on its own.
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


def spawn(name: str, argv: list[str], env: Mapping[str, str], log_path: Path | None, cwd: Path) -> Child:
    """Start a child in a new session: Ctrl-C reaches only this script, which then stops children in order."""
    output: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        output = log_path.open("ab")
    try:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    except FileNotFoundError as exc:
        raise StackError(f"cannot start {name}: {argv[0]} not found") from exc
    finally:
        if output is not None:
            output.close()
    return Child(name, process, log_path)


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: the child is killed when this process dies, even by SIGKILL, so no orphan keeps a port (and
    moto's queue) after a crash; the journal is what survives. Prepared here, run in the child between fork
    and exec (spawn runs before the runner's threads start, so the fork copies no lock they hold)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return arm


def quiet_to_log(logger: logging.Logger, path: Path, *, terminal_level: int = logging.WARNING) -> None:
    """Everything `logger` says goes to `path`; only `terminal_level` and above still reach the terminal
    (the handlers it had, such as chalice's stdout handler for `app.log`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not logger.handlers and not logger.propagate:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    for handler in logger.handlers:
        handler.setLevel(max(handler.level, terminal_level))
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(to_file)


def wait_until_listening(child: Child, port: int, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise StackError(
                f"{child.name} exited with code {child.process.returncode} while starting"
                f" (log: {child.log_path})\n{child.log_tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise StackError(
        f"{child.name} did not listen on port {port} within {timeout_s:.0f} s (log: {child.log_path})"
    )
