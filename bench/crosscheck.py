"""Cross-check of the size-based units against DynamoDB Local's own arithmetic.

DynamoDB Local answers `ReturnConsumedCapacity` from real item sizes (table and indexes), unlike moto. This
starts the DynamoDB Local that `make` installs (scripts/install_dynamodb_local.sh) in memory on a free
loopback port, delivers a small stream through `LeadService` in 10-event batches with both `CapacityMeter`
(DynamoDB Local's figures) and `SizeMeter` watching, and stops it again. When DynamoDB Local or Java is
missing the section says so instead of failing the whole run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.storage import (
    REGION,
    SettableClock,
    StreamedProspects,
    count_stream,
    fake_credentials,
    lead_service,
)
from bench.stream import Shape, generate
from bench.units import SizeMeter
from chalicelib.adapters.dynamo import CapacityMeter, Counters, ProspectStore, Tables, create_tables
from scripts.dynamodb_local import answers, find_jar, free_port, server_command

SHAPE = Shape(prospects=60, sessions=150)
STARTUP_SECONDS = 60


@contextmanager
def dynamodb_local() -> Iterator[str]:
    jar = find_jar()
    java = shutil.which("java")
    if jar is None or java is None:
        raise FileNotFoundError("DynamoDB Local or Java is not installed (make dynamodb-local)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = server_command(java, jar, port, "-inMemory")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not answers(endpoint, REGION):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"DynamoDB Local did not start: {log.read().decode(errors='replace')}")
                time.sleep(0.2)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def measure(shape: Shape = SHAPE) -> dict[str, Any]:
    fake_credentials()
    events = [event for _, event in generate(shape)]
    try:
        with dynamodb_local() as endpoint:
            tables = Tables(prefix=f"check-{uuid.uuid4().hex[:6]}-", host=endpoint, region=REGION)
            create_tables(tables)
            clock = SettableClock(events[0].at)
            prospects = StreamedProspects(ProspectStore(tables))
            service, counters = lead_service(tables, clock, prospects), Counters(tables)
            meter, sizes = CapacityMeter(), SizeMeter(tables)
            meter.watch(tables)
            try:
                counted = batches = 0
                for start in range(0, len(events), 10):
                    batch = events[start : start + 10]
                    clock.now = max(event.at for event in batch)
                    if service.apply_events(batch).failed:
                        raise RuntimeError("the cross-check stream failed to apply")
                    counted, batches = count_stream(prospects, counters, counted, batches, whole=False)
                count_stream(prospects, counters, counted, batches, whole=True)
                reading = meter.reading()
                reads, writes, _ = sizes.totals()
            finally:
                meter.close()
                sizes.close()
    except (FileNotFoundError, RuntimeError) as problem:
        return {"skipped": str(problem)}
    n = len(events)
    return {
        "events": n,
        "dynamodb_local_read_units_per_event": round(reading.read_units / n, 3),
        "dynamodb_local_write_units_per_event": round(reading.write_units / n, 3),
        "size_meter_read_units_per_event": round(reads / n, 3),
        "size_meter_write_units_per_event": round(writes / n, 3),
    }
