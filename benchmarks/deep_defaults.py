"""Defaults of the deep hashers, chosen on validation parts: the sweep and the check.

``sweep``: for every deep method, code length and seed, the method is fitted on the train part
of mnist5k's default split (seeded) once per learning rate of ``--lrs`` for ``--max-epochs``
epochs, everything else at its default. Each fit records, per epoch, the trainer's validation
mAP (leave-one-out among the 500 validation images, see
:mod:`hashlearn.hashers.deep.trainer.validation`), which is also what keeping the last epoch of
a shorter run of the same seed would score: with a constant learning rate, the first ``e``
epochs of a long run are an ``e``-epoch run. Each fit also records the tune score of its best
epoch: mAP of the validation part as queries against the train part as database, exactly what
``hashlearn tune --grid lr=...`` computes (``experiments.selection``). The queries are never
used to choose; their mAP is recorded for the table only.

``check``: every method fitted as a user would, ``create_hasher(name, n_bits=b,
random_state=s).fit(X_train, y_train)`` with nothing else, scored the same two ways; the report
sets each against the best tune score of the sweep (mean over seeds).

Run from the repository root (2 worker processes of 1 thread each)::

    .venv/bin/python benchmarks/deep_defaults.py sweep --out benchmarks/results/deep_sweep.jsonl
    .venv/bin/python benchmarks/deep_defaults.py check --out benchmarks/results/deep_check.jsonl
    .venv/bin/python benchmarks/deep_defaults.py report --sweep benchmarks/results/deep_sweep.jsonl \
        --check benchmarks/results/deep_check.jsonl

Results are appended a line per fit; a rerun skips the fits already in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import time
from pathlib import Path
from typing import Any

METHODS = (
    "dsh", "dpsh", "hashnet", "dsdh", "dch", "csq", "orthohash", "greedyhash", "dpn",
    "bihalf", "cibhash",
)  # fmt: skip
UNSUPERVISED = ("bihalf", "cibhash")
BITS = (12, 24, 48)
SEEDS = (0, 1, 2)

_SPLITS: dict[int, Any] = {}


def _split(seed: int) -> Any:
    from hashlearn.datasets import load_dataset
    from hashlearn.evaluation import apply_protocol

    if seed not in _SPLITS:
        _SPLITS[seed] = apply_protocol(load_dataset("mnist5k", verbose=False), "default", seed)
    return _SPLITS[seed]


def _scores(hasher: Any, split: Any) -> dict[str, float]:
    from hashlearn.experiments.selection import score_split

    inputs = {part: getattr(split, part).X for part in ("train", "validation", "query", "database")}
    tune = score_split(hasher, inputs, split, "validation", "train", {})["mAP"]
    test = score_split(hasher, inputs, split, "query", "database", {})["mAP"]
    return {"tune_score": float(tune), "test_mAP": float(test)}


def _run(task: dict[str, Any]) -> dict[str, Any]:
    import torch

    from hashlearn.hashers import create_hasher

    torch.set_num_threads(1)
    split = _split(task["seed"])
    params = dict(task["params"])
    if task["stage"] == "sweep":  # the grid's fits keep a constant rate whatever the default
        params.setdefault("lr_schedule", "constant")
    hasher = create_hasher(
        task["method"], n_bits=task["bits"], random_state=task["seed"], verbose=False, **params
    )
    supervised = task["method"] not in UNSUPERVISED
    y_train = split.train.y if supervised else None
    start = time.perf_counter()
    if task["stage"] == "sweep":  # validation labels only rank the validation part
        hasher.fit(split.train.X, y_train, X_val=split.validation.X, y_val=split.validation.y)
    else:  # as a user fits it: nothing but the training data
        hasher.fit(split.train.X, y_train)
    fit_s = time.perf_counter() - start
    row = {**task, **_scores(hasher, split), "fit_s": round(fit_s, 2)}
    row["best_epoch"] = hasher.best_epoch_
    row["val_curve"] = [r["val_mAP"] for r in hasher.history_]
    row["epochs_run"] = len(hasher.history_)
    return row


def _key(row: dict[str, Any]) -> str:
    return json.dumps([row["stage"], row["method"], row["bits"], row["seed"], row["params"]])


def _tasks(args: argparse.Namespace) -> list[dict[str, Any]]:
    methods = args.methods.split(",")
    tasks = []
    for seed in SEEDS[: args.seeds]:
        for bits in (int(b) for b in args.bits.split(",")):
            for method in methods:
                if args.stage == "sweep":
                    for lr in args.lrs.split(","):
                        params = {
                            "lr": float(lr),
                            "epochs": args.max_epochs,
                            **json.loads(args.params),
                        }
                        tasks.append(
                            dict(stage="sweep", method=method, bits=bits, seed=seed, params=params)
                        )
                else:
                    params = json.loads(args.params)
                    tasks.append(
                        dict(stage="check", method=method, bits=bits, seed=seed, params=params)
                    )
    return tasks


def _execute(args: argparse.Namespace) -> None:
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {_key(json.loads(line)) for line in out.read_text().splitlines() if line.strip()}
    todo = [task for task in _tasks(args) if _key(task) not in done]
    print(f"{platform.processor() or platform.machine()}: {len(todo)} fits to run", flush=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) as pool, out.open("a") as handle:
        for row in pool.imap_unordered(_run, todo):
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            print(
                f"{row['method']:>10} {row['bits']:>2} bits seed {row['seed']} {row['params']}: "
                f"tune {row['tune_score']:.4f} test {row['test_mAP']:.4f} "
                f"({row['fit_s']:.0f} s, best epoch {row['best_epoch']})",
                flush=True,
            )


def _rows(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _tune_choice(trials: list[dict[str, Any]], lrs: list[float]) -> dict[str, Any]:
    """What ``hashlearn tune --grid lr=...`` keeps for one seed: the first of the highest tune
    scores in grid order (each fit at its best validation epoch)."""
    ordered = sorted(
        (r for r in trials if r["params"]["lr"] in lrs), key=lambda r: r["params"]["lr"]
    )
    return max(ordered, key=lambda r: r["tune_score"])


def _is_default(row: dict[str, Any]) -> bool:
    """Whether a check fit ran with its method's defaults: nothing given, or exactly the values
    the method takes by default (candidates measured before they became the defaults)."""
    from hashlearn.hashers import create_hasher

    if not row["params"]:
        return True
    hasher = create_hasher(row["method"])
    named = {"lr", "epochs", "lr_schedule"} | set(type(hasher).defaults)
    given = {k: v for k, v in row["params"].items() if k != "loss_params"}
    return (
        named <= set(row["params"])
        and all(value == getattr(hasher, key) for key, value in given.items())
        and _default_loss(row, hasher)
    )


def _default_loss(row: dict[str, Any], hasher: Any) -> bool:
    """Whether the loss parameters a fit of ``hasher``'s method names are those its loss takes
    by default (rows of a loss whose default changed name the value they ran with)."""
    loss = hasher._make_loss()
    return all(
        getattr(loss, key) == value for key, value in row["params"].get("loss_params", {}).items()
    )


def _in_tune_grid(row: dict[str, Any]) -> bool:
    """Whether a sweep fit ran at its method's present weight averaging (``swa``) and loss
    parameters, which ``tune --grid lr=...`` keeps at the defaults beside the grid."""
    from hashlearn.hashers import create_hasher

    hasher = create_hasher(row["method"])
    return row["params"].get("swa", 0.0) == hasher.swa and _default_loss(row, hasher)


def _report(args: argparse.Namespace) -> None:
    sweep = [r for r in _rows(args.sweep) if _in_tune_grid(r)]
    check = [r for r in (_rows(args.check) if args.check else []) if _is_default(r)]
    epochs_grid = [int(e) for e in args.epochs.split(",")]
    seeds = sorted({r["seed"] for r in sweep})
    lrs = sorted(  # the grid: learning rates fitted for every method, length and seed swept
        lr
        for lr in {r["params"]["lr"] for r in sweep}
        if all(
            any(r["params"]["lr"] == lr and r["method"] == m and r["seed"] == s for r in sweep)
            for m in {r["method"] for r in sweep}
            for s in seeds
        )
    )
    print(f"grid: lr in {lrs}, seeds {seeds}")
    print(
        "Last-epoch validation mAP (leave-one-out, 500 validation images), mean over bits and seeds"
    )
    for method in METHODS:
        rows = [r for r in sweep if r["method"] == method and r["params"]["lr"] in lrs]
        if not rows:
            continue
        cells = []
        for lr in lrs:
            for epochs in epochs_grid:
                values = [
                    r["val_curve"][epochs - 1]
                    for r in rows
                    if r["params"]["lr"] == lr and len(r["val_curve"]) >= epochs
                ]
                if values:
                    cells.append((statistics.mean(values), lr, epochs, len(values)))
        best = max(cells)
        text = "  ".join(f"lr {lr:g} e{e}: {m:.4f}" for m, lr, e, _ in cells)
        print(
            f"{method:>10}: {text}\n{'':>10}  best lr {best[1]:g}, {best[2]} epochs ({best[0]:.4f})"
        )
    if not check:
        return
    print(
        "\n| method | bits | default: test mAP | tune's choice: test mAP | gap | "
        "default: tune score | tune's choice: tune score |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in METHODS:
        for bits in sorted({r["bits"] for r in check}):
            mine = [r for r in check if r["method"] == method and r["bits"] == bits]
            chosen = [
                _tune_choice(trials, lrs)
                for seed in seeds
                if (
                    trials := [
                        r
                        for r in sweep
                        if (r["method"], r["bits"], r["seed"]) == (method, bits, seed)
                    ]
                )
            ]
            if not mine:
                continue
            default = [r["test_mAP"] for r in mine]
            if len(chosen) == len(seeds) == len(mine):
                tuned = [r["test_mAP"] for r in chosen]
                picks = "/".join(f"{r['params']['lr']:g}" for r in chosen)
                cells = (
                    f"{_mean_sd(tuned)} (lr {picks}) | "
                    f"{statistics.mean(tuned) - statistics.mean(default):+.4f}",
                    _mean_sd([r["tune_score"] for r in chosen]),
                )
            else:
                cells = ("- | -", "-")
            print(
                f"| {method} | {bits} | {_mean_sd(default)} | {cells[0]} | "
                f"{_mean_sd([r['tune_score'] for r in mine])} | {cells[1]} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    for name in ("sweep", "check"):
        stage = sub.add_parser(name)
        stage.add_argument("--out", required=True)
        stage.add_argument("--methods", default=",".join(METHODS))
        stage.add_argument("--seeds", type=int, default=len(SEEDS))
        stage.add_argument("--bits", default=",".join(map(str, BITS)))
        stage.add_argument("--workers", type=int, default=2)
        stage.add_argument("--lrs", default="0.001,0.003,0.01")
        stage.add_argument("--max-epochs", type=int, default=50)
        stage.add_argument(
            "--params",
            default="{}",
            help="JSON of arguments given beside n_bits (sweep: beside lr and epochs)",
        )
    report = sub.add_parser("report")
    report.add_argument("--sweep", required=True)
    report.add_argument("--check")
    report.add_argument("--epochs", default="20,30,40,50")
    args = parser.parse_args()
    if args.stage == "report":
        _report(args)
    else:
        _execute(args)


if __name__ == "__main__":
    main()
