"""Exact k-NN search: hashlearn's LinearIndex against faiss' IndexBinaryFlat, side by side.

Both indexes hold the same random codes and answer the same queries in one process; every run
checks that the two return the same distances. For each code width and thread count the script
prints queries per second of both, their ratio (ours / faiss), and the scan rate
(N x code bytes x queries / time) next to this machine's memory bandwidth, measured here by
reading a large array (``numpy.sum``, one thread) and copying it (``numpy.copyto``).

Run from the repository root::

    .venv/bin/python benchmarks/search.py                      # 1M codes, 32-256 bits, 1 and 2 threads
    .venv/bin/python benchmarks/search.py --n 100000 --bits 64  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

from hashlearn.index import LinearIndex, get_num_threads, set_num_threads


def memory_bandwidth(n_bytes: int = 1 << 29, repeat: int = 5) -> dict[str, float]:
    """Best-of-``repeat`` read and copy bandwidth in GB/s over an ``n_bytes`` array."""
    source = np.ones(n_bytes // 8, dtype=np.int64)
    target = np.empty_like(source)
    read = copy = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        source.sum()
        read = min(read, time.perf_counter() - start)
        start = time.perf_counter()
        np.copyto(target, source)
        copy = min(copy, time.perf_counter() - start)
    return {"read_GBps": n_bytes / read / 1e9, "copy_GBps": 2 * n_bytes / copy / 1e9}


def best_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database codes")
    parser.add_argument("--nq", type=int, default=1000, help="queries")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    import faiss

    rng = np.random.default_rng(args.seed)
    bandwidth = memory_bandwidth()
    print(
        f"N = {args.n:,} random codes, {args.nq:,} random queries, k = {args.k}; "
        f"best of {args.repeat} runs; faiss {faiss.__version__}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()})"
    )
    print(
        f"memory bandwidth (1 thread): read {bandwidth['read_GBps']:.1f} GB/s, "
        f"copy {bandwidth['copy_GBps']:.1f} GB/s"
    )
    header = (
        f"{'bits':>5} {'threads':>7} {'hashlearn q/s':>14} {'faiss q/s':>10} {'ratio':>6} "
        f"{'scan GB/s':>10} {'scan/read bw':>13}"
    )
    print(header)
    print("-" * len(header))
    results, memory = [], []
    saved_threads = get_num_threads()
    for n_bits in args.bits:
        code_size = n_bits // 8
        codes = rng.integers(0, 256, size=(args.n, code_size), dtype=np.uint8)
        queries = rng.integers(0, 256, size=(args.nq, code_size), dtype=np.uint8)
        warm = LinearIndex(n_bits)  # compile the kernels outside the measurement
        warm.add(codes[:100])
        warm.search(queries[:1], 1)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        ours = LinearIndex(n_bits)
        ours.add(codes)
        ours.search(queries[:1], 1)  # anything built on the first search is counted too
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        memory.append(
            {
                "n_bits": n_bits,
                "stated_bytes_per_item": code_size + 8,
                "nbytes_per_item": ours.nbytes / args.n,
                "traced_bytes_per_item": held / args.n,
            }
        )
        theirs = faiss.IndexBinaryFlat(n_bits)
        theirs.add(codes)
        for threads in args.threads:
            set_num_threads(threads)
            faiss.omp_set_num_threads(threads)
            D_ours, _ = ours.search(queries[:8], args.k)  # compile / warm up
            D_faiss, _ = theirs.search(queries[:8], args.k)
            t_ours = best_time(lambda index=ours, q=queries: index.search(q, args.k), args.repeat)
            t_faiss = best_time(
                lambda index=theirs, q=queries: index.search(q, args.k), args.repeat
            )
            D_ours, _ = ours.search(queries, args.k)
            D_faiss, _ = theirs.search(queries, args.k)
            if not np.array_equal(D_ours, D_faiss):
                raise SystemExit(f"{n_bits} bits: distances differ from faiss")
            scan = args.n * code_size * args.nq / t_ours / 1e9
            row = {
                "n_bits": n_bits,
                "threads": threads,
                "hashlearn_qps": args.nq / t_ours,
                "faiss_qps": args.nq / t_faiss,
                "ratio": t_faiss / t_ours,
                "scan_GBps": scan,
                "scan_over_read_bandwidth": scan / bandwidth["read_GBps"],
            }
            results.append(row)
            print(
                f"{n_bits:>5} {threads:>7} {row['hashlearn_qps']:>14,.0f} {row['faiss_qps']:>10,.0f} "
                f"{row['ratio']:>6.2f} {scan:>10.1f} {row['scan_over_read_bandwidth']:>13.2f}"
            )
    set_num_threads(saved_threads)
    print("memory per item (LinearIndex, ids 0..N-1): stated = code bytes + 8-byte id")
    for row in memory:
        print(
            f"  {row['n_bits']:>3} bits: stated {row['stated_bytes_per_item']} B, "
            f"index.nbytes {row['nbytes_per_item']:.1f} B, "
            f"allocated and held (tracemalloc) {row['traced_bytes_per_item']:.1f} B"
        )
    print(
        "ratio = faiss time / hashlearn time on the same queries (> 1: hashlearn is faster); "
        "distances checked equal."
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "args": {k: v for k, v in vars(args).items() if k != "out"},
            "bandwidth": bandwidth,
        }
        payload["results"] = results
        payload["memory"] = memory
        args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
