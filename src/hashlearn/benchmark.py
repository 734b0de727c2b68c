"""Methods x bits x seeds benchmarks on a dataset's standard split.

For every seed the dataset is split with that seed (queries held out, train and validation drawn
from the database), the feature extractor is fitted on the train part, every hasher is fitted on the
train features (with labels when supervised) and seeded with the same seed, and the query codes are
ranked against the database codes. Nothing is selected on the query set. Deep hashers take the images
themselves, whatever the feature extractor.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hashlearn._io import atomic_write
from hashlearn._table import format_table
from hashlearn._validation import check_int
from hashlearn.datasets import default_split, load_dataset
from hashlearn.evaluation import evaluate_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import create_hasher, get_hasher_class

METRIC_DEFINITIONS = {
    "mAP": "mean over queries of average precision over the full database ranking "
    "(Hamming distance, ties by database position; relevant = same label)",
    "P@10": "share of the 10 nearest database items with the query's label",
    "fit_s": "seconds to fit the hasher on the train part (features excluded)",
    "encode_ms": "milliseconds per item to encode the database",
}


@dataclass(frozen=True)
class BenchmarkRow:
    dataset: str
    features: str
    method: str
    n_bits: int
    seed: int
    mAP: float
    P_at_10: float
    fit_s: float
    encode_ms: float


def run_benchmark(
    dataset: str,
    methods: Sequence[str],
    bits: Sequence[int],
    seeds: Sequence[int],
    *,
    features: str = "pixels",
    method_params: dict[str, dict[str, Any]] | None = None,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[BenchmarkRow]:
    """Run every (method, bits, seed) and return one row each (see the module docstring)."""
    from hashlearn.features import create_features

    if not methods or not bits or not seeds:
        raise InvalidInputError("methods, bits and seeds must each name at least one value")
    classes = {m: get_hasher_class(m) for m in methods}  # unknown names fail before any work
    bits = [check_int(b, "bits", minimum=1, maximum=4096) for b in bits]
    method_params = method_params or {}
    data = load_dataset(dataset)
    rows: list[BenchmarkRow] = []
    bar = tqdm(
        total=len(methods) * len(bits) * len(seeds),
        desc="benchmark",
        unit="run",
        disable=not verbose,
    )
    for seed in seeds:
        split = default_split(data, random_state=seed)
        extractor = create_features(features)
        extractor.fit(split.train.X)
        feats = {
            part: extractor.transform(getattr(split, part).X)
            for part in ("train", "query", "database")
        }
        for method in methods:
            deep = classes[method].input_kind == "images"
            inputs = {part: getattr(split, part).X for part in feats} if deep else feats
            for n_bits in bits:
                params = dict(method_params.get(method, {}))
                if deep and "verbose" in classes[method]._param_names():
                    params.setdefault("verbose", False)
                hasher = create_hasher(method, n_bits=n_bits, random_state=seed, **params)
                start = time.perf_counter()
                if deep and len(split.validation):  # model selection on the validation part only
                    hasher.fit(
                        inputs["train"],
                        split.train.y,
                        X_val=split.validation.X,
                        y_val=split.validation.y,
                    )
                else:
                    hasher.fit(inputs["train"], split.train.y)
                fit_s = time.perf_counter() - start
                start = time.perf_counter()
                db_codes = hasher.encode(inputs["database"])
                encode_ms = 1000 * (time.perf_counter() - start) / len(db_codes)
                metrics = evaluate_codes(
                    hasher.encode(inputs["query"]),
                    split.query.y,
                    db_codes,
                    split.database.y,
                    ks=(10,),
                    map_at=(),
                    radius=None,
                )
                row = BenchmarkRow(
                    dataset,
                    "images" if deep else features,
                    method,
                    n_bits,
                    int(seed),
                    metrics["mAP"],
                    metrics["P@10"],
                    fit_s,
                    encode_ms,
                )
                rows.append(row)
                if log:
                    log(
                        f"{method:8s} {n_bits:4d} bits seed {seed}: mAP {row.mAP:.4f}  P@10 {row.P_at_10:.4f}  "
                        f"fit {fit_s:.1f} s"
                    )
                bar.update()
    bar.close()
    return rows


def summarize(rows: Sequence[BenchmarkRow], metric: str = "mAP") -> str:
    """Methods x bits table of ``metric`` as mean ± standard deviation over seeds."""
    methods = list(dict.fromkeys(r.method for r in rows))
    bits = sorted({r.n_bits for r in rows})
    table = []
    for method in methods:
        line: list[Any] = [method]
        for b in bits:
            values = [getattr(r, metric) for r in rows if r.method == method and r.n_bits == b]
            line.append(_mean_std(values) if values else "-")
        table.append(line)
    return format_table([metric.replace("P_at_10", "P@10")] + [f"{b} bits" for b in bits], table)


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def write_results(
    rows: Sequence[BenchmarkRow], csv_path: str, json_path: str, config: dict[str, Any]
) -> None:
    """Write the rows as CSV and, with the configuration, metric definitions and versions, as JSON."""
    import sklearn

    from hashlearn import __version__

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(BenchmarkRow.__dataclass_fields__))
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    with atomic_write(csv_path) as handle:
        handle.write(buffer.getvalue().encode())
    document = {
        "config": config,
        "metrics": METRIC_DEFINITIONS,
        "versions": {
            "hashlearn": __version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "results": [asdict(r) for r in rows],
    }
    with atomic_write(json_path) as handle:
        handle.write(json.dumps(document, indent=2).encode())
