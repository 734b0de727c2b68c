"""What a benchmark measured: one :class:`BenchmarkRow` per (method, bits, seed), and its files.

:func:`write_results` writes the rows as CSV (one column per metric) and as a JSON document
(schema :data:`SCHEMA_VERSION`) with the configuration, protocol manifests, metric definitions
(:func:`metric_definitions`), versions and timings; :mod:`hashlearn.report` reads that document.
:func:`save_results` writes both into a folder under the benchmark's name (:func:`results_name`).
:func:`summarize` prints a methods x bits table of one metric over seeds; :func:`format_benchmark`
is the summary ``hashlearn benchmark`` prints (such tables and the grids' choices).
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._table import format_table
from hashlearn._version import __version__
from hashlearn.exceptions import InvalidInputError
from hashlearn.experiments.config import BenchmarkConfig

__all__ = [
    "SCHEMA_VERSION",
    "TIMING_KEYS",
    "BenchmarkRow",
    "format_benchmark",
    "metric_definitions",
    "results_name",
    "save_results",
    "summarize",
    "write_results",
]

SCHEMA_VERSION = 2  # of the JSON results document

# Row-level timings, reported beside the retrieval metrics (smaller is better).
TIMING_KEYS = ("fit_s", "encode_ms", "query_ms")


@dataclass(frozen=True)
class BenchmarkRow:
    """The results of one (method, bits, seed)."""

    dataset: str
    protocol: str
    manifest: str
    features: str
    method: str
    hasher: str
    tables: int
    n_bits: int
    seed: int
    metrics: dict[str, float]
    fit_s: float
    encode_ms: float
    query_ms: float
    sizes: dict[str, int] = field(default_factory=dict)
    model_path: str = ""
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict, repr=False)
    chosen: dict[str, Any] = field(default_factory=dict)  # the grid's choice, if any
    trials: list[dict[str, Any]] = field(default_factory=list, repr=False)  # its candidates

    @property
    def mAP(self) -> float:
        return self.metrics["mAP"]


def metric_definitions(
    ks: Sequence[int],
    map_at: Sequence[int],
    ndcg_at: Sequence[int],
    radius: int | None,
    ties: str,
    precision_convention: str = "per-query",
) -> dict[str, str]:
    """One sentence per reported metric, as written into the results."""
    pooled = precision_convention == "pooled"
    order = (
        "ties by database position"
        if ties == "position"
        else "tie-averaged (expected value over every order of items at equal distance)"
    )
    rank = (
        f"the database ranked by Hamming distance to the query, {order}; relevant = shares a "
        "label (for unlabelled data: among the 2% of the database nearest to the query by Euclidean "
        "distance in the features the hashers read)"
    )
    out = {"mAP": f"mean over queries of average precision over the full ranking ({rank})"}
    for k in map_at:
        out[f"mAP@{k}"] = (
            f"mean over queries of AP over the top {k}: sum of P@i at relevant ranks i <= {k}, "
            f"divided by the relevant items in the top {k} (0 when none)"
        )
    for k in ks:
        out[f"P@{k}"] = f"mean share of relevant items among the top {k}"
        out[f"R@{k}"] = f"mean share of the query's relevant items found in the top {k}"
    for k in ndcg_at:
        out[f"NDCG@{k}"] = (
            f"mean DCG@{k} / ideal DCG@{k}, gain 2^s - 1 for an item sharing s labels, "
            "discount 1 / log2(rank + 1)"
        )
    if radius is not None and pooled:
        out[f"P@r{radius}"] = (
            f"relevant items within Hamming radius {radius} of their query over all items within "
            f"radius {radius}, both summed over the queries (pooled, as the Spectral Hashing and "
            "ITQ evaluation code: a query with none adds nothing)"
        )
        out[f"R@r{radius}"] = (
            f"relevant items within Hamming radius {radius} over all relevant items, both summed "
            "over the queries (pooled)"
        )
    elif radius is not None:
        out[f"P@r{radius}"] = (
            f"mean over queries of the precision of the items within Hamming radius {radius} "
            "(0 when there are none: per query, as the DeepHash evaluation code)"
        )
        out[f"R@r{radius}"] = f"mean recall of the items within Hamming radius {radius}"
    out["query_ms"] = "mean milliseconds per query of an exact k-NN search (LinearIndex, k = 100)"
    out["fit_s"] = "seconds to fit the hasher on the train part (features excluded)"
    out["encode_ms"] = "milliseconds per item to encode the database"
    out["curves.pr"] = (
        "precision and recall within each Hamming radius r = 0 .. n_bits (the code length), "
        + (
            "pooled over queries"
            if pooled
            else "means over queries (precision 0 for a query with nothing within r)"
        )
    )
    out["curves.radius"] = (
        "hash-table lookup within radius r: mean P@10 of the first 10 candidates by Hamming "
        "distance (missing ones count as misses), mean ms per query, mean candidates"
    )
    return out


def _value(row: BenchmarkRow, metric: str) -> float:
    if metric in row.metrics:
        return row.metrics[metric]
    if metric in TIMING_KEYS:
        return float(getattr(row, metric))
    raise InvalidInputError(
        f"unknown metric {metric!r}; the rows have {', '.join(row.metrics)}, fit_s, encode_ms, query_ms"
    )


def summarize(rows: Sequence[BenchmarkRow], metric: str = "mAP") -> str:
    """Methods x bits table of ``metric`` as mean ± standard deviation over seeds."""
    methods = list(dict.fromkeys(r.method for r in rows))
    bits = sorted({r.n_bits for r in rows})
    table = []
    for method in methods:
        line: list[Any] = [method]
        for b in bits:
            values = [_value(r, metric) for r in rows if r.method == method and r.n_bits == b]
            line.append(_mean_std(values) if values else "-")
        table.append(line)
    return format_table([metric] + [f"{b} bits" for b in bits], table)


def format_benchmark(rows: Sequence[BenchmarkRow], config: BenchmarkConfig) -> str:
    """The summary of a benchmark as text: a line naming the dataset, protocol (with the split
    manifests), features, seeds and ties; the :func:`summarize` tables of ``mAP``, of each
    ``mAP@k`` and of the first ``P@k``, each followed by an empty line; and, when a grid chose
    parameters, one line per choice, followed by an empty line."""
    lines = [
        f"{config.dataset}, protocol {config.protocol} (manifest "
        f"{', '.join(sorted({r.manifest for r in rows}))}), {config.features} features, "
        f"{len(config.seeds)} seed(s); mean ± std over seeds; ties by {config.ties}"
    ]
    for metric in ("mAP", *(f"mAP@{k}" for k in config.map_at), *(f"P@{k}" for k in config.ks[:1])):
        lines += [summarize(rows, metric), ""]
    chosen = [r for r in rows if r.chosen]
    if chosen:
        lines.append(
            f"chosen on the validation part by {config.select_by} (against the train part):"
        )
        for r in chosen:
            values = ", ".join(f"{k}={json.dumps(v)}" for k, v in r.chosen.items())
            lines.append(f"  {r.method} {r.n_bits} bits seed {r.seed}: {values}")
        lines.append("")
    return "\n".join(lines)


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    return {
        "hashlearn": __version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def write_results(
    rows: Sequence[BenchmarkRow],
    csv_path: str,
    json_path: str,
    config: BenchmarkConfig | dict[str, Any],
    *,
    total_s: float | None = None,
) -> None:
    """Write the rows as CSV (one column per metric) and, with the configuration, protocol,
    metric definitions, versions and timings, as JSON (schema 2)."""
    if not rows:
        raise InvalidInputError("no benchmark rows to write")
    metric_names = list(dict.fromkeys(k for r in rows for k in r.metrics))
    fixed = [
        f
        for f in BenchmarkRow.__dataclass_fields__
        if f not in ("metrics", "curves", "sizes", "trials")
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fixed + metric_names)
    for row in rows:
        cells = [getattr(row, f) for f in fixed]
        cells[fixed.index("chosen")] = json.dumps(row.chosen) if row.chosen else ""
        writer.writerow(cells + [row.metrics.get(m, "") for m in metric_names])
    with atomic_write(csv_path) as handle:
        handle.write(buffer.getvalue().encode())

    config_dict = config.to_dict() if isinstance(config, BenchmarkConfig) else dict(config)
    first = rows[0]
    definitions = metric_definitions(
        config_dict.get("ks", ()),
        config_dict.get("map_at", ()),
        config_dict.get("ndcg_at", ()),
        config_dict.get("radius"),
        config_dict.get("ties", "position"),
        config_dict.get("precision_convention", "per-query"),
    )
    document = {
        "schema": SCHEMA_VERSION,
        "config": config_dict,
        "protocol": {
            "name": first.protocol,
            "dataset": first.dataset,
            "manifest": {str(r.seed): r.manifest for r in rows},
            "sizes": first.sizes,
        },
        "metrics": definitions,
        "versions": _versions(),
        "timings": {"total_s": total_s},
        "results": [asdict(r) for r in rows],
    }
    with atomic_write(json_path) as handle:
        handle.write(json.dumps(document, indent=2).encode())


def results_name(config: BenchmarkConfig, name: str | None = None) -> str:
    """The file name, without suffix, of a benchmark's results: ``name`` when given, else the
    configuration's ``name``, else ``benchmark-DATASET-FEATURES``."""
    return name or config.name or f"benchmark-{config.dataset}-{config.features}"


def save_results(
    rows: Sequence[BenchmarkRow],
    config: BenchmarkConfig,
    out_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    total_s: float | None = None,
) -> tuple[str, str]:
    """Write the rows (:func:`write_results`) to ``out_dir/NAME.csv`` and ``out_dir/NAME.json``,
    ``NAME`` of :func:`results_name`; the folder is made if missing. Returns the two paths
    (``os.path.join(out_dir, NAME + suffix)``)."""
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, results_name(config, name))
    write_results(rows, stem + ".csv", stem + ".json", config, total_s=total_s)
    return stem + ".csv", stem + ".json"
