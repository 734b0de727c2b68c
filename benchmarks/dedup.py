"""Near-duplicate self-join: multi-index hashing against a brute-force scan, side by side.

A collection of random codes with planted near-duplicates (copies with 1 to ``radius`` bits
flipped) is joined with itself within ``radius`` bits by :func:`hashlearn.index.near_duplicate_pairs`
through a :class:`~hashlearn.index.MultiIndexHashingIndex` and through a
:class:`~hashlearn.index.LinearIndex` (every code against every code), in one process. The
script checks that both find the same pairs, that every planted pair is among them, and prints
both times and their ratio.

Run from the repository root::

    .venv/bin/python benchmarks/dedup.py                   # 200,000 codes of 64 bits, radius 3
    .venv/bin/python benchmarks/dedup.py --n 1000000 --skip-linear
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hashlearn.index import group_pairs, near_duplicate_pairs


def collection(n: int, n_bits: int, planted: int, radius: int, seed: int):
    """``n`` random codes plus ``planted`` copies of random ones with 1..radius bits flipped."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, n_bits // 8), dtype=np.uint8)
    sources = rng.choice(n, size=planted, replace=False)
    copies = codes[sources].copy()
    for row in copies:
        flips = rng.choice(n_bits, size=rng.integers(1, radius + 1), replace=False)
        for bit in flips:
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    return np.concatenate([codes, copies]), sources


def timed(codes: np.ndarray, n_bits: int, radius: int, index: str):
    near_duplicate_pairs(codes[:1000], n_bits, radius, index=index)  # compile outside the timing
    start = time.perf_counter()
    pairs = near_duplicate_pairs(codes, n_bits, radius, index=index)
    return pairs, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="random codes")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--radius", type=int, default=3)
    parser.add_argument("--planted", type=int, default=1000, help="planted near-duplicates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-linear", action="store_true", help="time multi-index hashing only")
    args = parser.parse_args()
    codes, sources = collection(args.n, args.bits, args.planted, args.radius, args.seed)
    print(
        f"{len(codes):,} codes of {args.bits} bits ({args.planted:,} planted near-duplicates), "
        f"radius {args.radius}"
    )
    pairs, mih_s = timed(codes, args.bits, args.radius, "mih")
    planted = set(zip(sources.tolist(), range(args.n, args.n + args.planted)))
    found = set(zip(pairs.first.tolist(), pairs.second.tolist()))
    assert planted <= found, "a planted near-duplicate was missed"
    groups = group_pairs(pairs)
    print(f"mih     {mih_s:8.2f} s   {len(pairs):,} pairs, {len(groups):,} groups")
    if not args.skip_linear:
        reference, linear_s = timed(codes, args.bits, args.radius, "linear")
        assert np.array_equal(reference.first, pairs.first)
        assert np.array_equal(reference.second, pairs.second)
        print(f"linear  {linear_s:8.2f} s   same pairs; mih is {linear_s / mih_s:.0f}x faster")


if __name__ == "__main__":
    main()
