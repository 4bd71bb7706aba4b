"""Bulk data through the public API: a marketer imports a CSV file of leads (Excel's quirks included), imports
it again without doubling anything, and sales exports the pool to a spreadsheet that cannot be booby-trapped.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.usecases import bulk, pool_export
from tests.e2e import test_least_privilege as least_privilege
from tests.e2e.conftest import Loop
from tests.e2e.test_least_privilege import CallRecorder
from tests.packaged import as_list, grants, resource_text, statements

recorder, template = least_privilege.recorder, least_privilege.template  # fixtures, shared

MARKETING_CSV = {"Authorization": "Bearer dev-marketing-key", "Content-Type": "text/csv"}
ADMIN_CSV = {"Authorization": "Bearer dev-admin-key", "Content-Type": "text/csv"}
SALES_CSV = {"Authorization": "Bearer dev-sales-key", "Content-Type": "text/csv"}

# What Excel's "CSV UTF-8" writes: a byte order mark, CRLF, quotes around a comma and around a line break.
EXCEL_FILE = (
    "\ufeffEmail,First Name,Last Name,Job Title,Company,Employees,Country\r\n"
    'ada@bigco.example,Ada,Lovelace,VP Engineering,"BigCo, Inc.",800,GB\r\n'
    '"grace@navy.example",Grace,Hopper,"Rear Admiral,\r\nComputing",US Navy,5000,US\r\n'
    "\r\n"
    "linus@kernel.example,Linus,Torvalds,Maintainer,Linux Foundation,,FI\r\n"
).encode()


def import_csv(loop: Loop, body: bytes, headers: dict[str, str] | None = None, query: str = "") -> Any:
    headers = MARKETING_CSV if headers is None else headers
    return loop.client.http.post(f"/leads/import{query}", headers=headers, body=body)


def lead(loop: Loop, ref: str) -> dict[str, Any]:
    answer = loop.sales("GET", f"/leads/{ref}")
    assert answer.status_code == 200, answer.body
    return answer.json_body


def export(loop: Loop, query: str = "", headers: dict[str, str] | None = None) -> Any:
    return loop.client.http.get(
        f"/leads/export.csv{query}", headers=SALES_CSV if headers is None else headers
    )


def versions(emails: list[str]) -> dict[str, int]:
    owners = wiring.identities().resolve([f"email:{email}" for email in emails])
    found = {}
    for key, lead_id in owners.items():
        stored = wiring.prospect_repository().get(lead_id)
        assert stored is not None
        found[key] = stored.version
    return found


def feed_size(loop: Loop) -> int:
    answer = loop.client.http.get("/activity?limit=1000", headers=SALES_CSV)
    assert answer.status_code == 200, answer.body
    return len(answer.json_body["entries"])


def test_an_excel_file_is_imported_with_its_quoted_commas_line_breaks_bom_and_crlf(loop: Loop) -> None:
    answer = import_csv(loop, EXCEL_FILE)

    assert answer.status_code == 200, answer.body
    assert answer.json_body == {
        "imported": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": [],
        "rejected_total": 0,
        "unknown_columns": [],
        "refused_columns": [],
        "rows": 3,
        "done": True,
        "resume_from_line": None,
    }
    listed = {row["email"]: row for row in loop.sales("GET", "/leads").json_body["leads"]}
    assert set(listed) == {"ada@bigco.example", "grace@navy.example", "linus@kernel.example"}
    assert listed["ada@bigco.example"]["company"] == "BigCo, Inc."
    ada = lead(loop, "ada@bigco.example")
    assert ada["identity"]["name"] == "Ada Lovelace"
    assert ada["identity"]["traits"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "title": "VP Engineering",
        "company": "BigCo, Inc.",
        "company_size": 800,  # a number, as the fit rules compare it
        "country": "GB",
    }
    assert ada["source"] == "import"
    assert ada["state"] == "nurturing"
    assert {line["rule"] for line in ada["scores"]["breakdown"]} >= {"company_size_target"}
    assert lead(loop, "grace@navy.example")["identity"]["title"] == "Rear Admiral,\r\nComputing"
    assert "company_size" not in lead(loop, "linus@kernel.example")["identity"]["traits"]  # empty cell


def test_importing_the_same_file_again_creates_no_lead_version_or_feed_entry(loop: Loop) -> None:
    assert import_csv(loop, EXCEL_FILE).json_body["imported"] == 3
    emails = ["ada@bigco.example", "grace@navy.example", "linus@kernel.example"]
    before, entries = versions(emails), feed_size(loop)

    again = import_csv(loop, EXCEL_FILE).json_body

    assert (again["imported"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 3, [])
    assert versions(emails) == before
    assert feed_size(loop) == entries
    assert len(loop.sales("GET", "/leads").json_body["leads"]) == 3


def test_a_changed_row_updates_its_lead_and_an_old_file_never_overwrites_newer_values(loop: Loop) -> None:
    first = b"email,title\nada@bigco.example,Engineer\n"
    assert import_csv(loop, first).json_body["imported"] == 1

    promoted = import_csv(loop, b"email,title,company\nADA@bigco.example,CTO,BigCo\n").json_body

    assert (promoted["imported"], promoted["updated"]) == (0, 1)
    assert lead(loop, "ada@bigco.example")["identity"]["traits"] == {"title": "CTO", "company": "BigCo"}
    stale = import_csv(loop, first).json_body  # the old export, imported again by mistake
    assert (stale["updated"], stale["unchanged"]) == (0, 1)
    assert lead(loop, "ada@bigco.example")["identity"]["title"] == "CTO"


def test_tracked_leads_are_updated_not_duplicated(loop: Loop) -> None:
    identify = {
        "type": "identify",
        "messageId": "b1",
        "userId": "u-ada",
        "traits": {"email": "ada@bigco.example"},
    }
    assert loop.track("/v1/identify", identify).status_code == 200
    loop.drain()

    answer = import_csv(loop, b"email,company\nada@bigco.example,BigCo\n").json_body

    assert (answer["imported"], answer["updated"]) == (0, 1)
    assert lead(loop, "u-ada")["identity"]["company"] == "BigCo"
    assert len(loop.sales("GET", "/leads").json_body["leads"]) == 1


def test_bad_rows_are_named_by_line_and_the_others_go_in(loop: Loop) -> None:
    long_title = "x" * 1025
    body = (
        "email,first_name,title\n"
        "ok1@example.com,One,\n"
        ",Nobody,\n"
        "not-an-email,Broken,\n"
        "ok2@example.com,Two,CEO,surplus\n"
        f"ok3@example.com,Three,{long_title}\n"
        "Ok1@Example.com,Again,\n"
        "ok4@example.com,Four,,,\n"  # empty trailing cells, as spreadsheets pad rows
    ).encode()

    answer = import_csv(loop, body).json_body

    assert answer["imported"] == 2
    assert answer["rejected"] == [
        {"line": 3, "reason": "no email"},
        {"line": 4, "reason": "'not-an-email' is not an email address"},
        {"line": 5, "reason": "4 columns, but the header names 3"},
        {"line": 6, "reason": "the title value is longer than 1024 characters"},
        {"line": 7, "reason": "duplicate of line 2 (the first row of an email wins)"},
    ]
    assert lead(loop, "ok1@example.com")["identity"]["traits"] == {"first_name": "One"}
    assert lead(loop, "ok4@example.com")["identity"]["traits"] == {"first_name": "Four"}


def test_unknown_columns_are_named_and_reserved_ones_refused(loop: Loop) -> None:
    body = (
        b"email,Owner,Lifecycle Stage,favourite_colour,company,score\n"
        b"ada@bigco.example,sam,customer,teal,BigCo,99\n"
    )

    answer = import_csv(loop, body).json_body

    assert answer["imported"] == 1
    assert answer["unknown_columns"] == ["favourite_colour"]
    assert answer["refused_columns"] == ["Owner", "Lifecycle Stage", "score"]
    ada = lead(loop, "ada@bigco.example")
    assert ada["owner"] is None
    assert ada["state"] == "nurturing"
    assert ada["identity"]["traits"] == {"company": "BigCo"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"name,company\nAda,BigCo\n", 400, "no 'email' column"),
        ("email,company\nada@bigco.example,Café\n".encode("latin-1"), 400, "not UTF-8"),
        ("email,company\n".encode("utf-16"), 400, "not UTF-8"),
        # API Gateway hands a text body over as UTF-8, replacing bytes it cannot read with U+FFFD.
        ("email,company\nada@bigco.example,Caf\ufffd\n".encode(), 400, "not UTF-8"),
        (b"", 400, "empty"),
        (b"\r\n\r\n", 400, "no header row"),
        (b"email,Email\na@b.example,c@d.example\n", 400, "email column twice"),
        (b"email,employees,company_size\na@b.example,1,2\n", 400, "both set the trait 'company_size'"),
        # A quote left open would swallow every row after it into one cell: refused, naming where it opened.
        (b'email,name\na@b.example,"Bob\nc@d.example,Carol\n', 400, "line 2 cannot be read as CSV"),
        (b'email,name\na@b.example,"Bob"by\n', 400, "line 2 cannot be read as CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(
    loop: Loop, body: bytes, status: int, words: str
) -> None:
    answer = import_csv(loop, body)

    assert answer.status_code == status, answer.body
    assert words in answer.json_body["error"]["message"]
    assert loop.sales("GET", "/leads").json_body["leads"] == []


def test_a_file_over_the_row_limit_is_refused_before_anything_is_written(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_IMPORT_ROWS", 3)
    body = "email\n" + "".join(f"p{i}@example.com\n" for i in range(4))

    answer = import_csv(loop, body.encode())

    assert answer.status_code == 413
    assert "more than 3 rows" in answer.json_body["error"]["message"]
    assert loop.sales("GET", "/leads").json_body["leads"] == []


def test_a_file_larger_than_one_request_resumes_from_the_line_the_answer_names(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "IMPORT_BATCH", 2)
    monkeypatch.setattr(bulk, "MIN_TIME_MARGIN_SECONDS", 1e9)  # always out of time after one batch
    body = ("email\n" + "".join(f"p{i}@example.com\n" for i in range(5)) + "bad\n").encode()

    first = import_csv(loop, body).json_body
    assert (first["imported"], first["done"], first["resume_from_line"]) == (2, False, 4)
    second = import_csv(loop, body, query="?from_line=4").json_body
    assert (second["imported"], second["done"], second["resume_from_line"]) == (2, False, 6)
    last = import_csv(loop, body, query="?from_line=6").json_body

    assert (last["imported"], last["done"], last["resume_from_line"]) == (1, True, None)
    assert last["rejected"] == [{"line": 7, "reason": "'bad' is not an email address"}]
    assert len(loop.sales("GET", "/leads?limit=50").json_body["leads"]) == 5


def test_only_marketing_and_admin_may_import(loop: Loop) -> None:
    body = b"email\nada@bigco.example\n"

    assert import_csv(loop, body, SALES_CSV).status_code == 403
    assert import_csv(loop, body, {"Content-Type": "text/csv"}).status_code == 401
    assert import_csv(loop, body, ADMIN_CSV).json_body["imported"] == 1


def test_export_is_csv_with_the_list_filters_and_no_formulas(loop: Loop) -> None:
    body = (
        b"email,first_name,last_name,company,Employees,title\n"
        b'mal@evil.example,=HYPERLINK("http://evil.example"),+1,@SUM(A1),1000,CEO\n'
        b"low@small.example,Lo,W,-Small,3,Intern\n"  # known poor answers: a blank would earn fit points
    )
    assert import_csv(loop, body).json_body["imported"] == 2

    answer = export(loop, "?min_score=30&state=nurturing")

    assert answer.status_code == 200, answer.body
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(answer.body.decode("utf-8"), newline="")))
    assert rows[0] == ["id", "email", "name", "company", "state", "owner", "score", "sla"]
    assert [row[1] for row in rows[1:]] == ["mal@evil.example"]  # the filter applies
    mal = dict(zip(rows[0], rows[1], strict=True))
    assert mal["name"] == """'=HYPERLINK("http://evil.example") +1"""
    assert mal["company"] == "'@SUM(A1)"
    assert mal["state"] == "nurturing"
    everyone = list(csv.reader(io.StringIO(export(loop).body.decode("utf-8"), newline="")))
    assert {row[3] for row in everyone[1:]} == {"'@SUM(A1)", "'-Small"}


def test_export_reads_every_page_and_answers_a_cursor_beyond_its_limit(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "email\n" + "".join(f"p{i}@example.com\n" for i in range(7))
    assert import_csv(loop, body.encode()).json_body["imported"] == 7
    monkeypatch.setattr(pool_export, "EXPORT_PAGE", 2)

    whole = export(loop)
    assert whole.headers["X-Leadloop-Rows"] == "7"
    assert "X-Leadloop-Next-Cursor" not in whole.headers
    monkeypatch.setattr(pool_export, "MAX_EXPORT_ROWS", 4)
    part = export(loop)
    rest = export(loop, f"?cursor={part.headers['X-Leadloop-Next-Cursor']}")

    emails = [row[1] for text in (part.body, rest.body) for row in csv.reader(io.StringIO(text.decode()))]
    assert sorted(e for e in emails if e != "email") == sorted(f"p{i}@example.com" for i in range(7))


def test_export_is_for_readers_and_refuses_unknown_filters(loop: Loop) -> None:
    assert export(loop, headers={"Authorization": "Bearer dev-marketing-key"}).status_code == 200
    assert export(loop, headers={}).status_code == 401
    assert export(loop, "?state=lost_in_space").status_code == 400
    assert export(loop, "?sla=late").status_code == 400


def test_the_api_function_may_make_every_call_an_import_makes(
    loop: Loop, recorder: CallRecorder, template: dict[str, Any]
) -> None:
    """A new lead claims its email in the identities table: the API function's role must allow it (it is
    AccessDenied on AWS otherwise, while every local test passes)."""
    with recorder.acting_as("ApiHandlerRole"):
        answer = import_csv(loop, EXCEL_FILE)
        assert answer.json_body["imported"] == 3
        assert import_csv(loop, b"email,title\nada@bigco.example,CTO\n").json_body["updated"] == 1
        assert export(loop, "?state=nurturing").status_code == 200

    refused = sorted(
        call for call in recorder.calls if not grants(template["Resources"][call[0]], call[1], call[2])
    )
    assert refused == []
    # ...and no more than that: the API function claims email identities only (IAM checks the key).
    claims = [
        statement
        for statement in statements(template["Resources"]["ApiHandlerRole"])
        if "dynamodb:PutItem" in statement["Action"]
        and "${IdentitiesTable.Arn}" in map(resource_text, as_list(statement["Resource"]))
    ]
    assert [c["Condition"] for c in claims] == [
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["email:*"]}}
    ]
