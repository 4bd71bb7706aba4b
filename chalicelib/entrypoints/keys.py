"""`python -m chalicelib.entrypoints.keys` (and `make keys`): create, list and revoke API keys for a stage.

A key is shown once, when it is created; storage keeps only its SHA-256 hash, and listings show a short
key id (the first 12 hex digits of the hash), never the key. Revocation takes effect on the next request:
authentication reads the key's record on every call. The stage comes from the same environment the
functions read (LEADLOOP_TABLE_PREFIX, LEADLOOP_DYNAMODB_ENDPOINT, AWS credentials).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib import wiring
from chalicelib.errors import LeadloopError
from chalicelib.usecases.auth import ROLES, hash_key

KEY_ID_CHARS = 12


def _resolve(given: str) -> str:
    """A key id (hash prefix), a full hash, or the key itself -> the stored hash."""
    candidates = [given.lower(), hash_key(given)]
    records = wiring.keys().list()
    for candidate in candidates:
        matches = [r.key_hash for r in records if r.key_hash.startswith(candidate)]
        if len(matches) == 1 and len(candidate) >= 8:
            return matches[0]
        if len(matches) > 1:
            raise SystemExit(f"key id {given!r} is ambiguous; give more digits")
    raise SystemExit(f"no key with id {given!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.entrypoints.keys", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--name", required=True, help="who or what uses it (a tracking source's name for write keys)"
    )
    commands.add_parser("list", help="list keys (ids, roles, names, dates; never the keys)")
    revoke = commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the key id from `list` (or the key itself)")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        if args.command == "create":
            key = wiring.authenticator().create(args.role, args.name, now)
            print(f"created {args.role} key for {args.name!r} (id {hash_key(key)[:KEY_ID_CHARS]}):")
            print(key)
            print("Store it now: it cannot be shown again.", file=sys.stderr)
        elif args.command == "list":
            print(f"{'id':<{KEY_ID_CHARS}}  {'role':<9}  {'name':<24}  {'created':<20}  revoked")
            for record in wiring.keys().list():
                revoked = f"{record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "-"
                print(
                    f"{record.key_hash[:KEY_ID_CHARS]}  {record.role:<9}  {record.name:<24}  "
                    f"{record.created_at:%Y-%m-%d %H:%M:%S}  {revoked}"
                )
        else:
            key_hash = _resolve(args.key_id)
            wiring.keys().revoke(key_hash, now)
            print(f"revoked {key_hash[:KEY_ID_CHARS]}")
    except LeadloopError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
