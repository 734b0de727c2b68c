"""Beyond one machine, measured: image files encoded by Ray workers, and a sharded index searched
through Ray actors, each against the same work in one process.

- **encoding**: the ``--n-images`` first images of the embedded ``mnist5k`` set (real 28x28
  digits) written as PNG files, encoded by an ITQ model of ``--bits`` bits fitted on them:
  images/s of ``hashlearn encode`` in one process (:func:`~hashlearn.encoding.encode_image_files`,
  decoding on threads) and of :func:`~hashlearn.distributed.encode_files` with 1 and 2 Ray
  workers (the actors' start, the shard files and the merge counted; the cluster's start not).
  Every run's codes are checked equal to the single process's. The fixed cost of a job (a
  1-image job: the actor pool started, the model sent and loaded) is printed beside them.
- **sharded search**: ``--n-items`` codes (the mnist5k codes, then random codes of the same
  width up to that count), ``--nq`` queries (mnist5k codes) per call, k = 10: queries/s of one
  in-process :class:`~hashlearn.index.LinearIndex` and of a
  :class:`~hashlearn.distributed.ShardedIndex` of 1, 2 and 4 linear shards, whose results are
  checked equal to the in-process index's. The fan-out overhead is the 1-shard time less the
  in-process time: the queries sent to the actors, the results sent back and merged.

Ray runs on this machine (``--ray local``, one worker slot per CPU) or on a cluster given by
address. Run from the repository root::

    .venv/bin/python benchmarks/scale.py                   # 2,000 images, 1M items
    .venv/bin/python benchmarks/scale.py --n-images 5000 --n-items 4000000 --ray auto
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_seconds(function, repeat: int) -> float:
    """Median seconds of ``repeat`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ray", default="local", help="Ray cluster address (default: local)")
    args = parser.parse_args()

    from PIL import Image

    from hashlearn import create_hasher, load_hasher
    from hashlearn.datasets import load_dataset
    from hashlearn.distributed import ShardedIndex, connect, encode_files, write_sharded_index
    from hashlearn.encoding import encode_image_files
    from hashlearn.index import LinearIndex

    ray = connect(args.ray)
    resources = ray.cluster_resources()
    print(
        f"Ray: {len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPUs, "
        f"{resources.get('GPU', 0):g} GPUs; this machine: {os.cpu_count()} CPUs"
    )
    X = load_dataset("mnist5k").X[: args.n_images]
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        folder = work / "images"
        folder.mkdir()
        for i, image in enumerate(X):
            pixels = np.round(np.clip(image.reshape(28, 28), 0, 1) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:05d}.png")
        model = work / "itq.safetensors"
        create_hasher("itq", n_bits=args.bits, random_state=0).fit(X).save(model)

        print(f"\nencoding {len(X)} PNG files (28x28) with ITQ-{args.bits}")
        start = time.perf_counter()
        single = encode_image_files(load_hasher(model), folder, verbose=False)
        elapsed = time.perf_counter() - start
        print(
            f"  one process (hashlearn encode)  {len(X) / elapsed:9,.0f} images/s  {elapsed:6.2f} s"
        )
        shard_size = max(256, -(-len(X) // 8))  # 8 shards: work for 2 workers to share
        tiny = work / "one-image"
        tiny.mkdir()
        (tiny / "0.png").write_bytes((folder / "00000.png").read_bytes())
        start = time.perf_counter()  # the fixed cost of a job: actors started, model loaded
        encode_files(model, tiny, work / "ray-tiny", address=args.ray, verbose=False)
        fixed = time.perf_counter() - start
        print(f"  fixed cost of a Ray job (1 image, actor start and model load): {fixed:.2f} s")
        for workers in (1, 2):
            start = time.perf_counter()
            done = encode_files(
                model, folder, work / f"ray-{workers}", address=args.ray, batch_size=256,
                shard_size=shard_size, n_workers=workers, verbose=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - start
            if done.result.codes.tobytes() != single.codes.tobytes():
                raise SystemExit("the Ray workers' codes differ from the single process's")
            print(
                f"  Ray, {workers} worker{'s' if workers > 1 else ' '}  "
                f"({done.n_shards} shards)     {len(X) / elapsed:9,.0f} images/s  "
                f"{elapsed:6.2f} s  (codes equal)"
            )

        codes = single.codes
        rng = np.random.default_rng(0)
        if args.n_items > len(codes):
            extra = rng.integers(0, 256, (args.n_items - len(codes), codes.shape[1]), np.uint8)
            codes = np.concatenate([codes, extra])
        ids = np.arange(len(codes), dtype=np.int64)
        queries = single.codes[rng.choice(len(single.codes), args.nq)]
        local = LinearIndex(args.bits)
        local.add_with_ids(codes, ids)
        print(f"\nsearch: {len(codes):,} codes of {args.bits} bits, {args.nq} queries a call, k=10")
        expected = local.search(queries, 10)
        base = median_seconds(lambda: local.search(queries, 10), args.repeat)
        print(f"  in-process LinearIndex  {args.nq / base:10,.0f} q/s  {base * 1000:8.1f} ms/call")
        one_shard = None
        for n_shards in (1, 2, 4):
            manifest = work / f"s{n_shards}.json"
            write_sharded_index(manifest, codes, ids, args.bits, n_shards, "linear")
            with ShardedIndex(manifest, address=args.ray) as sharded:
                got = sharded.search(queries, 10)
                if any(g.tobytes() != e.tobytes() for g, e in zip(got, expected)):
                    raise SystemExit(f"{n_shards} shards answer differently")
                seconds = median_seconds(lambda s=sharded: s.search(queries, 10), args.repeat)
            one_shard = seconds if n_shards == 1 else one_shard
            print(
                f"  ShardedIndex, {n_shards} shard{'s' if n_shards > 1 else ' '}  "
                f"{args.nq / seconds:10,.0f} q/s  {seconds * 1000:8.1f} ms/call  (results equal)"
            )
        print(
            f"  fan-out overhead (1 shard less in-process): {(one_shard - base) * 1000:.1f} ms "
            f"a call, {(one_shard - base) / args.nq * 1e6:.1f} us a query"
        )


if __name__ == "__main__":
    main()
