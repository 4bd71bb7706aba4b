"""Refusals of sales actions in the words a salesperson uses: what the lead is, what cannot be done to it, and
only the actions the caller can take instead (never internal triggers such as `qualified` or `hand_raise`).
"""

from __future__ import annotations

from chalicelib.domain.decisions import NotAssignable
from chalicelib.domain.lifecycle import IllegalTransition, State, triggers_from
from chalicelib.errors import Conflict, InvalidContent

# A refused sales action is answered in the words a salesperson uses, naming only what they can do instead.
STATE_WORDS = {
    State.ANONYMOUS: "not identified yet",
    State.NURTURING: "in nurture",
    State.SALES_READY: "waiting for sales to accept it",
    State.ACCEPTED: "accepted by sales",
    State.OPPORTUNITY: "an open opportunity",
    State.WON: "won",
    State.LOST: "lost",
    State.DISQUALIFIED: "disqualified",
}
ACTION_WORDS = {
    "accept": "accepted",
    "recycle": "recycled",
    "disqualify": "disqualified",
    "opportunity": "made an opportunity",
    "won": "marked won",
    "lost": "marked lost",
}


def refusal(state: State, action: str) -> tuple[str, list[str]]:
    """The sentence for a sales action the lead's state does not allow, and the actions it does allow."""
    can: list[str] = [str(trigger) for trigger in triggers_from(state) if trigger.value in ACTION_WORDS]
    done = ACTION_WORDS.get(action, action)
    sentence = f"This lead is {STATE_WORDS[state]}, so it cannot be {done}."
    if can:
        sentence += f" You can: {', '.join(can)}."
    elif state is State.NURTURING:
        sentence += " It comes to sales when it qualifies or the buyer raises a hand."
    else:
        sentence += " No sales action applies to it now."
    return sentence, can


def as_http_error(error: Exception) -> Exception:
    if isinstance(error, NotAssignable):
        return Conflict(str(error), details={"state": error.state.value})
    if isinstance(error, IllegalTransition):
        sentence, can = refusal(error.state, error.trigger.value)
        return Conflict(
            sentence, details={"state": error.state.value, "action": error.trigger.value, "allowed": can}
        )
    return InvalidContent(str(error))
