"""The one reader of JSON that comes from outside: file headers, request bodies, checkpoints.

:func:`parse_json` reads bytes or text as JSON within bounds, and refuses with one hashlearn
exception naming the problem (``FileFormatError`` for files, ``InvalidInputError`` for requests,
as the caller says) what Python's ``json`` would accept, or fail on with a traceback:

- more than ``max_bytes`` bytes (checked before anything is parsed);
- bytes that are not UTF-8;
- nesting deeper than ``max_depth`` arrays and objects (found by a scan of the brackets outside
  strings before parsing, so the parser never recurses deeper than that);
- ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON), and numbers too large for a float;
- integers of more than :data:`MAX_INT_DIGITS` digits (Python's own limit of 4,300 digits
  would end in a ``ValueError``; reading such a number costs time quadratic in its length);
- strings holding a lone surrogate (``"\\ud800"``: not Unicode, cannot be written as UTF-8);
- an object with the same key twice (which value counts would be a guess).

:func:`check_json_value` checks a value about to be written as JSON against the same rules, so
that what is written can be read back.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import numpy as np

from hashlearn.exceptions import HashlearnError, InvalidInputError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "check_json_value",
    "nested_deeper_than",
    "parse_json",
    "read_json_file",
]

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects read by default."""

MAX_INT_DIGITS = 100
"""Most digits of an integer (an ``int64`` has 19)."""

_MAX_FLOAT_CHARS = 1000  # longest number with a fraction or an exponent
# A string, to its end quote (or to the end of the text when it has none: the parser then says
# so). It never fails to match, so it never backtracks: the scan is linear in the text.
_STRING = re.compile(r'"(?:[^"\\]+|\\.?)*(?:"|\Z)', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCAN_CHUNK = 1 << 20
# "[" and "{" -> "(", "]" and "}" -> ")", everything else dropped (by the ascii encoding).
_KEEP_BRACKETS = {ord("["): "(", ord("{"): "(", ord("]"): ")", ord("}"): ")"} | {
    code: None for code in range(128) if chr(code) not in "[]{}"
}


class _Refused(Exception):
    """Raised from inside ``json.loads`` hooks; turned into the caller's exception."""


def parse_json(
    data: bytes | bytearray | memoryview | str,
    what: str,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    error: type[HashlearnError] = InvalidInputError,
) -> Any:
    """``data`` (UTF-8 bytes, or text) read as JSON, within bounds.

    Parameters
    ----------
    data : bytes or str
    what : str
        What ``data`` is, as the error messages name it (``"the request body"``,
        ``"'model.safetensors': the header"``).
    max_bytes : int
        Longest ``data`` read (in UTF-8 bytes for text).
    max_depth : int
        Deepest nesting of arrays and objects (``[[1]]`` has depth 2, a number 0).
    error : exception class
        Raised for every problem, with a message ``f"{what} {problem}"``.

    Raises
    ------
    error
        ``data`` is too long, not UTF-8, not JSON, nested too deep, or holds what JSON cannot
        write: NaN, Infinity, a number out of range, a lone surrogate, a repeated key.
    """
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise error(f"{what} is {size:,} bytes long, more than the {max_bytes:,} allowed")
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                f"{what} is not valid UTF-8: byte {exc.object[exc.start]:#04x} at offset "
                f"{exc.start} ({exc.reason})"
            ) from None
    depth = _nesting_depth(text, max_depth)
    if depth > max_depth:
        raise error(f"{what} is nested deeper than {max_depth} levels (arrays and objects)")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except _Refused as exc:
        raise error(f"{what} {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # the scan above bounds the depth; this is a last guard
        raise error(f"{what} is nested deeper than this Python can read") from None
    if _SURROGATE_ESCAPE.search(text):  # only escapes can make a lone surrogate
        _check_strings(value, what, error)
    return value


def read_json_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    error: type[HashlearnError],
) -> Any:
    """The JSON file ``path`` (see :func:`parse_json`); a longer file is refused before it is
    read. OSError (a missing file...) is left to the caller."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    return parse_json(
        data, f"{os.fspath(path)!r}", max_bytes=max_bytes, max_depth=max_depth, error=error
    )


def check_json_value(
    value: Any,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    error: type[HashlearnError] = InvalidInputError,
) -> None:
    """Check that ``value`` is JSON that :func:`parse_json` reads back as it is: dicts with
    string keys, lists, strings without lone surrogates, finite floats, integers of at most
    :data:`MAX_INT_DIGITS` digits, booleans and None, nested at most ``max_depth`` deep.

    Raises
    ------
    error
        Naming what is wrong, as ``f"{what} {problem}"``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth + 1 > max_depth:
                raise error(f"{what} is nested deeper than {max_depth} levels (arrays and objects)")
            if isinstance(item, dict):
                for key, inner in item.items():
                    if not isinstance(key, str):
                        raise error(f"{what} has a key that is not a string: {key!r}")
                    _check_string(key, what, error)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            _check_string(item, what, error)
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if abs(item) >= 10**MAX_INT_DIGITS:
                raise error(f"{what} holds an integer of more than {MAX_INT_DIGITS} digits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise error(
                    f"{what} holds {item!r}; JSON numbers are finite (no NaN or infinite values)"
                )
        else:
            raise error(
                f"{what} holds a value of type {type(item).__name__}, which JSON cannot hold"
            )


def nested_deeper_than(data: bytes | str, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text ``data`` nest more than ``limit`` deep
    (a linear scan, nothing parsed; bytes that are not UTF-8 are skipped)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return _nesting_depth(text, limit) > limit


def _nesting_depth(text: str, limit: int) -> int:
    """The deepest nesting of brackets outside strings of ``text``, or a number above ``limit``
    once it is found deeper; at most ``limit`` when it has no more opening brackets than that.

    Exact for the part of ``text`` that the parser reads before it finds a syntax error, which
    is all that it recurses over."""
    opening = text.count("[") + text.count("{")
    if opening <= limit:
        return opening
    brackets = _STRING.sub("", text)
    steps = np.frombuffer(
        brackets.translate(_KEEP_BRACKETS).encode("ascii", "ignore"), dtype=np.uint8
    )
    deepest, level = 0, 0
    for start in range(0, len(steps), _SCAN_CHUNK):
        chunk = steps[start : start + _SCAN_CHUNK]
        running = level + np.cumsum(np.where(chunk == ord("("), 1, -1), dtype=np.int64)
        deepest = max(deepest, int(running.max()))
        level = int(running[-1])
        if deepest > limit:
            break
    return deepest


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"holds {name}; JSON numbers are finite (no NaN or infinite values)")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(
            f"holds an integer of {len(digits.lstrip('-')):,} digits; at most {MAX_INT_DIGITS} "
            "are read"
        )
    return int(digits)


def _finite_float(text: str) -> float:
    if len(text) > _MAX_FLOAT_CHARS:
        raise _Refused(f"holds a number written with {len(text):,} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"holds the number {text}, too large for a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"holds the key {key!r} twice in one object")
            seen.add(key)
    return result


def _check_string(text: str, what: str, error: type[HashlearnError]) -> None:
    found = _SURROGATE.search(text)
    if found:
        raise error(f"{what} holds a lone surrogate {found.group()!r} in a string (not Unicode)")


def _check_strings(value: Any, what: str, error: type[HashlearnError]) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_string(item, what, error)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_string(key, what, error)
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
