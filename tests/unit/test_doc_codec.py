"""The profile document's stored form: each dictionary is frozen, documents say which one they need."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest

from chalicelib.adapters import doc_codec
from chalicelib.adapters.doc_codec import DICTIONARY_1, UnknownDictionary, dictionary_of, pack_doc, unpack_doc

DOC = {
    "id": "L1",
    "state": "nurturing",
    "pages": [{"at": "2026-03-10T14:02:36+00:00", "path": "/", "title": "Hi"}],
}


def test_dictionary_1_never_changes() -> None:
    """Documents compressed with it name it by this Adler-32; changing a byte would make them unreadable."""
    assert zlib.adler32(DICTIONARY_1) == 0x8D8380F6
    assert hashlib.sha256(DICTIONARY_1).hexdigest()[:16] == "1ad63e4d7bf138dd"
    assert doc_codec.DICTIONARIES[zlib.adler32(DICTIONARY_1)] is DICTIONARY_1


def test_a_document_names_its_dictionary_and_reads_back() -> None:
    blob = pack_doc(DOC)
    assert dictionary_of(blob) == zlib.adler32(doc_codec.CURRENT)
    assert unpack_doc(blob) == DOC


def test_a_document_stored_before_dictionaries_reads_back() -> None:
    old = zlib.compress(json.dumps(DOC, separators=(",", ":"), sort_keys=True).encode(), 6)
    assert dictionary_of(old) is None
    assert unpack_doc(old) == DOC


def test_an_unknown_dictionary_is_named_not_garbled() -> None:
    compressor = zlib.compressobj(zdict=b"a dictionary this release does not have")
    blob = compressor.compress(json.dumps(DOC).encode()) + compressor.flush()
    with pytest.raises(UnknownDictionary, match="unknown dictionary"):
        unpack_doc(blob)
