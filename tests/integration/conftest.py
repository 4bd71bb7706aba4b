"""Storage backends for integration tests: moto in-process, and DynamoDB Local over a real connection.

`moto_tables` and `dynamodb_local_tables` each yield a `Tables` whose tables exist under a fresh prefix;
`tables` is parametrized over both, so a repository test written once runs on each (the DynamoDB Local
case carries the `dynamodb_local` mark). DynamoDB Local is one JVM for the whole session, installed by
`make test` (scripts/install_dynamodb_local.sh); without it these tests fail, unless
LEADLOOP_SKIP_DYNAMODB_LOCAL=1 says to skip them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from chalicelib.adapters.dynamo import Tables, create_tables
from scripts.dynamodb_local import PACKAGE_DIR, answers, find_jar, free_port, server_command

REGION = "us-east-1"
STARTUP_SECONDS = 60
# DynamoDB Local wants credentials but never checks them; fixed ones keep the developer's real AWS
# profile out of the picture.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "leadloopLocal", "AWS_SECRET_ACCESS_KEY": "leadloopLocal"}


def _unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def moto_tables() -> Iterator[Tables]:
    with mock_aws():
        tables = Tables(prefix=_unique_prefix(), region=REGION)
        create_tables(tables)
        yield tables


def _missing(what: str) -> None:
    if os.environ.get("LEADLOOP_SKIP_DYNAMODB_LOCAL") == "1":
        pytest.skip(f"{what}; skipped because LEADLOOP_SKIP_DYNAMODB_LOCAL=1")
    pytest.fail(
        f"{what}: run `make test` (it installs DynamoDB Local and Java via "
        "scripts/install_dynamodb_local.sh), or set LEADLOOP_SKIP_DYNAMODB_LOCAL=1 to skip these tests",
        pytrace=False,
    )


def _wait_until_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"DynamoDB Local exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
        if answers(endpoint, REGION):
            return
        time.sleep(0.1)
    pytest.fail(f"DynamoDB Local did not answer on {endpoint} in {STARTUP_SECONDS}s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def dynamodb_local_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    jar = find_jar()
    if jar is None:
        _missing(f"DynamoDB Local is not installed under {PACKAGE_DIR}")
    java = shutil.which("java")
    if java is None:
        _missing("no Java runtime (`java`) on PATH for DynamoDB Local")
    assert jar is not None and java is not None
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("dynamodb-local") / "server.log"
    command = server_command(java, jar, port, "-inMemory")
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=jar.parent, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, endpoint, log)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def dynamodb_local_tables(dynamodb_local_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Tables:
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    tables = Tables(prefix=_unique_prefix(), host=dynamodb_local_endpoint, region=REGION)
    create_tables(tables)
    return tables


@pytest.fixture(
    params=["moto", pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)],
)
def tables(request: pytest.FixtureRequest) -> Tables:
    """The same repository test against each backend: moto is lenient where DynamoDB Local is not."""
    return request.getfixturevalue(f"{request.param}_tables")


@pytest.fixture(params=[pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)])
def racing_tables(request: pytest.FixtureRequest) -> Tables:
    """For tests of concurrent writers: moto in-process runs each request without a lock, so two threads
    can both pass one condition check there; DynamoDB Local is atomic like DynamoDB."""
    return request.getfixturevalue(f"{request.param}_tables")
