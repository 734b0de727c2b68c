"""The bounded JSON reader (hashlearn._json): every kind of JSON that Python's ``json`` accepts but
nothing should (NaN, Infinity, huge integers, deep nesting, lone surrogates, repeated keys), or
fails on with a traceback, is refused with one hashlearn exception naming it (issue 18, item 8)."""

from __future__ import annotations

import time

import pytest

from hashlearn._json import MAX_DEPTH, check_json_value, parse_json
from hashlearn.exceptions import FileFormatError, InvalidInputError


def parse(data, **kwargs):
    return parse_json(data, "the body", max_bytes=kwargs.pop("max_bytes", 10**8), **kwargs)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"a": NaN}', "holds NaN"),
        (b"[Infinity]", "holds Infinity"),
        (b"[-Infinity]", "holds -Infinity"),
        (b"[1e999]", "too large for a float"),
        (b"[" + b"7" * 5000 + b"]", "integer of 5,000 digits"),  # json: ValueError (int limit)
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),  # json: RecursionError
        (b'{"k": "\\ud800"}', "lone surrogate"),  # cannot be written as UTF-8 afterwards
        (b'{"\\udfff": 1}', "lone surrogate"),
        (b'{"a": 1, "a": 2}', "the key 'a' twice"),
        (b'\xff{"a": 1}', "not valid UTF-8: byte 0xff at offset 0"),
        (b'{"a": 1', "is not valid JSON"),
    ],
)
def test_what_json_should_not_hold_is_refused_by_name(data, words):
    with pytest.raises(InvalidInputError, match="the body") as caught:
        parse(data)
    assert words in str(caught.value)


def test_the_error_class_is_the_callers():
    with pytest.raises(FileFormatError, match=r"'x\.bin': the header holds NaN"):
        parse_json(b"[NaN]", "'x.bin': the header", max_bytes=100, error=FileFormatError)


def test_the_size_is_checked_before_parsing():
    with pytest.raises(InvalidInputError, match="is 11 bytes long, more than the 10 allowed"):
        parse(b"[1,2,3,4,5]", max_bytes=10)
    with pytest.raises(InvalidInputError, match="more than the 3 allowed"):
        parse("[\u00e9]", max_bytes=3)  # text is measured in UTF-8 bytes


def test_depth_is_exact_and_brackets_in_strings_do_not_count():
    assert parse(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(InvalidInputError, match="nested deeper than 64"):
        parse(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    text = '{"s": "' + "[{" * 500 + '\\"[[", "t": [[1], [2]]}'
    assert parse(text)["t"] == [[1], [2]]
    rows = "[" + ",".join(["[1, 2]"] * 5000) + "]"  # many brackets, depth 2
    assert len(parse(rows)) == 5000
    assert parse(b"[[1]]", max_depth=2) == [[1]]
    with pytest.raises(InvalidInputError, match="nested deeper than 1 levels"):
        parse(b"[[1]]", max_depth=1)


def test_valid_json_reads_as_json_does():
    assert parse(b'{"a": [1, 2.5, "\\ud83d\\ude00", null, true], "b": -12}') == {
        "a": [1, 2.5, "\U0001f600", None, True],
        "b": -12,
    }
    assert parse("[" + "9" * 100 + "]") == [int("9" * 100)]


def test_pathological_inputs_take_little_time():
    start = time.perf_counter()
    for data in (
        b"[" * 4_000_000,
        b'"' + b'\\"' * 2_000_000,  # an unterminated string of escaped quotes
        b"[]" * 2_000_000,
    ):
        with pytest.raises(InvalidInputError):
            parse(data)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"a": float("nan")}, "holds nan"),
        ({"a": float("inf")}, "holds inf"),
        ({1: "x"}, "key that is not a string"),
        ({"a": "\ud800"}, "lone surrogate"),
        ({"a": 10**150}, "more than 100 digits"),
        ({"a": {1, 2}}, "holds a value of type set"),
    ],
)
def test_values_to_write_are_checked_as_they_would_be_read(value, words):
    with pytest.raises(InvalidInputError, match="metadata") as caught:
        check_json_value(value, "metadata")
    assert words in str(caught.value)


def test_values_to_write_are_bounded_in_depth_without_recursion():
    deep: dict = {}
    inner = deep
    for _ in range(100_000):  # deeper than Python's recursion limit
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(InvalidInputError, match="nested deeper than 32 levels"):
        check_json_value(deep, "metadata", max_depth=32)
    check_json_value({"a": [[1, 2], {"b": None}], "c": 1.5}, "metadata", max_depth=3)
