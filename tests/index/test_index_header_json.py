"""Index headers are read by the bounded JSON reader (issue 18, item 8): NaN, Infinity, a
5,000-digit integer, deep nesting or a lone surrogate in the header of an index file ended in a
traceback (ValueError, RecursionError, UnicodeEncodeError...) instead of one FileFormatError."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn import LinearIndex, load_index
from hashlearn.exceptions import FileFormatError
from hashlearn.index._format.layout import PREAMBLE, align


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("index") / "a.hlindex"
    codes = np.random.default_rng(0).integers(0, 256, (40, 2), dtype=np.uint8)
    index = LinearIndex(16)
    index.add(codes)
    index.save(path)
    return path.read_bytes()


def with_header(data: bytes, edit) -> bytes:
    """The index file ``data`` with its header text replaced by ``edit(text)``, laid out again
    (header length, padding, payload)."""
    magic, version, length = PREAMBLE.unpack(data[: PREAMBLE.size])
    text = data[PREAMBLE.size : PREAMBLE.size + length]
    payload = data[align(PREAMBLE.size + length) :]
    new = edit(text)
    head = PREAMBLE.pack(magic, version, len(new)) + new
    return head + bytes(align(len(head)) - len(head)) + payload


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda t: t.replace(b'"ntotal":40', b'"ntotal":NaN'), "holds NaN"),
        (lambda t: t.replace(b'"n_bits":16', b'"n_bits":Infinity'), "holds Infinity"),
        (lambda t: t.replace(b'"ntotal":40', b'"ntotal":' + b"4" * 5000), "5,000 digits"),
        (lambda t: t.replace(b'"params":{}', b'"params":' + b"[" * 50_000 + b"]" * 50_000),
         "nested deeper than 64 levels"),
        (lambda t: t.replace(b'"index_type":"linear"', b'"index_type":"\\ud800"'),
         "lone surrogate"),
        (lambda t: t.replace(b'"ntotal":40', b'"ntotal":40,"ntotal":40'), "key 'ntotal' twice"),
    ],
    ids=["nan", "infinity", "5000-digit-int", "deep-nesting", "lone-surrogate", "repeated-key"],
)  # fmt: skip
@pytest.mark.parametrize("mmap", [False, True])
def test_a_crafted_header_is_one_clear_error(saved, tmp_path, edit, words, mmap):
    crafted = with_header(saved, edit)
    assert crafted != saved
    path = tmp_path / "crafted.hlindex"
    path.write_bytes(crafted)
    with pytest.raises(FileFormatError, match=r"crafted\.hlindex: corrupted header") as caught:
        load_index(path, mmap=mmap)
    assert words in str(caught.value)


def test_the_layout_helper_keeps_a_valid_file_valid(saved, tmp_path):
    path = tmp_path / "same.hlindex"
    path.write_bytes(with_header(saved, lambda t: t))
    assert load_index(path).ntotal == 40
