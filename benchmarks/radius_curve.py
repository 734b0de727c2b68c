"""Multi-probe radius curve: precision@10 and query time of hash-table search against the radius.

The protocol of hash-table retrieval with re-ranking: each method's codes of the database go into
one :class:`~hashlearn.index.hash_table.HashTableIndex` (keyed by the whole code) together with
the database's pixel features. For a Hamming radius ``r = 0 .. --max-radius``, every query takes
as candidates the items whose codes lie within ``r`` of its own (multi-probe: its bucket and the
buckets up to ``r`` bit flips away), orders them by cosine distance between pixel features and
keeps the first 10.

precision@10 = (candidates among those 10 with the query's label) / 10; a query with fewer than
10 candidates counts the missing ones as misses. Reported per radius: the mean over queries of
precision@10, the mean number of candidates (items within ``r``), and the query time in ms,
measured two ways: one call per query (mean over the queries) and one call for all queries
divided by their number.

Data: the mnist5k default split for ``--seed`` (500 queries, 4,500 database images of which 3,500
train the hashers; the validation part is not used: no hyper-parameter is chosen). Features are
raw pixels in [0, 1], flattened (the ``pixels`` extractor fitted on the train part), as the demo
feeds the hashers. Hashers use their defaults and are seeded with ``--seed``.

    python benchmarks/radius_curve.py [--bits 16] [--methods lsh,grh,itq-cca] [--max-radius 10]
        [--seed 0] [--out benchmark-results/radius_curve]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from hashlearn._table import format_table
from hashlearn.datasets import default_split, load_dataset
from hashlearn.features import create_features
from hashlearn.hashers import create_hasher
from hashlearn.index.hash_table import HashTableIndex

TOP = 10


def radius_curve(
    method: str, n_bits: int, max_radius: int, seed: int, data: dict[str, np.ndarray]
) -> list[dict[str, float]]:
    """One row per radius 0 .. max_radius for ``method`` (see the module docstring)."""
    hasher = create_hasher(method, n_bits=n_bits, random_state=seed)
    start = time.perf_counter()
    hasher.fit(data["train_X"], data["train_y"])
    fit_s = time.perf_counter() - start
    db_codes = hasher.encode(data["db_X"])
    query_codes = hasher.encode(data["query_X"])
    query_X, db_y, query_y = data["query_X"], data["db_y"], data["query_y"]
    nq = len(query_codes)

    index = HashTableIndex(n_bits)
    index.add(db_codes, features=data["db_X"])
    start = time.perf_counter()
    index.search_rerank(query_codes[:1], query_X[:1], TOP, 0)  # builds the table
    build_s = time.perf_counter() - start

    rows = []
    for radius in range(max_radius + 1):
        lims, _, _ = index.range_search(query_codes, radius)
        candidates = np.diff(lims)

        start = time.perf_counter()
        _, ids = index.search_rerank(query_codes, query_X, TOP, radius, metric="cosine")
        batch_ms = 1000 * (time.perf_counter() - start) / nq

        per_query = np.empty(nq)
        for q in range(nq):
            start = time.perf_counter()
            index.search_rerank(query_codes[q : q + 1], query_X[q : q + 1], TOP, radius)
            per_query[q] = time.perf_counter() - start

        found = ids >= 0
        relevant = found & (db_y[np.where(found, ids, 0)] == query_y[:, None])
        precision = relevant.sum(axis=1) / TOP
        rows.append(
            {
                "method": method,
                "bits": n_bits,
                "seed": seed,
                "radius": radius,
                "precision_at_10": float(precision.mean()),
                "mean_candidates": float(candidates.mean()),
                "queries_with_10_candidates": float((candidates >= TOP).mean()),
                "query_ms": float(1000 * per_query.mean()),
                "batch_ms_per_query": float(batch_ms),
                "n_buckets": index.n_buckets,
                "fit_s": fit_s,
                "table_build_s": build_s,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=16, help="code length (default 16)")
    parser.add_argument("--methods", default="lsh,grh,itq-cca", help="comma-separated hasher names")
    parser.add_argument("--max-radius", type=int, default=10, help="largest radius (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="split and hasher seed (default 0)")
    parser.add_argument(
        "--out", default="benchmark-results/radius_curve", help="folder for the CSV and JSON"
    )
    args = parser.parse_args()

    dataset = load_dataset("mnist5k")
    split = default_split(dataset, random_state=args.seed)
    pixels = create_features("pixels").fit(split.train.X)
    data = {
        "train_X": pixels.transform(split.train.X),
        "train_y": split.train.y,
        "db_X": pixels.transform(split.database.X),
        "db_y": split.database.y,
        "query_X": pixels.transform(split.query.X),
        "query_y": split.query.y,
    }
    print(
        f"mnist5k seed {args.seed}: {len(split.query)} queries, {len(split.database)} database "
        f"items ({len(split.train)} train the hashers), {args.bits} bits, pixel features"
    )
    warm_up = HashTableIndex(args.bits)  # loads the compiled kernels before anything is timed
    warm_up.add(np.zeros((1, warm_up.code_size), np.uint8), features=data["db_X"][:1])
    for nq in (1, 16):
        warm_up.search_rerank(
            np.zeros((nq, warm_up.code_size), np.uint8), data["query_X"][:nq], 1, 1
        )
        warm_up.range_search(np.zeros((nq, warm_up.code_size), np.uint8), 1)
    rows: list[dict[str, float]] = []
    for method in args.methods.split(","):
        method_rows = radius_curve(method, args.bits, args.max_radius, args.seed, data)
        rows.extend(method_rows)
        first = method_rows[0]
        print(
            f"\n{method}: fit {first['fit_s']:.2f} s, {first['n_buckets']} non-empty buckets, "
            f"table built in {1000 * first['table_build_s']:.1f} ms"
        )
        print(
            format_table(
                ["radius", "P@10", "candidates", ">=10 cand.", "ms/query", "batch ms/query"],
                [
                    [
                        r["radius"],
                        f"{r['precision_at_10']:.4f}",
                        f"{r['mean_candidates']:.1f}",
                        f"{r['queries_with_10_candidates']:.3f}",
                        f"{r['query_ms']:.4f}",
                        f"{r['batch_ms_per_query']:.4f}",
                    ]
                    for r in method_rows
                ],
            )
        )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"radius_curve_mnist5k_{args.bits}bits_seed{args.seed}"
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / f"{stem}.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwrote {out / stem}.csv and .json")


if __name__ == "__main__":
    main()
