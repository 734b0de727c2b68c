"""The evaluation engine with each Hamming kernel variant, side by side in one process.

``evaluate_retrieval`` (mAP, mAP@10/100, P@10/100, R@10/100, NDCG@10, P/R within radius 2 and
the PR curve) runs on the same structured codes (10 class centres, each bit flipped with
probability 0.3, as in ``benchmarks/evaluate.py``) once per kernel variant, interleaved,
``--repeat`` times; the median of each is printed, with both tie orders, for each code width and
thread count. ``numba`` is the pure fallback, the scalar ``popcount64`` path the engine used
before the kernel layer served it; the other variants are the compiled ones
(:mod:`hashlearn.codes.kernels`). Up to 64 bits every variant runs the same fused loop (a
distance is one ``popcnt`` there), so their times differ only by noise; wider codes take their
distances from the variant.

``--baseline FILE`` adds an older engine, the ``_passes.py`` of another checkout (e.g.
``git show 57c5322:src/hashlearn/evaluation/_passes.py > /tmp/old_passes.py``), run in the same
process through the same ``evaluate_retrieval``. Every run must give the same metrics, to the
last bit, as the first variant's; the script stops otherwise.

It prints the CPU model, the variant chosen by default and the ones this CPU runs. Run from the
repository root::

    .venv/bin/python benchmarks/evaluate_kernels.py                         # 1,000 x 200,000
    .venv/bin/python benchmarks/evaluate_kernels.py --bits 128 --threads 2 --repeat 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from evaluate import structured_codes

from hashlearn import set_num_threads
from hashlearn.codes import kernels
from hashlearn.codes.distance import as_words
from hashlearn.evaluation import evaluate_retrieval, retrieval

OPTIONS = {"ks": (10, 100), "map_at": (10, 100), "ndcg_at": (10,), "radius": 2}


def load_baseline(path: Path) -> Callable[..., dict]:
    """``run_passes`` of an older engine file, taking this engine's arguments."""
    spec = importlib.util.spec_from_file_location("baseline_passes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba's disk cache imports compiled functions' modules
    spec.loader.exec_module(module)

    def run_passes(q_codes, q_labels, d_codes, d_labels, *, d_words=None, **options):
        d_words = as_words(d_codes) if d_words is None else d_words
        return module.run_passes(as_words(q_codes), q_labels, d_words, d_labels, **options)

    return run_passes


def runner(name: str, baseline: Callable[..., dict] | None, data: tuple, ties: str):
    """One timed evaluation with the variant ``name`` (or the baseline engine)."""

    def run():
        if name == "baseline":
            current = retrieval.run_passes
            retrieval.run_passes = baseline  # this process only, restored below
            try:
                return evaluate_retrieval(*data, ties=ties, **OPTIONS)
            finally:
                retrieval.run_passes = current
        kernels.use_kernel(name)
        return evaluate_retrieval(*data, ties=ties, **OPTIONS)

    return run


def same_bits(a, b) -> bool:
    return all(np.array_equal(a.per_query[k], b.per_query[k]) for k in a.per_query) and all(
        np.array_equal(a.pr_curve[k], b.pr_curve[k]) for k in a.pr_curve
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="database codes")
    parser.add_argument("--nq", type=int, default=1000, help="queries")
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--variants", nargs="+", default=None, help="default: all this CPU runs")
    parser.add_argument("--baseline", type=Path, default=None, help="an older _passes.py")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timed runs (median)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    info = kernels.kernel_info()
    names = list(args.variants or info["available"])
    baseline = load_baseline(args.baseline) if args.baseline else None
    if baseline:
        names.append("baseline")
    print(f"CPU: {info['cpu']}; default variant {info['variant']}; runs {info['available']}")
    print(
        f"{args.nq:,} queries x {args.n:,} codes, 10 classes; seconds per evaluate_retrieval, "
        f"median of {args.repeat} interleaved runs"
    )
    print(f"{'bits':>4} {'thr':>3} {'ties':8} " + " ".join(f"{n:>9}" for n in names), end="")
    print("  numba / best compiled")
    rows = []
    for n_bits in args.bits:
        rng = np.random.default_rng(0)
        centres = rng.integers(0, 2, size=(10, n_bits), dtype=np.uint8)
        d_codes, d_labels = structured_codes(args.n, centres, 0.3, rng)
        q_codes, q_labels = structured_codes(args.nq, centres, 0.3, rng)
        data = (q_codes, q_labels, d_codes, d_labels)
        for threads in args.threads:
            set_num_threads(threads)
            for ties in ("position", "average"):
                runs = {name: runner(name, baseline, data, ties) for name in names}
                reference = runs[names[0]]()  # also the warm-up of the first
                for name in names[1:]:
                    if not same_bits(runs[name](), reference):
                        raise SystemExit(f"{name} gave other metrics than {names[0]}")
                times: dict[str, list[float]] = {name: [] for name in names}
                for _ in range(args.repeat):
                    for name, run in runs.items():
                        start = time.perf_counter()
                        run()
                        times[name].append(time.perf_counter() - start)
                median = {name: statistics.median(values) for name, values in times.items()}
                compiled = [median[n] for n in names if n not in ("numba", "baseline")]
                ratio = median["numba"] / min(compiled) if compiled and "numba" in median else None
                line = f"{n_bits:>4} {threads:>3} {ties:8} "
                line += " ".join(f"{median[name]:9.3f}" for name in names)
                print(line + (f"  {ratio:.2f}x" if ratio else ""), flush=True)
                rows.append({"bits": n_bits, "threads": threads, "ties": ties, "seconds": median})
    kernels.use_kernel(None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "kernel": info, "rows": rows}
        args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
