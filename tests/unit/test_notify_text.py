"""What a salesperson reads in the Slack notification: the reasons in plain words with their points, and a
link to the lead's console page."""

from __future__ import annotations

from chalicelib.adapters.notify import slack_text


def test_the_slack_message_gives_each_reason_in_plain_words_with_its_points() -> None:
    summary = {
        "id": "L1",
        "identity": {"name": "Jo Smith", "company": "Contoso"},
        "interests": [{"topic": "pricing"}],
        "scores": {
            "fit": 45,
            "engagement": 38,
            "breakdown": [
                {
                    "rule": "pricing_page",
                    "kind": "engagement",
                    "points": 16,
                    "text": "read the pricing page twice",
                },
                {"rule": "legacy_rule", "kind": "fit", "points": 20},
            ],
        },
    }
    text = slack_text(summary, "hand-raise: Demo Requested", "https://leads.example/leads/L1")
    assert "read the pricing page twice (+16)" in text
    assert "legacy_rule (+20)" in text
    assert "https://leads.example/console/leads/L1" in text
