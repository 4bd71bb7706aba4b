"""API keys made with the keys command work at once, stop at once when revoked, and are never stored."""

from __future__ import annotations

import pytest

from chalicelib import wiring
from chalicelib.entrypoints.keys import main
from tests.e2e.conftest import Loop


def test_created_keys_work_and_revoked_keys_stop_at_once(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create", "--role", "sales", "--name", "alice"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    bearer = {"Authorization": f"Bearer {key}"}
    assert loop.client.http.get("/leads", headers=bearer).status_code == 200

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and key not in listing

    stored = [record.key_hash for record in wiring.keys().list()]
    assert key not in stored and all(len(h) == 64 for h in stored)

    key_id = next(line.split()[0] for line in listing.splitlines() if "alice" in line)
    assert main(["revoke", key_id]) == 0
    refused = loop.client.http.get("/leads", headers=bearer)
    assert refused.status_code == 401 and refused.json_body["error"]["code"] == "unauthenticated"


def test_a_write_key_made_by_the_command_names_the_source(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create", "--role", "write", "--name", "website"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    answer = loop.client.http.post(
        "/v1/track",
        headers={"Content-Type": "application/json"},
        body=f'{{"writeKey": "{key}", "userId": "u1", "event": "Signed Up"}}'.encode(),
    )
    assert answer.status_code == 200
    assert loop.client.http.get("/leads", headers={"Authorization": f"Bearer {key}"}).status_code == 401
