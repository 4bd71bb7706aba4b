"""A workaround for moto 5.2's Step Functions interpreter, used by the local stack and the tests.

moto deep-copies the state machine on every StartExecution; once one execution has run, the copy reaches
that execution's worker thread and its locks and fails with "cannot pickle '_thread.RLock'", so a second
execution can never start. The copy only needs the definition and settings: this teaches moto's
StateMachine to deep-copy itself without its executions and backend (shared by reference instead).
"""

from __future__ import annotations

import copy
from typing import Any

SHARED = ("executions", "backend", "versions", "aliases", "latest_version")


def allow_repeated_executions() -> None:
    from moto.stepfunctions.models import StateMachine

    if getattr(StateMachine, "_leadloop_deepcopy", False):
        return

    def __deepcopy__(self: Any, memo: dict[int, Any]) -> Any:  # noqa: N807 - the protocol's name
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, value if key in SHARED else copy.deepcopy(value, memo))
        return clone

    StateMachine.__deepcopy__ = __deepcopy__  # type: ignore[attr-defined]
    StateMachine._leadloop_deepcopy = True  # type: ignore[attr-defined]
