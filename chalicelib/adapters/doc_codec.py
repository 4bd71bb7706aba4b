"""The stored form of a prospect profile document: compact JSON, zlib-compressed with a preset dictionary.

DynamoDB bills a write per started KB of the item, and a typical profile's JSON (about 2 KB) compressed
alone lands near 850 bytes: small documents compress poorly because zlib has not yet seen the words they
repeat. A preset dictionary gives it those words up front: the document's own vocabulary (its short keys,
the lifecycle's states and triggers, the default rules' ids, topics and page paths, the shape of a page
visit and of an ISO timestamp). On the bench stream it cuts the mean document by ~23% (837 -> ~646 bytes).

The dictionary holds the schema's own strings only, never the values of any one population of prospects
(names, companies, ids), so it is not tuned to the synthetic bench data.

Which dictionary a stored document needs is in the document itself: zlib's header sets FDICT and carries
the dictionary's Adler-32. A document with no FDICT (every one stored before dictionaries) decompresses
as it always did. A dictionary once shipped never changes (tests pin its checksum): a better one is added
under a new Adler-32 beside it, becomes `CURRENT`, and the old one stays here so its documents still load.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

_TIME = "2026-01-01T00:00:00.000000+00:00"
_PAGE_PATHS = (
    ("/pricing", "Pricing"),
    ("/plans", "Plans"),
    ("/security", "Security"),
    ("/trust", "Trust"),
    ("/compliance", "Compliance"),
    ("/integrations", "Integrations"),
    ("/docs/api", "Api"),
    ("/docs", "Docs"),
    ("/docs/getting-started", "Getting started"),
    ("/customers", "Customers"),
    ("/case-studies", "Case studies"),
    ("/careers", "Careers"),
    ("/jobs", "Jobs"),
    ("/roi", "Roi"),
    ("/features/reporting", "Reporting"),
    ("/blog/", "Blog"),
    ("/", ""),
)

# Dictionary 1. zlib finds the dictionary's last bytes at the shortest distances, so the most common
# structure (a page visit, an ISO time) comes last. FROZEN: its Adler-32 is written in every document
# compressed with it; tests/unit/test_doc_codec.py pins it.
DICTIONARY_1 = (
    '"acct":[{"at":"","id":"","sd":"","tr":{}}],"amount":,"anon":[""],"crm":[],"created":"'
    '"hr":{},"msgs":[{"at":"","ctx":{},"err":"","id":"","lrn":[],"n":2,"out":{},"st":"","tpl":"","v":1,"why":""}],'
    '"oev":[{"at":"","n":"","p":[["",""]]}],'
    '"recycles":[{"actor":"","at":"","count":1,"note":"","reason":"","revisit":""}],"rv":1,'
    '"sla":{"done":"","due":"","esc":"","start":"","status":"waiting","token":""},"sup":{"at":"","reason":""},'
    '"t1":{"at":"","campaign":"","content":"","landing_page":"","medium":"","referrer":"","source":"","term":""},'
    '"tn":{},"trim":{},"uid":"","wait":'
    '"hist":[{"actor":"leadloop","at":"","from":"anonymous","to":"nurturing","trigger":"identified"},'
    '{"actor":"leadloop","at":"","from":"nurturing","to":"sales_ready","trigger":"qualified"},'
    '{"actor":"leadloop","at":"","from":"sales_ready","to":"accepted","trigger":"hand_raise"}],'
    '"int":{"pricing":{"":1.0},"roi":{"":1.0},"integrations":{"":1.0},"security":{"":1.0},'
    '"reporting":{"":1.0},"case_studies":{"":1.0},"onboarding":{"":1.0}},'
    '"eng":{"page_view":{"":1.0},"pricing_page":{"":1.0},"security_page":{"":1.0},"integrations_page":{"":1.0},'
    '"docs_page":{"":1.0},"case_study_page":{"":1.0},"careers_page":{"":1.0},"content_download":{"":1.0},'
    '"webinar_attended":{"":1.0},"trial_started":{"":1.0},"email_click":{"":1.0},"email_open":{"":1.0},'
    '"hand_raise":{"":1.0}},'
    '"km":[{"at":"","kind":"email_click","text":"clicked https://www."},'
    '{"at":"","kind":"routed","text":"routed to sales ("},'
    '{"at":"","kind":"hand_raise","text":"raised a hand: "}],'
    '"last":"","next":"","owner":"","src":"","state":"nurturing",'
    '"sw":{"h":,"w":""},"traits":{"company":"","company_size":,"country":"","email":"","first_name":"",'
    '"industry":"","last_name":"","title":""},'
    f'{{"created":"{_TIME}","email":"","eng":{{}},"id":"L","pages":['
    + "".join(f'{{"at":"{_TIME}","path":"{path}","title":"{title}"}},' for path, title in _PAGE_PATHS)
).encode()

# Adler-32 (as zlib's header carries it) -> dictionary. Only ever added to.
DICTIONARIES: dict[int, bytes] = {zlib.adler32(DICTIONARY_1): DICTIONARY_1}
CURRENT = DICTIONARY_1
LEVEL = 9  # a ~2 KB document: level 9 costs microseconds more than 6 and saves a few bytes
_FDICT = 0x20


class UnknownDictionary(ValueError):
    """A stored document names a dictionary this code does not have (written by a newer release)."""


def pack_doc(doc: dict[str, Any]) -> bytes:
    """The profile as stored: compact JSON with sorted keys, compressed with the current dictionary."""
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=CURRENT)
    return compressor.compress(raw) + compressor.flush()


def dictionary_of(blob: bytes) -> int | None:
    """The Adler-32 of the dictionary `blob` was compressed with, or None (stored before dictionaries)."""
    if len(blob) < 6 or not blob[1] & _FDICT:
        return None
    return int.from_bytes(blob[2:6], "big")


def unpack_doc(blob: bytes) -> dict[str, Any]:
    """A stored profile back, whichever dictionary (or none) it was compressed with."""
    wanted = dictionary_of(blob)
    if wanted is None:
        return dict(json.loads(zlib.decompress(blob)))
    dictionary = DICTIONARIES.get(wanted)
    if dictionary is None:
        raise UnknownDictionary(f"profile compressed with unknown dictionary {wanted:#010x}")
    decompressor = zlib.decompressobj(zdict=dictionary)
    raw = decompressor.decompress(blob) + decompressor.flush()
    return dict(json.loads(raw))
