"""``hashlearn benchmark``, ``tune`` and ``report``: measured comparisons, choices on validation
data, and the HTML report of their results."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hashlearn.cli._args import (
    add_deprecated_alias,
    add_quiet,
    count_or_fraction,
    parse_grid,
    parse_param,
    require_files,
)
from hashlearn.exceptions import InvalidInputError
from hashlearn.experiments.config import benchmark_config
from hashlearn.experiments.methods import expand_methods, method_grids_from, method_params_from
from hashlearn.experiments.results import format_benchmark, save_results
from hashlearn.experiments.run import run_config
from hashlearn.experiments.tuning import tune, write_tune_result

__all__ = ["cmd_benchmark", "cmd_report", "cmd_tune", "register"]


def register(sub: Any) -> None:
    """Add ``benchmark``, ``tune`` and ``report`` to the sub-commands ``sub``."""
    _register_benchmark(sub)
    _register_tune(sub)
    _register_report(sub)


# -- benchmark -----------------------------------------------------------------------------------


def _register_benchmark(sub: Any) -> None:
    p = sub.add_parser(
        "benchmark",
        help="methods x bits x seeds: every retrieval metric under a named protocol",
        description="Fit and evaluate methods x bits x seeds. Settings come from --config (YAML) "
        "and/or flags; flags override the file.",
    )
    p.add_argument("--config", default=None, help="YAML file of benchmark settings")
    p.add_argument("--dataset", default=None, help="dataset name (default mnist5k)")
    p.add_argument("--protocol", default=None, help="retrieval protocol (default: default)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    _add_image_size(p)
    p.add_argument(
        "--features",
        default=None,
        help="feature extractor for shallow methods (pixels, hog, gist); default pixels",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated hashers, or 'shallow' (default) or 'all'",
    )
    p.add_argument(
        "--bits", default=None, help="comma-separated code lengths (default 8,12,16,32,64)"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds (0..n-1): split and hasher seeds (default 3)",
    )
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        metavar="METHOD.KEY=VALUE",
        help="hasher parameter, e.g. --param dsh.epochs=10; deep.KEY=VALUE sets it for every deep method (repeatable)",
    )
    p.add_argument(
        "--grid",
        type=parse_grid,
        action="append",
        metavar="METHOD.KEY=V1,V2,...",
        help="values of a parameter to choose from on the validation part, per seed and code "
        "length, e.g. --grid ksh.n_anchors=100,300 (repeatable)",
    )
    p.add_argument(
        "--select-by",
        default=None,
        help="validation metric that chooses among a grid: mAP, mAP@k, P@k, R@k, NDCG@k "
        "(default: mAP)",
    )
    p.add_argument(
        "--baselines",
        default=None,
        help="exact search on the features as reference rows: euclidean, cosine or both "
        "(comma-separated)",
    )
    p.add_argument("--ks", default=None, help="cut-offs of P@k and R@k (default 10,100)")
    p.add_argument("--map-at", default=None, help="cut-offs of mAP@k (default 10)")
    p.add_argument("--ndcg-at", default=None, help="cut-offs of NDCG@k (default 10)")
    p.add_argument(
        "--radius", type=int, default=None, help="Hamming radius of P@r and R@r (default 2)"
    )
    p.add_argument(
        "--ties",
        choices=("position", "average"),
        default=None,
        help="order of items at equal distance: database position (default) or tie-averaged",
    )
    p.add_argument(
        "--radius-curve",
        type=int,
        default=None,
        help="largest radius of the hash-table P@10 / query-time curve (default 10, 0: none)",
    )
    p.add_argument("--out", default="benchmark-results", help="folder for the CSV and JSON results")
    p.add_argument(
        "--save-models",
        default=None,
        metavar="DIR",
        help="save every fitted hasher to DIR/LABEL-BITSbits-seedSEED.safetensors (for hashlearn report)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="file name of the results, without suffix (default: benchmark-DATASET-FEATURES)",
    )
    add_quiet(p)
    p.set_defaults(func=cmd_benchmark)


def _int_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(f"expected comma-separated integers, got {text!r}") from None


def cmd_benchmark(args: argparse.Namespace) -> int:
    """``hashlearn benchmark``: run the configured grid, print the summaries, write the results."""
    require_files(args.config)
    methods = expand_methods(args.methods) if args.methods else None
    params = method_params_from(args.param or [], methods, what="--param")
    grids = method_grids_from(args.grid or [], what="--grid")
    config = benchmark_config(
        args.config or None,
        methods=methods,
        method_params=params,
        method_grids=grids,
        dataset=args.dataset,
        protocol=args.protocol,
        data_dir=args.data_dir,
        image_size=args.image_size,
        features=args.features,
        bits=_int_list(args.bits),
        seeds=args.seeds,
        ks=_int_list(args.ks),
        map_at=_int_list(args.map_at),
        ndcg_at=_int_list(args.ndcg_at),
        radius=args.radius,
        ties=args.ties,
        radius_curve=args.radius_curve,
        models_dir=args.save_models,
        select_by=args.select_by,
        baselines=args.baselines.split(",") if args.baselines else None,
    )
    start = time.perf_counter()
    rows = run_config(config, verbose=not args.quiet, log=None if args.quiet else print)
    total_s = time.perf_counter() - start
    print()
    print(format_benchmark(rows, config))
    csv_path, json_path = save_results(rows, config, args.out, name=args.name, total_s=total_s)
    print(f"results -> {csv_path}, {json_path} ({total_s:.0f} s)")
    return 0


# -- tune ----------------------------------------------------------------------------------------


def _register_tune(sub: Any) -> None:
    p = sub.add_parser(
        "tune",
        help="choose a method's parameters on the validation part, then test the choice once",
        description="Fit the method once per combination of --grid on the train part, score each "
        "by retrieval of the validation part (as queries) against the train part, keep the best, "
        "and only then measure it on the query set against the database.",
    )
    p.add_argument("--method", required=True, help="hasher name (see `hashlearn list`)")
    p.add_argument("--bits", type=int, default=32, help="code length (default: 32)")
    p.add_argument(
        "--grid",
        type=parse_grid,
        action="append",
        required=True,
        metavar="KEY=V1,V2,...",
        help="values to try, e.g. --grid n_anchors=100,300,1000 or --grid 'alpha=[0.1, 1]' "
        "(repeatable: every combination is fitted)",
    )
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="parameter shared by every fit, e.g. --param epochs=20 (repeatable)",
    )
    p.add_argument(
        "--select-by",
        default="mAP",
        metavar="METRIC",
        help="validation metric that chooses: mAP, mAP@k, P@k, R@k or NDCG@k (default: mAP)",
    )
    add_deprecated_alias(p, "--metric", "--select-by")
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--protocol", default="default", help="retrieval protocol (hashlearn list)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    _add_image_size(p)
    p.add_argument(
        "--features",
        default="pixels",
        help="feature extractor of shallow methods, e.g. hog or gist+l2-center (default: pixels)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of every fit")
    p.add_argument(
        "--n-validation",
        type=count_or_fraction,
        default=None,
        help="validation size carved from train: a count, or a fraction < 1 (protocol default)",
    )
    p.add_argument("--save-model", default=None, help="write the chosen model here (.safetensors)")
    p.add_argument("--out", default=None, help="write the trials and test figures here (.json)")
    add_quiet(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    """``hashlearn tune``: choose the parameters on the validation part, print the trials."""
    grid: dict[str, list[Any]] = {}
    for key, values in args.grid:
        grid.setdefault(key, []).extend(values)
    result = tune(
        args.dataset,
        args.method,
        args.bits,
        grid,
        params=dict(args.param or []),
        metric=args.select_by,
        protocol=args.protocol,
        features=args.features,
        seed=args.seed,
        n_validation=args.n_validation,
        data_dir=args.data_dir,
        image_size=args.image_size,
        verbose=not args.quiet,
    )
    sizes = result.sizes
    print(
        f"{args.method} at {args.bits} bits on {args.dataset} ({args.protocol} protocol, seed "
        f"{args.seed}, manifest {result.manifest}): {len(result.trials)} fits on the train part "
        f"({sizes['train']}), scored by {args.select_by} of the validation part ({sizes['validation']}"
        f" queries) against it"
    )
    print()
    print(result.table())
    print(f"\n{result.metric}: {result.definitions.get(result.metric, '')}")
    if args.save_model:
        result.model.save(args.save_model)
        print(f"chosen model -> {args.save_model}")
    if args.out:
        write_tune_result(result, args.out)
        print(f"trials -> {args.out}")
    return 0


# -- report --------------------------------------------------------------------------------------


def _add_image_size(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-size",
        metavar="HxW",
        default=None,
        help="with --dataset folder:DIR: resize every picture to this size (pictures of several "
        "sizes need it)",
    )


def _register_report(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="self-contained HTML report of benchmark results (and of a model's codes)"
    )
    p.add_argument("--results", required=True, help="results JSON written by `hashlearn benchmark`")
    p.add_argument(
        "--model",
        default=None,
        help="model file to show: t-SNE and UMAP maps of its codes, class codes, retrievals",
    )
    p.add_argument(
        "--robustness",
        metavar="FILE",
        default=None,
        help="near-duplicate robustness results to show (`hashlearn robustness --out FILE.json`)",
    )
    p.add_argument(
        "--dataset", default=None, help="dataset the model is shown on (default: the results')"
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="protocol that splits the dataset for the model's pictures (default: the results')",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of the sampling")
    p.add_argument(
        "--features",
        default="pixels",
        help="feature extractor of a shallow model (default: pixels)",
    )
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--out", required=True, help="HTML file to write; figures go to OUT_STEM_files/")
    add_quiet(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """``hashlearn report``: the HTML report of a results file."""
    from hashlearn.report import build_report  # imports matplotlib: not on every command's start

    require_files(args.results, args.model)

    out = build_report(
        args.results,
        args.out,
        model=args.model,
        dataset=args.dataset,
        protocol=args.protocol,
        seed=args.seed,
        features=args.features,
        title=args.title,
        robustness=args.robustness,
        verbose=not args.quiet,
    )
    print(f"report -> {out} (figures in {out.with_name(out.stem + '_files')})")
    return 0
