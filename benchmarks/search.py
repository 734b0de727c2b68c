"""Exact Hamming search: LinearIndex against faiss' IndexBinaryFlat, side by side in one process.

Both indexes hold the same random codes and answer the same queries; runs of the two alternate
(interleaved repeats) and the median of each is kept; every run checks that both return the same
distances. For each code width the script prints:

- **batch**: ``--nq`` queries per call on ``--threads`` threads, queries/s of both and the ratio
  (ours / faiss), for the kernel variant in use and, below it, every other variant this CPU runs;
- **one query per call** on one thread (the search service's path), ms per query and the ratio;
- **radius**: a radius search whose results are fewer than k (radius 2, or less for short codes)
  against the k-NN search, ours, same queries;
- the scan rate (64-bit words compared per second) as a share of this machine's limit: the
  variant's own xor+popcount throughput on registers alone (measured here, per core) times the
  threads.

It prints the CPU model, the variant (``hashlearn.codes.kernels.kernel_info()``) and the SIMD
level faiss dispatches to first. ``HASHLEARN_KERNEL=avx2`` makes avx2 the variant in use;
faiss-cpu wheels from 1.13 on are one dynamic-dispatch library, forced to its AVX2 code with
``FAISS_SIMD_LEVEL=AVX2`` (``FAISS_OPT_LEVEL`` only picks among separately built modules, which
these wheels do not ship, and is ignored by them). Run from the repository root::

    .venv/bin/python benchmarks/search.py                       # 1M codes, 32-256 bits
    .venv/bin/python benchmarks/search.py --n 100000 --bits 64   # quicker
    HASHLEARN_KERNEL=avx2 FAISS_SIMD_LEVEL=AVX2 .venv/bin/python benchmarks/search.py \
        --variants avx2                                           # both on their AVX2 code
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

from hashlearn import set_num_threads
from hashlearn.codes import kernels
from hashlearn.index import LinearIndex


def interleaved(functions: dict[str, object], repeat: int) -> dict[str, float]:
    """Median seconds of each function, run in turn ``repeat`` times (after one warm-up each)."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        function()
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure_width(n_bits: int, args: argparse.Namespace, rng, info: dict, peaks: dict) -> dict:
    """Batch, one-query and radius timings at one code width (see the module docstring)."""
    import faiss

    default = info["variant"]
    code_size = n_bits // 8
    words = -(-code_size // 8)
    codes = rng.integers(0, 256, (args.n, code_size), dtype=np.uint8)
    queries = rng.integers(0, 256, (args.nq, code_size), dtype=np.uint8)
    tracemalloc.start()
    ours = LinearIndex(n_bits)
    ours.add(codes)
    ours.search(queries[:1], args.k)
    held = tracemalloc.get_traced_memory()[0] / args.n
    tracemalloc.stop()
    theirs = faiss.IndexBinaryFlat(n_bits)
    theirs.add(codes)
    radius = min(2, n_bits // 16)
    row: dict[str, object] = {}

    # batch, every variant, interleaved with faiss
    set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    expected = theirs.search(queries, args.k)[0]
    runs = {"faiss": lambda: theirs.search(queries, args.k)}
    for variant in args.variants:

        def run(variant=variant):
            kernels.use_kernel(variant)
            distances, _ = ours.search(queries, args.k)
            assert (distances == expected).all(), variant

        runs[variant] = run
    batch = interleaved(runs, args.repeat)
    kernels.use_kernel(default)
    row["batch_seconds"] = batch
    row["bytes_per_item"] = {"index.nbytes": ours.nbytes / args.n, "allocated and held": held}
    print(
        f"{n_bits} bits: {ours.nbytes / args.n:.1f} B per item (index.nbytes), "
        f"{held:.1f} B allocated and held by add and a first search"
    )
    print(f"{n_bits} bits, batch of {args.nq} queries, {args.threads} threads:")
    for variant in args.variants:
        ratio = batch["faiss"] / batch[variant]
        rate = args.n * args.nq * words / batch[variant]
        share = (
            f", {rate / (peaks[variant] * args.threads):.0%} of the {variant} limit"
            if variant in peaks else ""
        )  # fmt: skip
        mark = " <- in use" if variant == default else ""
        print(
            f"  {variant:7s} {args.nq / batch[variant]:9.0f} q/s  faiss {args.nq / batch['faiss']:7.0f} q/s"
            f"  ratio {ratio:5.2f}{share}{mark}"
        )

    # one query per call, one thread
    set_num_threads(1)
    faiss.omp_set_num_threads(1)
    single = queries[: args.single]
    single_runs = {
        "faiss": lambda: [theirs.search(q[None], args.k) for q in single],
        default: lambda: [ours.search(q[None], args.k) for q in single],
    }
    one = {name: t / len(single) for name, t in interleaved(single_runs, args.repeat).items()}
    row["single_seconds"] = one
    print(
        f"  one query per call, 1 thread: {default} {one[default] * 1e3:.3f} ms, "
        f"faiss {one['faiss'] * 1e3:.3f} ms, ratio {one['faiss'] / one[default]:.2f}"
    )

    # radius search against k-NN, ours
    set_num_threads(args.threads)
    ranged = interleaved(
        {
            "knn": lambda: ours.search(queries, args.k),
            "range": lambda: ours.range_search(queries, radius),
        },
        args.repeat,
    )
    hits = len(ours.range_search(queries, radius)[2])
    row["range"] = {"radius": radius, "hits": hits, "seconds": ranged}
    print(
        f"  radius <= {radius} ({hits} hits): {ranged['range'] * 1e3:.1f} ms against k-NN "
        f"{ranged['knn'] * 1e3:.1f} ms (ratio {ranged['knn'] / ranged['range']:.2f})\n"
    )
    return row


def faiss_simd(faiss) -> str:
    """The SIMD level faiss runs (dynamic-dispatch builds) and its compile options."""
    config = getattr(faiss, "SIMDConfig", None)
    level = config.get_level_name() if config is not None else "not reported"
    return f"SIMD level {level}, compile options: {faiss.get_compile_options().strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database codes")
    parser.add_argument("--nq", type=int, default=1000, help="queries per batch")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--threads", type=int, default=2, help="threads of the batch searches")
    parser.add_argument("--single", type=int, default=200, help="queries timed one per call")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timed runs (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=None, help="batch variants (all)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    import faiss

    info = kernels.kernel_info()
    args.variants = args.variants or info["available"]
    native = kernels._native()[0]
    peaks = {
        v: native.peak_words_per_second(v) for v in args.variants if v != "numba"
    } if native is not None else {}  # fmt: skip
    print(f"CPU: {info['cpu']}")
    print(f"kernel: {info['variant']} (this CPU runs: {', '.join(info['available'])})")
    for variant, peak in peaks.items():
        print(f"  {variant} limit: {peak / 1e9:.2f} G words/s per core (xor+popcount on registers)")
    print(f"faiss {faiss.__version__}: {faiss_simd(faiss)}")
    print(f"{args.n:,} codes, k = {args.k}\n")
    rng = np.random.default_rng(args.seed)
    results = {
        "cpu": info["cpu"],
        "kernel": info,
        "peaks": peaks,
        "args": vars(args) | {"out": str(args.out)},
        "widths": {},
    }
    for n_bits in args.bits:
        results["widths"][str(n_bits)] = measure_width(n_bits, args, rng, info, peaks)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
