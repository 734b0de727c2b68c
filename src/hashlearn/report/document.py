"""Reading and checking a benchmark results document.

The document is the JSON that :func:`hashlearn.experiments.write_results` writes (``"schema": 2``):
top-level ``protocol``, ``metrics`` (definitions), ``versions``, ``timings``, ``config`` and a list
of ``results`` rows, one per (method, code length, seed), each with its ``metrics``, timings
(``fit_s``, ``encode_ms``, ``query_ms``) and optionally ``curves`` (``pr`` and ``radius``).
:func:`load_results` checks all of it, so that the rest of the report can trust what it reads.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hashlearn._json import read_json_file
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.experiments.results import SCHEMA_VERSION, TIMING_KEYS

__all__ = ["CURVE_SERIES", "load_results"]

# Curve name -> the series each curve must hold (besides "radius"), and the ones it may hold.
# results files are a few megabytes even for large benchmarks; refused unread beyond this
MAX_RESULTS_BYTES = 1 << 28

CURVE_SERIES = {
    "pr": (("precision", "recall"), ()),
    "radius": ((), ("P@10", "query_ms", "candidates")),
}


def load_results(results: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read and validate a benchmark results document.

    Parameters
    ----------
    results : str, path-like or mapping
        Path of the JSON file written by :func:`hashlearn.experiments.write_results`, or the
        document itself as a dict.

    Returns
    -------
    dict
        The validated document (a dict loaded from JSON is returned as read).

    Raises
    ------
    InvalidInputError
        If ``results`` is neither a path nor a mapping, or the file does not exist.
    FileFormatError
        If the file is not JSON, or the document is not schema 2, lacks a required key or holds a
        value of the wrong type; the message names the offending key (and row).
    """
    if isinstance(results, Mapping):
        document: Any = dict(results)
        source = "results document"
    elif isinstance(results, (str, os.PathLike)):
        document = _read_json(Path(results))
        source = f"results file {os.fspath(results)!r}"
    else:
        raise InvalidInputError(
            f"results must be a path to a JSON file or a dict, got {type(results).__name__}"
        )
    _validate_document(document, source)
    return document


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"results file not found: {str(path)!r}")
    return read_json_file(path, max_bytes=MAX_RESULTS_BYTES, error=FileFormatError)


def _validate_document(document: Any, source: str) -> None:
    if not isinstance(document, dict):
        raise FileFormatError(f"{source} must be a JSON object, got {type(document).__name__}")
    if "schema" not in document:
        raise FileFormatError(
            f"{source} has no 'schema' key: it predates results schema {SCHEMA_VERSION}; "
            "run the benchmark again to write a current one"
        )
    if document["schema"] != SCHEMA_VERSION:
        raise FileFormatError(
            f"{source} has schema {document['schema']!r}; this version reads schema {SCHEMA_VERSION}"
        )
    for key, kind in (("protocol", dict), ("metrics", dict), ("results", list)):
        if key not in document:
            raise FileFormatError(f"{source} lacks the required key {key!r}")
        if not isinstance(document[key], kind):
            raise FileFormatError(
                f"{source}: {key!r} must be a JSON {'object' if kind is dict else 'array'}, "
                f"got {type(document[key]).__name__}"
            )
    for key in ("versions", "timings", "config"):
        if key in document and not isinstance(document[key], dict):
            raise FileFormatError(
                f"{source}: {key!r} must be a JSON object, got {type(document[key]).__name__}"
            )
    if not document["results"]:
        raise FileFormatError(f"{source}: 'results' is empty; there is nothing to report")
    for position, row in enumerate(document["results"]):
        _validate_row(row, f"{source}: results[{position}]")


def _validate_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise FileFormatError(f"{where} must be a JSON object, got {type(row).__name__}")
    for key in ("method", "n_bits", "seed", "metrics"):
        if key not in row:
            raise FileFormatError(f"{where} lacks the required key {key!r}")
    if not isinstance(row["method"], str) or not row["method"]:
        raise FileFormatError(
            f"{where}: 'method' must be a non-empty string, got {row['method']!r}"
        )
    for key in ("n_bits", "seed"):
        if not _is_int(row[key]) or row[key] < (1 if key == "n_bits" else 0):
            raise FileFormatError(
                f"{where}: {key!r} must be an integer >= {1 if key == 'n_bits' else 0}, "
                f"got {row[key]!r}"
            )
    for key in ("dataset", "features", "protocol", "manifest"):
        if key in row and not isinstance(row[key], str):
            raise FileFormatError(f"{where}: {key!r} must be a string, got {row[key]!r}")
    if not isinstance(row["metrics"], dict):
        raise FileFormatError(f"{where}: 'metrics' must be a JSON object")
    for name, value in row["metrics"].items():
        _check_number(value, f"{where}: metrics[{name!r}]")
    for key in TIMING_KEYS:
        if key in row:
            _check_number(row[key], f"{where}: {key!r}")
    if "curves" in row and row["curves"] is not None:
        _validate_curves(row["curves"], row["n_bits"], where)


def _validate_curves(curves: Any, n_bits: int, where: str) -> None:
    if not isinstance(curves, dict):
        raise FileFormatError(f"{where}: 'curves' must be a JSON object")
    for name, curve in curves.items():
        if name not in CURVE_SERIES:
            continue  # curves this version does not draw are ignored
        place = f"{where}: curves[{name!r}]"
        if not isinstance(curve, dict) or "radius" not in curve:
            raise FileFormatError(f"{place} must be an object with a 'radius' list")
        radius = _number_list(curve["radius"], f"{place}['radius']")
        if any(not float(r).is_integer() or not 0 <= r <= n_bits for r in radius):
            raise FileFormatError(
                f"{place}['radius'] must hold integer radii from 0 to n_bits={n_bits}"
            )
        required, optional = CURVE_SERIES[name]
        for series in required + optional:
            if series not in curve:
                if series in required:
                    raise FileFormatError(f"{place} lacks the series {series!r}")
                continue
            values = _number_list(curve[series], f"{place}[{series!r}]")
            if len(values) != len(radius):
                raise FileFormatError(
                    f"{place}[{series!r}] has {len(values)} values but 'radius' has {len(radius)}"
                )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_number(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise FileFormatError(f"{where} must be a number or null, got {value!r}")


def _number_list(values: Any, where: str) -> list[float]:
    if not isinstance(values, list):
        raise FileFormatError(f"{where} must be a list of numbers, got {type(values).__name__}")
    for value in values:
        _check_number(value, where)
    return [math.nan if v is None else float(v) for v in values]
