"""The main job, end to end on real data: learn codes, index them, search, measure.

``run_demo`` fits each method on the train part of a dataset's standard split, encodes the
database, indexes it in a :class:`~hashlearn.index.LinearIndex`, searches with the held-out queries
and measures retrieval. It returns plain data; ``format_demo`` turns it into the text the
``hashlearn demo`` command prints, and ``save_demo`` writes its results (CSV and JSON) and an HTML
report into a folder. ``demo_method_params`` gives the deep methods their training schedule.

>>> methods = ["lsh", "dsh"]
>>> result = run_demo(  # doctest: +SKIP
...     methods=methods, method_params=demo_method_params(methods, epochs=50, patience=10)
... )
>>> print(format_demo(result))  # doctest: +SKIP
>>> save_demo(result, "hashlearn-out").report  # doctest: +SKIP
PosixPath('hashlearn-out/report.html')
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._table import format_table
from hashlearn.codes import codes_to_hex
from hashlearn.datasets import default_split, load_dataset
from hashlearn.evaluation.analysis import class_median_codes, extreme_class_pairs
from hashlearn.experiments.config import BenchmarkConfig, make_config
from hashlearn.experiments.measure import measure_run
from hashlearn.experiments.methods import deep_methods
from hashlearn.experiments.results import BenchmarkRow, write_results
from hashlearn.experiments.selection import fit_timed
from hashlearn.hashers import Hasher, get_hasher_class
from hashlearn.index import LinearIndex

__all__ = [
    "METRIC_NOTE",
    "DemoResult",
    "DemoResultFiles",
    "MethodResult",
    "demo_method_params",
    "format_demo",
    "run_demo",
    "save_demo",
]

METRIC_NOTE = (
    "mAP: mean over queries of average precision over the full database ranking; mAP@10: AP over "
    "the top 10, divided by the relevant items retrieved there; P@10: share of the top 10 with the "
    "query's label. Ranking: Hamming distance, ties by database index. Relevant: same label."
)


@dataclass
class MethodResult:
    method: str
    n_bits: int
    metrics: dict[str, float]
    fit_seconds: float
    encode_ms_per_item: float
    search_ms_per_query: float
    class_codes: list[tuple[int, str]] = field(default_factory=list)
    class_pairs: dict[str, tuple[int, int, int]] = field(default_factory=dict)


@dataclass
class DemoResult:
    dataset: str
    sizes: dict[str, int]
    results: list[MethodResult]
    rows: list[BenchmarkRow] = field(default_factory=list)  # for write_results / reports
    config: BenchmarkConfig | None = None
    hashers: dict[str, Hasher] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DemoResultFiles:
    """What :func:`save_demo` wrote: the results as CSV and JSON, and the HTML report, which
    pictures the codes and retrievals of ``method``."""

    csv: str
    json: str
    report: Path
    method: str


def demo_method_params(
    methods: Sequence[str], *, epochs: int, patience: int | None
) -> dict[str, dict[str, Any]]:
    """The ``method_params`` of :func:`run_demo` that give the deep methods among ``methods``
    (:func:`~hashlearn.experiments.methods.deep_methods`) at most ``epochs`` training epochs, and
    early stopping after ``patience`` epochs without a better validation mAP (None: no early
    stopping); the other methods take no such parameters. Raises UnknownNameError for an
    unknown method.
    """
    return {m: {"epochs": epochs, "patience": patience} for m in deep_methods(methods)}


def run_demo(
    dataset: str = "mnist5k",
    *,
    methods: Sequence[str] = ("lsh", "dsh"),
    n_bits: int = 12,
    random_state: int = 0,
    method_params: dict[str, dict[str, Any]] | None = None,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Fit, index, search and evaluate each method on ``dataset``'s standard split.

    Deep hashers get the split's validation part for early stopping and best-epoch selection;
    queries are only used to measure.

    ``verbose`` shows the hashers' progress bars; ``log`` receives one line per stage.
    """
    log = log or (lambda message: None)
    data = load_dataset(dataset)
    split = default_split(data, random_state=random_state)
    method_params = method_params or {}
    config = make_config(
        dataset, list(methods), [n_bits], [random_state], ks=(10,), map_at=(10,), ndcg_at=(10,)
    )
    results, rows, hashers = [], [], {}
    for name in methods:
        params = {**method_params.get(name, {}), "random_state": random_state}
        if "verbose" in get_hasher_class(name)._param_names():
            params["verbose"] = verbose
        log(f"fitting {name} ({n_bits} bits) on {len(split.train)} training images")
        # deep hashers choose their best epoch on the validation part
        hasher, fit_seconds = fit_timed(name, n_bits, params, {"train": split.train.X}, split)
        log(f"  fitted in {fit_seconds:.1f} s; encoding, indexing, searching, evaluating")

        start = time.perf_counter()
        db_codes = hasher.encode(split.database.X)
        encode_ms = 1000 * (time.perf_counter() - start) / len(split.database)
        query_codes = hasher.encode(split.query.X)

        index = LinearIndex(n_bits)
        index.add(db_codes)  # ids = database positions, as in the metrics
        start = time.perf_counter()
        index.search(query_codes, 10)
        search_ms = 1000 * (time.perf_counter() - start) / len(query_codes)

        row = measure_run(
            config,
            split,
            query_codes,
            db_codes,
            method=name,
            hasher=name,
            n_bits=n_bits,
            seed=random_state,
            features="images" if hasher.input_kind == "images" else "pixels",
            fit_s=fit_seconds,
            encode_s=encode_ms * len(split.database) / 1000,
        )
        rows.append(row)
        hashers[name] = hasher
        classes, medians = class_median_codes(query_codes, split.query.y, n_bits)
        results.append(
            MethodResult(
                method=name,
                n_bits=n_bits,
                metrics=row.metrics,
                fit_seconds=fit_seconds,
                encode_ms_per_item=encode_ms,
                search_ms_per_query=search_ms,
                class_codes=list(zip((int(c) for c in classes), codes_to_hex(medians))),
                class_pairs=extreme_class_pairs(classes, medians),
            )
        )
    return DemoResult(
        dataset=dataset,
        sizes=split.sizes(),
        results=results,
        rows=rows,
        config=config,
        hashers=hashers,
    )


def format_demo(result: DemoResult) -> str:
    """The demo's report as text: split sizes, the results table and, for the last method, the
    per-class median codes with the closest and farthest pair of classes."""
    sizes = ", ".join(f"{k} {v}" for k, v in result.sizes.items())
    rows = [
        [
            r.method,
            r.n_bits,
            f"{r.metrics['mAP']:.4f}",
            f"{r.metrics['mAP@10']:.4f}",
            f"{r.metrics['P@10']:.4f}",
            f"{r.fit_seconds:.1f}",
            f"{r.encode_ms_per_item:.4f}",
            f"{r.search_ms_per_query:.4f}",
        ]
        for r in result.results
    ]
    table = format_table(
        ["method", "bits", "mAP", "mAP@10", "P@10", "fit s", "encode ms/item", "search ms/query"],
        rows,
    )
    parts = [
        f"dataset {result.dataset}: {sizes}",
        "",
        table,
        "",
        textwrap.fill(METRIC_NOTE, width=100),
    ]
    if result.results:
        r = result.results[-1]
        width = max(len(h) for _, h in r.class_codes)
        lines = [f"  {c}  {h.rjust(width)}  {_bits(h, r.n_bits)}" for c, h in r.class_codes]
        closest, farthest = r.class_pairs["closest"], r.class_pairs["farthest"]
        parts += [
            "",
            f"{r.method} median code of each class over the queries (hex bytes, bit 0 first):",
            *lines,
            f"closest classes:  {closest[0]} and {closest[1]}, Hamming distance {closest[2]}",
            f"farthest classes: {farthest[0]} and {farthest[1]}, Hamming distance {farthest[2]}",
        ]
    return "\n".join(parts)


def save_demo(
    result: DemoResult, out_dir: str | os.PathLike[str], *, verbose: bool = True
) -> DemoResultFiles:
    """Write the demo's results and report into ``out_dir`` (made if missing).

    ``demo-DATASET.csv`` and ``demo-DATASET.json`` hold its rows (:func:`write_results`; the JSON
    is what :mod:`hashlearn.report` reads), ``report.html`` (with its figures beside it) the
    report of those results with the pictures of the last method's codes and retrievals.
    ``verbose`` shows the report's progress bar. Imports matplotlib.
    """
    from hashlearn.report import build_report  # imports matplotlib: only when a report is made

    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"demo-{result.dataset}")
    write_results(result.rows, stem + ".csv", stem + ".json", result.config)
    last = result.rows[-1].method
    report = build_report(
        stem + ".json",
        os.path.join(out_dir, "report.html"),
        model=result.hashers[last],
        dataset=result.dataset,
        seed=result.config.seeds[0],
        title=f"hashlearn demo: {', '.join(r.method for r in result.rows)} on {result.dataset}",
        verbose=verbose,
    )
    return DemoResultFiles(stem + ".csv", stem + ".json", report, last)


def _bits(hex_code: str, n_bits: int) -> str:
    raw = np.frombuffer(bytes.fromhex(hex_code), dtype=np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[:n_bits]
    return "".join(str(b) for b in bits)
