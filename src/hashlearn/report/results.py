"""Summarising a benchmark results document (:mod:`hashlearn.report.document`) over seeds.

Rows that share a method (and features and dataset) and a code length are averaged over their
seeds: tables show the mean, with the sample standard deviation when there is more than one seed,
and curves are averaged point by point over the radii every seed has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn.experiments.results import TIMING_KEYS
from hashlearn.report.document import CURVE_SERIES

__all__ = [
    "Cell",
    "Group",
    "MetricTable",
    "group_rows",
    "mean_curve",
    "metric_names",
    "metric_table",
]


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
