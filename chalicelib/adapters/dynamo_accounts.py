"""Accounts on DynamoDB: one table, an account's partition holding its traits (`item` "#account") and its
member list (`item` "lead#<lead id>", one small row a person), implementing `AccountDirectory`.

Every write is conditional, so retries and late stream passes never put older over newer: the traits only
when no later group call set them (`updated_at`), a member row only when no later write of the lead wrote it
(`lead_version`). A lost condition is the expected outcome of such a retry, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo_tables import (
    AccountModel,
    Tables,
    from_iso,
    is_condition_failure,
    iso,
    models_for,
    storage_errors,
)
from chalicelib.domain.accounts import AccountRecord, Member

ACCOUNT_ITEM = "#account"
MEMBER_PREFIX = "lead#"


class DynamoAccounts:
    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).accounts

    def record(self, account: AccountRecord, member: Member, *, lead_version: int) -> None:
        m = self._model
        traits = json.dumps(account.traits, separators=(",", ":"), sort_keys=True)
        with storage_errors(f"write account {account.account_id}"):
            if not account.traits:  # a group call that named no traits: the account exists, as it was
                m(account.account_id, ACCOUNT_ITEM).update(actions=[m.traits.set(m.traits | "{}")])
            elif account.updated_at is not None:
                at = iso(account.updated_at)
                _unless_newer(
                    m(account.account_id, ACCOUNT_ITEM),
                    [m.traits.set(traits), m.updated_at.set(at)],
                    m.updated_at.does_not_exist() | (m.updated_at <= at),
                )
            actions = [
                m.joined_at.set(m.joined_at | iso(member.joined_at)),  # the first link stays
                m.lead_version.set(lead_version),
                m.engaged_on.set(member.engaged_on.isoformat())
                if member.engaged_on
                else m.engaged_on.remove(),
            ]
            _unless_newer(
                m(account.account_id, MEMBER_PREFIX + member.lead_id),
                actions,
                m.lead_version.does_not_exist() | (m.lead_version < lead_version),
            )

    def get(self, account_id: str) -> AccountRecord | None:
        with storage_errors(f"read account {account_id}"):
            try:
                item = self._model.get(account_id, ACCOUNT_ITEM)
            except DoesNotExist:
                return None
        updated = from_iso(item.updated_at) if item.updated_at else None
        return AccountRecord(account_id, json.loads(item.traits or "{}"), updated)

    def members(self, account_id: str, limit: int) -> tuple[list[Member], bool]:
        with storage_errors(f"read the members of account {account_id}"):
            rows = list(
                self._model.query(account_id, self._model.item.startswith(MEMBER_PREFIX), limit=limit + 1)
            )
        found = [
            Member(
                lead_id=row.item.removeprefix(MEMBER_PREFIX),
                joined_at=from_iso(row.joined_at or ""),
                engaged_on=date.fromisoformat(row.engaged_on) if row.engaged_on else None,
            )
            for row in rows[:limit]
        ]
        return found, len(rows) > limit

    def remove_member(self, lead_id: str, account_ids: Sequence[str]) -> None:
        with storage_errors(f"remove lead {lead_id} from its accounts"):
            for account_id in account_ids:
                self._model(account_id, MEMBER_PREFIX + lead_id).delete()


def _unless_newer(item: AccountModel, actions: Sequence[Action], condition: Condition) -> None:
    try:
        item.update(actions=list(actions), condition=condition)
    except PynamoDBException as exc:
        if not is_condition_failure(exc):
            raise
