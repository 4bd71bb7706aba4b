"""The whole loop teaches the nurture chooser: a send and a click on its tracked link are counted for the
template in the send's context, and GET /metrics shows the template's posterior there."""

from __future__ import annotations

import re

from tests.e2e.conftest import Loop
from tests.e2e.test_marketing import parts, sent
from tests.e2e.test_nurture_reliability import nurtured


def test_metrics_show_the_posterior_of_a_template_after_a_click(loop: Loop) -> None:
    lead_id = nurtured(loop, "grace@bigco.example")["grace@bigco.example"]
    loop.make_due(lead_id)
    assert loop.sweep()["sent"] == 1
    [message] = loop.sales("GET", f"/leads/{lead_id}").json_body["messages"]
    assert message["why"].startswith(f"{message['template']}: best so far") or "exploring" in message["why"]

    [email] = sent(loop)
    _, text = parts(email)
    tracked = re.search(r"https?://\S+/r/(\S+)", text)
    assert tracked is not None
    assert loop.client.http.get(f"/r/{tracked.group(1)}").status_code in (302, 303)
    loop.drain()

    learning = loop.sales("GET", "/metrics").json_body["learning"]
    [row] = [r for r in learning if r["template"] == message["template"]]
    assert (row["sent"], row["clicked"]) == (1, 1)
    assert row["context"].endswith(f"/{row['stage']}") and row["posterior"]["alpha"] > 1
    assert 0 < row["posterior"]["mean"] < 1
