"""Evaluation at scale: every metric for 10,000 queries against 1,000,000 codes, time and memory.

The codes are structured like learned ones: each of 10 classes has a random 64-bit centre, and
every item flips each bit of its class centre with probability ``--flip`` (labels are the
classes), so that rankings have realistic ties and mAP is far from both 0 and 1.

Measured side by side in one process:

* ``evaluate_retrieval`` (the compiled engine) on all queries: mAP over the full ranking,
  mAP@10/100/1000, P@10/100, R@10/100, NDCG@10, P/R within radius 2 and the PR curve, with
  ties by database position and tie-averaged;
* the reference: the plain numpy path the engine replaced (``hamming_ranking``: a full stable
  ``argsort`` per query, then ``average_precision`` and friends on the ranked relevance), run on
  the first ``--reference-queries`` queries; its time per query is scaled to all queries, and its
  values must equal the engine's on those queries.

Peak memory is the process's maximum resident set size (``ru_maxrss``), which includes the
codes, labels and Python itself.

Run from the repository root::

    .venv/bin/python benchmarks/evaluate.py                    # 10,000 x 1,000,000, 64 bits
    .venv/bin/python benchmarks/evaluate.py --nq 1000 --n 100000   # quicker
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np

from hashlearn.codes import pack_bits
from hashlearn.evaluation import (
    average_precision,
    evaluate_retrieval,
    hamming_ranking,
    precision_at_k,
    relevance_matrix,
)
from hashlearn.index import get_num_threads, set_num_threads

OPTIONS = {"ks": (10, 100), "map_at": (10, 100, 1000), "ndcg_at": (10,), "radius": 2}


def structured_codes(
    n: int, centres: np.ndarray, flip: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` packed codes near the class ``centres`` (unpacked bits), and their class labels."""
    n_bits = centres.shape[1]
    labels = rng.integers(0, len(centres), size=n)
    codes = np.empty((n, n_bits // 8), dtype=np.uint8)
    for start in range(0, n, 100_000):  # bounded temporaries
        part = slice(start, start + 100_000)
        bits = centres[labels[part]] ^ (rng.random((len(labels[part]), n_bits)) < flip)
        codes[part] = pack_bits(bits)
    return codes, labels


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def reference(q_codes, q_labels, d_codes, d_labels) -> dict[str, np.ndarray]:
    """The plain numpy path on a few queries: full argsort ranking, then the building blocks."""
    _, order = hamming_ranking(q_codes, d_codes)
    ranked = np.take_along_axis(relevance_matrix(q_labels, d_labels), order, axis=1)
    return {
        "mAP": average_precision(ranked),
        "mAP@10": average_precision(ranked, k=10),
        "mAP@1000": average_precision(ranked, k=1000),
        "P@100": precision_at_k(ranked, 100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database codes")
    parser.add_argument("--nq", type=int, default=10_000, help="queries")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--flip", type=float, default=0.3, help="bit-flip probability")
    parser.add_argument("--threads", type=int, default=get_num_threads())
    parser.add_argument("--reference-queries", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, size=(args.classes, args.bits), dtype=np.uint8)
    d_codes, d_labels = structured_codes(args.n, centres, args.flip, rng)
    q_codes, q_labels = structured_codes(args.nq, centres, args.flip, rng)
    # warm-up: compile the kernels outside the measurement
    evaluate_retrieval(q_codes[:8], q_labels[:8], d_codes[:1000], d_labels[:1000], **OPTIONS)
    evaluate_retrieval(
        q_codes[:8], q_labels[:8], d_codes[:1000], d_labels[:1000], ties="average", **OPTIONS
    )
    print(
        f"{args.nq:,} queries x {args.n:,} codes of {args.bits} bits, {args.classes} classes, "
        f"{args.threads} thread(s), {platform.processor() or platform.machine()}"
    )
    results: dict[str, dict] = {}
    for ties in ("position", "average"):
        start = time.perf_counter()
        evaluation = evaluate_retrieval(
            q_codes, q_labels, d_codes, d_labels, ties=ties, verbose=True, **OPTIONS
        )
        seconds = time.perf_counter() - start
        results[ties] = {"seconds": seconds, "metrics": evaluation.metrics}
        print(f"engine, ties by {ties}: {seconds:.1f} s, peak RSS {peak_rss_gib():.2f} GiB")
        print("  " + "  ".join(f"{k} {v:.4f}" for k, v in evaluation.metrics.items()))
        if ties == "position":
            per_query = evaluation.per_query

    m = args.reference_queries
    start = time.perf_counter()
    ref = reference(q_codes[:m], q_labels[:m], d_codes, d_labels)
    ref_seconds = (time.perf_counter() - start) * args.nq / m
    worst = max(float(np.abs(ref[key] - per_query[key][:m]).max()) for key in ref)
    print(
        f"reference (numpy argsort ranking), {m} queries scaled to {args.nq:,}: "
        f"{ref_seconds:.0f} s; engine is {ref_seconds / results['position']['seconds']:.1f}x "
        f"faster; largest difference on those queries {worst:.1e}"
    )
    print(f"peak RSS of the process: {peak_rss_gib():.2f} GiB")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "args": {k: v for k, v in vars(args).items() if k != "out"},
            "engine": results,
            "reference_seconds_scaled": ref_seconds,
            "largest_difference": worst,
            "peak_rss_gib": peak_rss_gib(),
        }
        args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
