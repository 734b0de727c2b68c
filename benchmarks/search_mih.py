"""Search speed of MultiIndexHashingIndex against LinearIndex and faiss' IndexBinaryMultiHash.

The database holds ``--n`` random 64-bit codes (10M by default); the ``--nq`` queries (1,000) are
near-duplicates of random database items, each with 0 to 3 random bits flipped. Everything runs
in one process on ``--threads`` threads (hashlearn's index threads and faiss' OpenMP; 2 by
default):

* ``LinearIndex`` (exact, a scan of every code), timed on the first ``--linear-nq`` queries
  (100) since it is slow; its results are the reference.
* ``MultiIndexHashingIndex`` (exact): table build time and memory, range search at radius
  0, 1, 2 (inclusive) and k-NN (``k = 10``) on all queries; its results on the reference queries
  must be identical to LinearIndex's (distances and ids, ties included).
* ``faiss.IndexBinaryMultiHash(d, nhash, b)`` (approximate): for each ``b`` in FAISS_BITS and
  ``nhash = 1 .. 64 // b``, ``nflip = 0, 1, ...`` is tried on the first ``--sweep-nq`` queries
  until recall@10 reaches 0.98 or a call gets slower than FAISS_MAX_US per query; range search
  (radius ``r + 1``: faiss' bound is strict) is swept over ``nflip = 0 .. 2``. The fastest
  settings reaching 0.98 are timed on all queries. recall@10 is the mean share of the exact 10
  nearest found, an item tied with the exact 10th counting as found (faiss does not order ties
  by id); range recall is the share of the exact results found.

Per-query time is the wall time of one batched call divided by the number of queries: the best
of ``--repeats`` calls for MultiIndexHashingIndex and faiss, one call for LinearIndex. Targets:
range search (r <= 2) >= 1000x faster per query than LinearIndex, k-NN (k = 10) >= 5x faster.

    python benchmarks/search_mih.py [--n 10000000] [--nq 1000] [--threads 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hashlearn._parallel import set_num_threads
from hashlearn.index.linear import LinearIndex
from hashlearn.index.mih import MultiIndexHashingIndex

N_BITS = 64
K = 10
RADII = (0, 1, 2)
RANGE_TARGET = 1000.0
KNN_TARGET = 5.0
RECALL_TARGET = 0.98
CHUNK = 1 << 20
# faiss settings: substring widths b (nhash = 1 .. 64 // b tables of b bits each), and the
# time per query past which a setting is not tried with more flips.
FAISS_BITS = (16, 20, 24, 32)
FAISS_MAX_US = 20_000.0
# Flips tried per setting for range search (radius <= 2 needs few).
FAISS_RANGE_FLIPS = 2


def random_codes(n: int, seed: int) -> np.ndarray:
    """``n`` uniformly random 64-bit codes, drawn in chunks (no float temporaries)."""
    rng = np.random.default_rng(seed)
    codes = np.empty((n, N_BITS // 8), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        codes[start:stop] = rng.integers(0, 256, size=(stop - start, N_BITS // 8), dtype=np.uint8)
    return codes


def near_duplicates(codes: np.ndarray, nq: int, seed: int) -> np.ndarray:
    """Copies of ``nq`` random rows of ``codes``, each with 0..3 distinct random bits flipped."""
    rng = np.random.default_rng(seed)
    queries = codes[rng.integers(0, len(codes), size=nq)].copy()
    for row in queries:
        for bit in rng.choice(N_BITS, size=int(rng.integers(0, 4)), replace=False):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    return queries


def best_time(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def same_range(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def recall_at_k(distances: np.ndarray, labels: np.ndarray, exact_distances: np.ndarray) -> float:
    """Mean share of the exact k nearest found: returned items (``label >= 0``) whose distance
    is at most the exact k-th distance, over k. An item tied with the exact k-th one counts as
    found, whatever its id (faiss does not break ties by id)."""
    kth = exact_distances[:, -1:]
    found = ((distances <= kth) & (labels >= 0)).sum(axis=1)
    return float(np.mean(np.minimum(found, exact_distances.shape[1]) / exact_distances.shape[1]))


def range_recall(
    lims: np.ndarray, found: np.ndarray, exact: tuple[np.ndarray, ...], nq: int
) -> float:
    """Share of the exact range results of the first ``nq`` queries that were found."""
    exact_lims, _, exact_ids = exact
    hits = sum(
        len(
            np.intersect1d(
                found[lims[i] : lims[i + 1]], exact_ids[exact_lims[i] : exact_lims[i + 1]]
            )
        )
        for i in range(nq)
    )
    return hits / max(1, int(exact_lims[nq]))


def faiss_sweep(
    codes: np.ndarray,
    queries: np.ndarray,
    exact_distances: np.ndarray,
    exact_range: dict[int, tuple[np.ndarray, ...]],
    sweep_nq: int,
    repeats: int,
) -> dict[str, Any]:
    """Sweep IndexBinaryMultiHash settings; time the fastest that reach RECALL_TARGET.

    For k-NN each ``(nhash, b)`` is tried with ``nflip = 0, 1, ...`` on the first ``sweep_nq``
    queries (one call) until its recall@10 reaches the target, or it gets slower than
    FAISS_MAX_US or than the best setting so far. For range search (radius ``r + 1``, faiss'
    bound being strict) ``nflip = 0 .. FAISS_RANGE_FLIPS`` are tried for each radius. Whenever
    a setting beats the best so far, it is timed on every query (best of ``repeats`` calls)
    while its index exists; those are the figures reported.
    """
    import faiss

    sweep_queries, sweep_exact = queries[:sweep_nq], exact_distances[:sweep_nq]
    tried: list[dict[str, Any]] = []
    tried_range: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    range_best: dict[str, dict[str, Any]] = {}
    range_error = None
    for b in FAISS_BITS:
        for nhash in range(1, N_BITS // b + 1):
            index = faiss.IndexBinaryMultiHash(N_BITS, nhash, b)
            start = time.perf_counter()
            index.add(codes)
            setting = {"nhash": nhash, "b": b, "add_s": time.perf_counter() - start}
            for nflip in range(b + 1):
                index.nflip = nflip
                seconds, (distances, labels) = best_time(
                    lambda idx=index: idx.search(sweep_queries, K), 1
                )
                row = {
                    **setting, "nflip": nflip, "knn_us_per_query": seconds / sweep_nq * 1e6,
                    "recall_at_10": recall_at_k(distances, labels, sweep_exact),
                }  # fmt: skip
                tried.append(row)
                print(
                    f"  k-NN  nhash={nhash} b={b} nflip={nflip}: {row['knn_us_per_query']:10.1f} "
                    f"us/query, recall@10 {row['recall_at_10']:.4f}",
                    flush=True,
                )
                if row["recall_at_10"] >= RECALL_TARGET:
                    if best is None or row["knn_us_per_query"] < best["sweep_us_per_query"]:
                        seconds, (distances, labels) = best_time(
                            lambda idx=index: idx.search(queries, K), repeats
                        )
                        best = {
                            **row, "sweep_us_per_query": row["knn_us_per_query"],
                            "knn_us_per_query": seconds / len(queries) * 1e6,
                            "recall_at_10": recall_at_k(distances, labels, exact_distances),
                        }  # fmt: skip
                    break  # more flips only cost more time
                if row["knn_us_per_query"] > FAISS_MAX_US or (
                    best is not None and row["knn_us_per_query"] > best["sweep_us_per_query"]
                ):
                    break
            for nflip in range(min(b, FAISS_RANGE_FLIPS) + 1):
                if range_error is not None:
                    break
                index.nflip = nflip
                for r in RADII:
                    try:
                        seconds, (lims, _, found) = best_time(
                            lambda idx=index, r=r: idx.range_search(sweep_queries, r + 1), 1
                        )
                    except RuntimeError as exc:  # not every binary index has a range search
                        range_error = str(exc).splitlines()[0]
                        break
                    row = {
                        **setting, "nflip": nflip, "radius": r,
                        "us_per_query": seconds / sweep_nq * 1e6,
                        "recall": range_recall(lims, found, exact_range[r], sweep_nq),
                    }  # fmt: skip
                    tried_range.append(row)
                    current = range_best.get(str(r))
                    if row["recall"] >= RECALL_TARGET and (
                        current is None or row["us_per_query"] < current["sweep_us_per_query"]
                    ):
                        seconds, (lims, _, found) = best_time(
                            lambda idx=index, r=r: idx.range_search(queries, r + 1), repeats
                        )
                        range_best[str(r)] = {
                            **row, "sweep_us_per_query": row["us_per_query"],
                            "us_per_query": seconds / len(queries) * 1e6,
                            "recall": range_recall(lims, found, exact_range[r], len(queries)),
                        }  # fmt: skip
            del index
    result: dict[str, Any] = {
        "sweep_queries": sweep_nq, "tried": tried, "tried_range": tried_range, "best": best,
        "range": range_best,
    }  # fmt: skip
    if range_error is not None:
        result["range_error"] = range_error
    for r, row in range_best.items():
        print(
            f"  range r<={r}: fastest with recall >= {RECALL_TARGET}: nhash={row['nhash']} "
            f"b={row['b']} nflip={row['nflip']}, {row['us_per_query']:.1f} us/query, "
            f"recall {row['recall']:.4f}",
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="database size (default 10M)")
    parser.add_argument("--nq", type=int, default=1000, help="queries (default 1000)")
    parser.add_argument(
        "--linear-nq", type=int, default=100, help="queries timed on LinearIndex (default 100)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="numba and faiss threads (default 2)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per measure (default 3)"
    )
    parser.add_argument("--no-faiss", action="store_true", help="skip the faiss sweep")
    parser.add_argument(
        "--sweep-nq", type=int, default=200, help="queries of the faiss sweep (default 200)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results to this JSON file")
    args = parser.parse_args()

    set_num_threads(args.threads)
    results: dict[str, Any] = {
        "n": args.n, "nq": args.nq, "n_bits": N_BITS, "k": K, "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "load_average_at_start": os.getloadavg(),
    }  # fmt: skip
    print(
        f"database: {args.n:,} random {N_BITS}-bit codes; {args.nq} near-duplicate queries",
        flush=True,
    )
    codes = random_codes(args.n, args.seed)
    queries = near_duplicates(codes, args.nq, args.seed + 1)
    ref_queries = queries[: args.linear_nq]

    # ---------------------------------------------------------------- LinearIndex
    linear = LinearIndex(N_BITS)
    linear.add(codes)
    linear.search(ref_queries[:2], K)  # compile / warm up
    lin_knn_s, (lin_d, lin_i) = best_time(lambda index=linear: index.search(ref_queries, K), 1)
    lin_range: dict[int, tuple[float, Any]] = {}
    for r in RADII:
        lin_range[r] = best_time(lambda r=r, index=linear: index.range_search(ref_queries, r), 1)
    nref = len(ref_queries)
    results["linear"] = {
        "queries": nref,
        "knn_us_per_query": lin_knn_s / nref * 1e6,
        "range_us_per_query": {str(r): lin_range[r][0] / nref * 1e6 for r in RADII},
    }
    print(f"LinearIndex: k-NN {lin_knn_s / nref * 1e3:.2f} ms/query", flush=True)
    del linear

    # ---------------------------------------------------------------- MultiIndexHashingIndex
    warm = MultiIndexHashingIndex(N_BITS)  # compiles the kernels (or loads them from the cache)
    warm.add(codes[:1000])
    warm.search(queries[:2], K)
    warm.range_search(queries[:2], 1)
    mih = MultiIndexHashingIndex(N_BITS)
    mih.add(codes)
    start = time.perf_counter()
    mih.build_tables()
    build_s = time.perf_counter() - start
    memory = mih.memory_usage()
    mih.search(queries[:2], K)
    mih.range_search(queries[:2], 1)
    mih_knn_s, (mih_d, mih_i) = best_time(lambda index=mih: index.search(queries, K), args.repeats)
    mih_range = {
        r: best_time(lambda r=r, index=mih: index.range_search(queries, r), args.repeats)
        for r in RADII
    }
    knn_identical = bool(
        np.array_equal(mih_d[:nref], lin_d) and np.array_equal(mih_i[:nref], lin_i)
    )
    range_identical = {
        str(r): same_range(mih.range_search(ref_queries, r), lin_range[r][1]) for r in RADII
    }
    results["mih"] = {
        "n_substrings": mih.n_substrings,
        "substring_bits": mih.substring_bits,
        "build_s": build_s,
        "memory_bytes": memory,
        "table_bytes_per_item": memory["tables"] / args.n,
        "knn_us_per_query": mih_knn_s / args.nq * 1e6,
        "range_us_per_query": {str(r): mih_range[r][0] / args.nq * 1e6 for r in RADII},
        "range_results_per_query": {str(r): float(mih_range[r][1][0][-1] / args.nq) for r in RADII},
        "knn_identical_to_linear": knn_identical,
        "range_identical_to_linear": range_identical,
        "kth_distance_median": float(np.median(mih_d[:, -1])),
    }
    print(
        f"MultiIndexHashingIndex: m={mih.n_substrings} substrings of {mih.substring_bits} bits, "
        f"build {build_s:.2f} s, tables {memory['tables'] / 2**20:.0f} MiB "
        f"({memory['tables'] / args.n:.1f} bytes/item)",
        flush=True,
    )
    exact_distances = mih_d
    exact_range = {r: mih_range[r][1] for r in RADII}
    del mih

    # ---------------------------------------------------------------- faiss
    if not args.no_faiss:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        print("faiss.IndexBinaryMultiHash sweep:", flush=True)
        results["faiss_multihash"] = faiss_sweep(
            codes, queries, exact_distances, exact_range, min(args.sweep_nq, args.nq), args.repeats
        )

    results["peak_rss_gib"] = peak_rss_gib()
    results["load_average_at_end"] = os.getloadavg()

    # ---------------------------------------------------------------- table
    lin = results["linear"]
    mr = results["mih"]
    rows = [("k-NN k=10", lin["knn_us_per_query"], mr["knn_us_per_query"], KNN_TARGET)]
    rows += [
        (
            f"range r<={r}",
            lin["range_us_per_query"][str(r)],
            mr["range_us_per_query"][str(r)],
            RANGE_TARGET,
        )
        for r in RADII
    ]
    faiss_best = results.get("faiss_multihash", {}).get("best")
    faiss_range = results.get("faiss_multihash", {}).get("range", {})
    header = (
        f"{'search':<12} {'Linear us/q':>12} {'MIH us/q':>10} {'Linear/MIH':>11} {'target':>8} "
        f"{'met':>4}   {'faiss MH us/q':>14} {'faiss recall':>13}"
    )
    print()
    print(header)
    print("-" * len(header))
    checks = {}
    for i, (name, lin_us, mih_us, target) in enumerate(rows):
        ratio = lin_us / mih_us
        met = ratio >= target
        checks[name] = {"ratio": ratio, "target": target, "met": met}
        if i == 0:
            entry = faiss_best or {}
            faiss_us, faiss_recall = entry.get("knn_us_per_query"), entry.get("recall_at_10")
        else:
            entry = faiss_range.get(str(RADII[i - 1]), {})
            faiss_us, faiss_recall = entry.get("us_per_query"), entry.get("recall")
        faiss_text = (
            f"{faiss_us:14.2f} {faiss_recall:13.4f}"
            if faiss_us is not None
            else f"{'-':>14} {'-':>13}"
        )
        print(
            f"{name:<12} {lin_us:12.1f} {mih_us:10.2f} {ratio:10.0f}x {target:7.0f}x "
            f"{'yes' if met else 'NO':>4}   {faiss_text}"
        )
    results["targets"] = checks
    print()
    print(f"MIH results identical to LinearIndex: k-NN {knn_identical}, range {range_identical}")
    if faiss_best:
        print(
            f"faiss IndexBinaryMultiHash fastest with recall@10 >= {RECALL_TARGET}: "
            f"nhash={faiss_best['nhash']} b={faiss_best['b']} nflip={faiss_best['nflip']}, "
            f"{faiss_best['knn_us_per_query']:.1f} us/query, recall@10 {faiss_best['recall_at_10']:.4f} "
            f"(MIH exact: {mr['knn_us_per_query']:.1f} us/query)"
        )
    if not faiss_best and "faiss_multihash" in results:
        tried = results["faiss_multihash"]["tried"]
        top = max(tried, key=lambda row: (row["recall_at_10"], -row["knn_us_per_query"]))
        print(
            f"faiss IndexBinaryMultiHash: no setting reached recall@10 >= {RECALL_TARGET} within "
            f"{FAISS_MAX_US / 1000:.0f} ms/query; highest: nhash={top['nhash']} b={top['b']} "
            f"nflip={top['nflip']}, recall@10 {top['recall_at_10']:.4f} at "
            f"{top['knn_us_per_query']:.0f} us/query ({results['faiss_multihash']['sweep_queries']} queries)"
        )
    if "range_error" in results.get("faiss_multihash", {}):
        print(f"faiss range search: {results['faiss_multihash']['range_error']}")
    print(
        f"peak RSS {results['peak_rss_gib']:.2f} GiB; load average (1, 5, 15 min) at start "
        f"{results['load_average_at_start']}, at end {results['load_average_at_end']}"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, default=float)
        print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
