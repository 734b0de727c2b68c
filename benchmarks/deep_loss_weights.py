"""Loss weights of the deep methods, checked on validation parts: each method's main loss weight
at half and twice its default (the paper's value, or the value recorded in the loss's
docstring), everything else at the method's defaults, against the default fits recorded by
``deep_defaults.py check``.

For each method, code length (12, 48) and seed (0-2) the method is fitted on the train part of
mnist5k's default split as a user fits it, with ``loss_params`` given; the row records the
validation score (mAP of the 500 validation images as queries against the train part, what
``hashlearn tune`` ranks by) and the test mAP (500 queries against 4,500 database images,
recorded only, never used to choose). ``report`` sets each variant's mean validation score
against the default's.

Run from the repository root (2 worker processes of 1 thread each)::

    .venv/bin/python benchmarks/deep_loss_weights.py run --out benchmarks/results/deep_loss_weights.jsonl
    .venv/bin/python benchmarks/deep_loss_weights.py report \\
        --rows benchmarks/results/deep_loss_weights.jsonl \\
        --defaults benchmarks/results/deep_candidates.jsonl
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import deep_defaults

# method -> (loss parameter, its default when the screen ran, the values tried beside it)
WEIGHTS: dict[str, tuple[str, float, tuple[float, ...]]] = {
    "dsh": ("alpha", 0.01, (0.005, 0.02)),
    "dpsh": ("eta", 0.1, (0.05, 0.2)),
    "dsdh": ("mu", 1.0, (0.5, 2.0)),
    "dch": ("lambda_q", 0.1, (0.05, 0.2)),
    "csq": ("lambda_q", 1e-4, (5e-5, 2e-4)),
    "orthohash": ("margin", 0.2, (0.1, 0.4)),
    "greedyhash": ("alpha", 0.1, (0.05, 0.2)),
    "dpn": ("margin", 1.0, (0.5, 2.0)),
    "bihalf": ("gamma", 1.0, (0.5, 2.0)),
    "cibhash": ("temperature", 0.3, (0.15, 0.6, 0.9, 1.2)),
}
BITS = (12, 48)
SEEDS = (0, 1, 2)


def _tasks(methods: list[str]) -> list[dict[str, Any]]:
    return [
        dict(
            stage="check",
            method=method,
            bits=bits,
            seed=seed,
            params={"loss_params": {WEIGHTS[method][0]: value}},
        )
        for seed in SEEDS
        for bits in BITS
        for method in methods
        for value in WEIGHTS[method][2]
    ]


def _run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {deep_defaults._key(json.loads(line)) for line in out.read_text().splitlines()}
    todo = [t for t in _tasks(args.methods.split(",")) if deep_defaults._key(t) not in done]
    print(f"{platform.processor() or platform.machine()}: {len(todo)} fits to run", flush=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) as pool, out.open("a") as handle:
        for row in pool.imap_unordered(deep_defaults._run, todo):
            row.pop("val_curve", None)
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            print(
                f"{row['method']:>10} {row['bits']:>2} bits seed {row['seed']} {row['params']}: "
                f"tune {row['tune_score']:.4f} test {row['test_mAP']:.4f} ({row['fit_s']:.0f} s)",
                flush=True,
            )


def _scores(pool: list[dict[str, Any]], method: str, bits: int, name: str, value: float) -> list:
    """Validation scores of the fits of ``method`` at ``bits`` whose loss parameter ``name`` was
    ``value`` and everything else the method's default, one per seed (a fit recorded twice,
    as a screen row and as a candidate of ``deep_defaults.py``, counts once)."""
    from hashlearn.hashers import create_hasher

    default = getattr(create_hasher(method)._make_loss(), name)
    by_seed: dict[int, float] = {}
    for row in pool:
        if (row["method"], row["bits"]) != (method, bits) or row["seed"] not in SEEDS:
            continue
        loss = row["params"].get("loss_params", {})
        rest = {k: v for k, v in row["params"].items() if k != "loss_params"}
        if (
            set(loss) <= {name}
            and loss.get(name, default) == value
            and deep_defaults._is_default({**row, "params": rest})
        ):
            by_seed.setdefault(row["seed"], row["tune_score"])
    return list(by_seed.values())


def _report(args: argparse.Namespace) -> None:
    from hashlearn.hashers import create_hasher

    pool = deep_defaults._rows(args.rows) + deep_defaults._rows(args.defaults)
    print("| method | weight | " + " | ".join(f"{b} bits" for b in BITS) + " | mean |")
    print("|---|---|" + "---|" * (len(BITS) + 1))
    for method, (name, before, values) in WEIGHTS.items():
        default = getattr(create_hasher(method)._make_loss(), name)
        for value in sorted({before, *values, default}):
            cells = []
            for bits in BITS:
                scores = _scores(pool, method, bits, name, value)
                cells.append(statistics.mean(scores) if len(scores) == len(SEEDS) else None)
            text = ["-" if c is None else f"{c:.4f}" for c in cells]
            mean = "-" if None in cells else f"{statistics.mean(cells):.4f}"
            label = f"{name} {value:g}" + (" (default)" if value == default else "")
            label += " (before)" if value == before != default else ""
            print(f"| {method} | {label} | " + " | ".join(text) + f" | {mean} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    run = sub.add_parser("run")
    run.add_argument("--out", required=True)
    run.add_argument("--methods", default=",".join(WEIGHTS))
    run.add_argument("--workers", type=int, default=2)
    report = sub.add_parser("report")
    report.add_argument("--rows", required=True)
    report.add_argument("--defaults", required=True)
    args = parser.parse_args()
    _run(args) if args.stage == "run" else _report(args)


if __name__ == "__main__":
    main()
