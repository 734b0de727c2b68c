"""Reading a benchmark results document and summarising it over seeds.

The document is the JSON that :func:`hashlearn.benchmark.write_results` writes (``"schema": 2``):
top-level ``protocol``, ``metrics`` (definitions), ``versions``, ``timings``, ``config`` and a list
of ``results`` rows, one per (method, code length, seed), each with its ``metrics``, timings
(``fit_s``, ``encode_ms``, ``query_ms``) and optionally ``curves`` (``pr`` and ``radius``).

Rows that share a method (and features and dataset) and a code length are averaged over their
seeds: tables show the mean, with the sample standard deviation when there is more than one seed,
and curves are averaged point by point over the radii every seed has.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.exceptions import FileFormatError, InvalidInputError

SCHEMA_VERSION = 2

# Row-level timings shown as tables after the retrieval metrics; smaller is better for these.
TIMING_KEYS = ("fit_s", "encode_ms", "query_ms")

# Curve name -> the series each curve must hold (besides "radius"), and the ones it may hold.
CURVE_SERIES = {
    "pr": (("precision", "recall"), ()),
    "radius": ((), ("P@10", "query_ms", "candidates")),
}

__all__ = [
    "SCHEMA_VERSION",
    "TIMING_KEYS",
    "Cell",
    "Group",
    "MetricTable",
    "group_rows",
    "load_results",
    "mean_curve",
    "metric_names",
    "metric_table",
]


# -- loading and validation ---------------------------------------------------------------------


def load_results(results: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read and validate a benchmark results document.

    Parameters
    ----------
    results : str, path-like or mapping
        Path of the JSON file written by :func:`hashlearn.benchmark.write_results`, or the
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
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"results file {str(path)!r} is not valid JSON: {exc}") from None


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


# -- grouping over seeds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The rows of one method at one code length, one per seed.

    Attributes
    ----------
    label : name of the method in tables and legends (the method, with its features and dataset
        added when the document holds the same method with several of them).
    method : registry name of the method.
    n_bits : code length.
    rows : the result rows, in document order.
    """

    label: str
    method: str
    n_bits: int
    rows: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def seeds(self) -> list[int]:
        return [int(row["seed"]) for row in self.rows]

    @property
    def is_reference(self) -> bool:
        """Rows of exact search on the features (``tables`` 0), not of a hashing method."""
        return all(int(row.get("tables", 1)) == 0 for row in self.rows)

    def values(self, metric: str) -> list[float]:
        """The finite values of ``metric`` (a retrieval metric or a timing key) over seeds."""
        found = [
            row.get(metric) if metric in TIMING_KEYS else row["metrics"].get(metric)
            for row in self.rows
        ]
        return [float(v) for v in found if v is not None and math.isfinite(v)]


def group_rows(document: Mapping[str, Any]) -> list[Group]:
    """Group a validated document's rows by (method, features, dataset) and code length.

    Returns
    -------
    list of Group
        Methods in order of first appearance, code lengths ascending within each method.
    """
    rows = document["results"]
    keys = [(r["method"], r.get("features", ""), r.get("dataset", "")) for r in rows]
    labels = _series_labels(keys)
    grouped: dict[tuple[tuple[str, str, str], int], list[dict[str, Any]]] = {}
    for key, row in zip(keys, rows):
        grouped.setdefault((key, int(row["n_bits"])), []).append(row)
    order = list(dict.fromkeys(keys))
    return [
        Group(labels[key], key[0], n_bits, tuple(grouped[(key, n_bits)]))
        for key in order
        for n_bits in sorted(b for k, b in grouped if k == key)
    ]


def _series_labels(keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """``method``, or ``method (features, dataset)`` naming only what varies for that method."""
    labels = {}
    for key in dict.fromkeys(keys):
        method, features, dataset = key
        same_method = {k for k in keys if k[0] == method}
        extra = []
        if len({k[1] for k in same_method}) > 1:
            extra.append(features or "?")
        if len({k[2] for k in same_method}) > 1:
            extra.append(dataset or "?")
        labels[key] = f"{method} ({', '.join(extra)})" if extra else method
    return labels


def metric_names(document: Mapping[str, Any]) -> list[str]:
    """Retrieval metrics in order of first appearance in the rows, then the timings present."""
    names: dict[str, None] = {}
    for row in document["results"]:
        names.update(dict.fromkeys(row["metrics"]))
    timings = [k for k in TIMING_KEYS if any(row.get(k) is not None for row in document["results"])]
    return [*names, *timings]


# -- tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One table cell: the mean over seeds, the sample std (None with one value) and the count."""

    mean: float
    std: float | None
    n: int
    best: bool = False

    def text(self, digits: int = 4, significant: bool = False) -> str:
        """``"mean ± std"`` (or just the mean), fixed decimals or significant digits."""
        spec = f".{digits}g" if significant else f".{digits}f"
        if self.std is None:
            return format(self.mean, spec)
        return f"{format(self.mean, spec)} ± {format(self.std, spec)}"


@dataclass(frozen=True)
class MetricTable:
    """Methods x code lengths table of one metric.

    Attributes
    ----------
    metric : metric or timing name.
    higher_is_better : False for timings.
    methods : row labels, in order of first appearance.
    bits : column code lengths, ascending.
    cells : ``{(label, n_bits): Cell}``; absent for combinations without a value. ``best`` marks
        the best mean of each column (every cell tied for it) among the hashing methods; rows of
        exact search on the features (:attr:`Group.is_reference`) are never marked.
    """

    metric: str
    higher_is_better: bool
    methods: list[str]
    bits: list[int]
    cells: dict[tuple[str, int], Cell]


def metric_table(groups: Sequence[Group], metric: str) -> MetricTable:
    """Summarise ``metric`` over seeds for every (method, code length) and mark each column's best.

    Parameters
    ----------
    groups : the output of :func:`group_rows`.
    metric : a key of the rows' ``metrics`` or one of :data:`TIMING_KEYS`.

    Returns
    -------
    MetricTable
        Means and sample standard deviations (``ddof=1``, only with two or more seeds); the best
        is the highest mean, or the lowest for timings.
    """
    higher = metric not in TIMING_KEYS
    raw: dict[tuple[str, int], Cell] = {}
    references = {g.label for g in groups if g.is_reference}
    for group in groups:
        values = group.values(metric)
        if values:
            std = float(np.std(values, ddof=1)) if len(values) > 1 else None
            raw[(group.label, group.n_bits)] = Cell(float(np.mean(values)), std, len(values))
    methods = list(dict.fromkeys(g.label for g in groups))
    bits = sorted({g.n_bits for g in groups})
    cells = {}
    for n_bits in bits:
        column = {key: cell for key, cell in raw.items() if key[1] == n_bits}
        if not column:
            continue
        # the best among the hashing methods: exact search on the features is the reference
        ranked = [cell.mean for key, cell in column.items() if key[0] not in references]
        means = ranked or [cell.mean for cell in column.values()]
        target = max(means) if higher else min(means)
        for key, cell in column.items():
            best = _ties(cell.mean, target) and (key[0] not in references or not ranked)
            cells[key] = Cell(cell.mean, cell.std, cell.n, best=best)
    return MetricTable(metric, higher, methods, bits, cells)


def _ties(value: float, best: float) -> bool:
    """Equal up to rounding error (means of the same numbers summed in another order)."""
    return math.isclose(value, best, rel_tol=1e-9, abs_tol=1e-12)


# -- curves -------------------------------------------------------------------------------------


def mean_curve(group: Group, name: str) -> dict[str, np.ndarray] | None:
    """Average curve ``name`` (``"pr"`` or ``"radius"``) over the group's seeds.

    Only the radii that every seed's curve holds are kept; a series that some seed lacks is
    dropped. Returns None when no row of the group has the curve.

    Returns
    -------
    dict of str to float64 ndarray, or None
        ``"radius"`` and each series, all of the same length.
    """
    curves = [
        row["curves"][name]
        for row in group.rows
        if isinstance(row.get("curves"), dict) and isinstance(row["curves"].get(name), dict)
    ]
    if not curves:
        return None
    common = set(curves[0]["radius"])
    for curve in curves[1:]:
        common &= set(curve["radius"])
    radius = sorted(common)
    series_names = [
        s for s in (*CURVE_SERIES[name][0], *CURVE_SERIES[name][1]) if all(s in c for c in curves)
    ]
    result = {"radius": np.asarray(radius, dtype=np.float64).reshape(-1)}
    for series in series_names:
        stacked = []
        for curve in curves:
            by_radius = dict(zip(curve["radius"], curve[series]))
            stacked.append([_as_float(by_radius[r]) for r in radius])
        result[series] = _mean_ignoring_nan(np.asarray(stacked, dtype=np.float64))
    return result


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _mean_ignoring_nan(stacked: np.ndarray) -> np.ndarray:
    """Column means of a ``(n_seeds, n_points)`` array over its non-NaN values (NaN if none)."""
    counts = np.sum(~np.isnan(stacked), axis=0)
    sums = np.nansum(stacked, axis=0)
    return np.divide(sums, counts, out=np.full(stacked.shape[1], np.nan), where=counts > 0)
