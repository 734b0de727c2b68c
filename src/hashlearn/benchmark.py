"""Methods x bits x seeds benchmarks under a named retrieval protocol.

For every seed the dataset is split by the protocol with that seed (queries held out; train and
validation drawn as the protocol says, validation always carved from train), the feature extractor
is fitted on the train part, every hasher is fitted on the train features (with labels when
supervised; deep hashers select their epoch on the validation part) and seeded with the same seed,
and the query codes are evaluated against the database codes. Nothing is selected on the query set.
Deep hashers take the images themselves, whatever the feature extractor.

A run is described by a :class:`BenchmarkConfig`, built from keyword arguments or a YAML file::

    dataset: mnist5k
    protocol: default          # see hashlearn.evaluation.list_protocols()
    features: hog
    methods:
      - lsh                                   # a hasher name with default parameters
      - {method: lsh, label: lsh-8-tables, tables: 8}
      - {method: dsh, label: dsh-a0.005, params: {alpha: 0.005, epochs: 20}}
      - {method: ksh, grid: {n_anchors: [100, 300, 1000]}}   # chosen on validation, per run
    bits: [8, 12, 16]
    seeds: 3                   # 0, 1, 2 (or a list)
    metrics: {ks: [10, 100], map_at: [10], ndcg_at: [10], radius: 2, ties: position}
    radius_curve: 10           # largest radius of the hash-table curve (0: none)
    models_dir: models/        # save every fitted hasher (one table) here, for hashlearn report
    name: lsh-vs-dsh           # results file name (default benchmark-DATASET-FEATURES)
    baselines: [euclidean]     # exact search on the features, no hashing: a reference row

``grid`` lists parameter values to choose from: for every seed and code length, each
combination is fitted on the train part and scored by ``select_by`` (default ``mAP``) of the
validation part against the train part (:func:`hashlearn.tuning.select_params`); the chosen model
alone is evaluated on the queries, and its row records the choice and every trial.

``tables: L`` fits ``L`` hashers of ``n_bits`` each (seeds ``seed * 1000 + t``) and concatenates
their codes: the ranking by total Hamming distance is what a :class:`~hashlearn.index.MultiTableIndex`
over ``L`` tables returns when every candidate is checked.

The same config and seeds reproduce every metric exactly on CPU (timings differ).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hashlearn._io import atomic_write
from hashlearn._table import format_table
from hashlearn._validation import check_int
from hashlearn.exceptions import FileFormatError, InvalidInputError

SCHEMA_VERSION = 2
TIES = ("position", "average")
PROBE_BUDGET = 250_000  # largest number of buckets one query may probe in the radius curve


def metric_definitions(
    ks: Sequence[int], map_at: Sequence[int], ndcg_at: Sequence[int], radius: int | None, ties: str
) -> dict[str, str]:
    """One sentence per reported metric, as written into the results."""
    order = (
        "ties by database position"
        if ties == "position"
        else "tie-averaged (expected value over every order of items at equal distance)"
    )
    rank = (
        f"the database ranked by Hamming distance to the query, {order}; relevant = shares a label"
    )
    out = {"mAP": f"mean over queries of average precision over the full ranking ({rank})"}
    for k in map_at:
        out[f"mAP@{k}"] = (
            f"mean over queries of AP over the top {k}: sum of P@i at relevant ranks i <= {k}, "
            f"divided by the relevant items in the top {k} (0 when none)"
        )
    for k in ks:
        out[f"P@{k}"] = f"mean share of relevant items among the top {k}"
        out[f"R@{k}"] = f"mean share of the query's relevant items found in the top {k}"
    for k in ndcg_at:
        out[f"NDCG@{k}"] = (
            f"mean DCG@{k} / ideal DCG@{k}, gain 2^s - 1 for an item sharing s labels, "
            "discount 1 / log2(rank + 1)"
        )
    if radius is not None:
        out[f"P@r{radius}"] = (
            f"mean precision of the items within Hamming radius {radius} (0 when there are none)"
        )
        out[f"R@r{radius}"] = f"mean recall of the items within Hamming radius {radius}"
    out["query_ms"] = "mean milliseconds per query of an exact k-NN search (LinearIndex, k = 100)"
    out["fit_s"] = "seconds to fit the hasher on the train part (features excluded)"
    out["encode_ms"] = "milliseconds per item to encode the database"
    out["curves.pr"] = (
        "precision and recall within each Hamming radius r = 0 .. n_bits (means over queries)"
    )
    out["curves.radius"] = (
        "hash-table lookup within radius r: mean P@10 of the first 10 candidates by Hamming "
        "distance (missing ones count as misses), mean ms per query, mean candidates"
    )
    return out


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodSpec:
    """One benchmarked method: a hasher name, its parameters, a label, and the number of tables."""

    method: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    tables: int = 1
    grid: dict[str, list[Any]] = field(default_factory=dict)  # chosen on validation, per run


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything a benchmark run depends on (see the module docstring for the YAML form)."""

    dataset: str
    methods: tuple[MethodSpec, ...]
    bits: tuple[int, ...]
    seeds: tuple[int, ...]
    protocol: str = "default"
    data_dir: str | None = None
    features: str = "pixels"
    ks: tuple[int, ...] = (10, 100)
    map_at: tuple[int, ...] = (10,)
    ndcg_at: tuple[int, ...] = (10,)
    radius: int | None = 2
    ties: str = "position"
    radius_curve: int = 10
    n_validation: int | float | None = None
    name: str | None = None  # file name of the results (the command line's --name wins)
    models_dir: str | None = None  # save each fitted single-table hasher here
    select_by: str = "mAP"  # validation metric that chooses among a method's grid
    baselines: tuple[str, ...] = ()  # exact search on the features: "euclidean", "cosine"

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["methods"] = [asdict(m) for m in self.methods]
        return document


def _method_spec(
    entry: Any,
    method_params: dict[str, dict[str, Any]],
    method_grids: dict[str, dict[str, list[Any]]] | None = None,
) -> MethodSpec:
    if isinstance(entry, MethodSpec):
        return entry
    if isinstance(entry, str):
        entry = {"method": entry}
    if not isinstance(entry, dict) or "method" not in entry:
        raise InvalidInputError(
            f"a method entry must be a hasher name or a mapping with 'method', got {entry!r}"
        )
    unknown = set(entry) - {"method", "label", "params", "tables", "grid"}
    if unknown:
        raise InvalidInputError(
            f"unknown keys {sorted(unknown)} in method entry {entry!r}; "
            "allowed: method, label, params, tables, grid"
        )
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInputError(
            f"'params' of {entry['method']!r} must be a mapping, got {params!r}"
        )
    tables = check_int(entry.get("tables", 1), "tables", minimum=1, maximum=64)
    shared_grid = (method_grids or {}).get(str(entry["method"]), {})
    own_grid = entry.get("grid") or {}
    for where, value in (("method_grids", shared_grid), ("grid", own_grid)):
        if not isinstance(value, dict):
            raise InvalidInputError(
                f"'{where}' of {entry['method']!r} must map parameter names to lists of values, "
                f"got {value!r}"
            )
    grid = {**shared_grid, **own_grid}
    if grid:
        from hashlearn.tuning import parameter_grid

        parameter_grid(grid)  # a non-empty list of values per name
        if tables > 1:
            raise InvalidInputError(
                f"'grid' of {entry['method']!r} needs one table; choose the parameters of one "
                "table, then benchmark the tables with them"
            )
    return MethodSpec(
        str(entry["method"]),
        str(entry.get("label") or entry["method"]),
        {**method_params.get(str(entry["method"]), {}), **params},
        tables,
        {str(name): list(values) for name, values in grid.items()},
    )


# Options given as sequences (a single string is a one-item sequence).
_SEQUENCES = ("ks", "map_at", "ndcg_at", "baselines")


def make_config(
    dataset: str,
    methods: Sequence[Any],
    bits: Sequence[int],
    seeds: Sequence[int] | int,
    *,
    method_params: dict[str, dict[str, Any]] | None = None,
    method_grids: dict[str, dict[str, list[Any]]] | None = None,
    **options: Any,
) -> BenchmarkConfig:
    """Check and normalise a configuration; unknown hashers fail here, before any work.

    ``methods`` holds hasher names or mappings ``{method, label, params, tables, grid}``;
    ``method_params`` adds parameters and ``method_grids`` grids per hasher name; ``seeds`` is a
    list or a count (``n`` -> 0 .. n-1); ``options`` are the other :class:`BenchmarkConfig`
    fields.
    """
    from hashlearn.evaluation import get_protocol
    from hashlearn.hashers import get_hasher_class

    if not methods or not bits:
        raise InvalidInputError("methods and bits must each name at least one value")
    if method_grids is not None and not isinstance(method_grids, dict):
        raise InvalidInputError(
            f"method_grids must map method names to grids, got {method_grids!r}"
        )
    specs = tuple(_method_spec(m, method_params or {}, method_grids) for m in methods)
    stray = sorted(set(method_grids or {}) - {s.method for s in specs})
    if stray:
        raise InvalidInputError(
            f"grid for {', '.join(map(repr, stray))}, which is not among the methods "
            f"({', '.join(s.method for s in specs)})"
        )
    for spec in specs:
        allowed = set(get_hasher_class(spec.method)._param_names())  # UnknownNameError first
        given = set(spec.params) | set(spec.grid)
        reserved = sorted(given & {"n_bits", "random_state"})
        if reserved:
            raise InvalidInputError(
                f"{', '.join(reserved)} of {spec.method!r} come from the benchmark's bits and "
                "seeds, not from its parameters or grid"
            )
        unknown_params = sorted(given - allowed)
        if unknown_params:
            raise InvalidInputError(
                f"{spec.method!r} has no parameter(s) {', '.join(unknown_params)}; its "
                f"parameters are: {', '.join(sorted(allowed - {'n_bits', 'random_state'}))}"
            )
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise InvalidInputError(f"method labels must be unique, got {labels}")
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(check_int(seeds, "seeds", minimum=1, maximum=1000)))
    if not seeds:
        raise InvalidInputError("seeds must name at least one seed")
    unknown = set(options) - set(BenchmarkConfig.__dataclass_fields__)
    if unknown:
        raise InvalidInputError(f"unknown benchmark options {sorted(unknown)}")
    config = BenchmarkConfig(
        dataset=str(dataset),
        methods=specs,
        bits=tuple(check_int(b, "bits", minimum=1, maximum=4096) for b in bits),
        seeds=tuple(check_int(s, "seed", minimum=0) for s in seeds),
        **{
            k: (tuple([v] if isinstance(v, str) else v) if k in _SEQUENCES else v)
            for k, v in options.items()
        },
    )
    get_protocol(config.protocol)
    if config.ties not in TIES:
        raise InvalidInputError(f"ties must be 'position' or 'average', got {config.ties!r}")
    check_int(config.radius_curve, "radius_curve", minimum=0, maximum=64)
    from hashlearn.evaluation import FEATURE_METRICS

    unknown_baselines = sorted(set(config.baselines) - set(FEATURE_METRICS))
    if unknown_baselines:
        raise InvalidInputError(
            f"unknown baseline(s) {', '.join(unknown_baselines)}; available: "
            f"{', '.join(FEATURE_METRICS)}"
        )
    if config.baselines and config.ties != "position":
        raise InvalidInputError(
            "baselines rank items at equal distance by database position; they cannot be "
            f"compared with ties={config.ties!r} rows: use ties: position"
        )
    if any(spec.grid for spec in config.methods):
        from hashlearn.tuning import _metric_cutoffs

        _metric_cutoffs(config.select_by)
        if config.n_validation == 0:
            raise InvalidInputError(
                "a grid is chosen on the validation part, and n_validation: 0 leaves none"
            )
    return config


def load_config(path: str | os.PathLike[str], **overrides: Any) -> BenchmarkConfig:
    """Read a YAML benchmark configuration (see the module docstring); ``overrides`` win."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read benchmark config {os.fspath(path)!r}: {exc}"
        ) from None
    except yaml.YAMLError as exc:
        raise FileFormatError(f"{os.fspath(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise FileFormatError(f"{os.fspath(path)!r} must hold a mapping of settings")
    document = {**document, **{k: v for k, v in overrides.items() if v is not None}}
    metrics = document.pop("metrics", None) or {}
    if not isinstance(metrics, dict):
        raise FileFormatError(f"'metrics' in {os.fspath(path)!r} must be a mapping")
    document.update(metrics)
    for key in ("dataset", "methods", "bits"):
        if key not in document:
            raise FileFormatError(f"{os.fspath(path)!r} does not set {key!r}")
    return make_config(
        document.pop("dataset"),
        document.pop("methods"),
        document.pop("bits"),
        document.pop("seeds", 1),
        method_params=document.pop("method_params", None),
        method_grids=document.pop("method_grids", None),
        **document,
    )


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkRow:
    """The results of one (method, bits, seed)."""

    dataset: str
    protocol: str
    manifest: str
    features: str
    method: str
    hasher: str
    tables: int
    n_bits: int
    seed: int
    metrics: dict[str, float]
    fit_s: float
    encode_ms: float
    query_ms: float
    sizes: dict[str, int] = field(default_factory=dict)
    model_path: str = ""
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict, repr=False)
    chosen: dict[str, Any] = field(default_factory=dict)  # the grid's choice, if any
    trials: list[dict[str, Any]] = field(default_factory=list, repr=False)  # its candidates

    @property
    def mAP(self) -> float:
        return self.metrics["mAP"]


def _max_probe_radius(n_bits: int, largest: int) -> int:
    """Largest radius <= ``largest`` whose Hamming ball holds at most PROBE_BUDGET codes."""
    total, radius = 0, -1
    while radius < min(largest, n_bits):
        total += math.comb(n_bits, radius + 1)
        if total > PROBE_BUDGET:
            break
        radius += 1
    return max(radius, 0)


def radius_curve(
    q_codes: np.ndarray,
    q_labels: np.ndarray,
    db_codes: np.ndarray,
    db_labels: np.ndarray,
    n_bits: int,
    largest: int,
) -> dict[str, list[float]]:
    """P@10, ms per query and candidates of an exact hash-table lookup within each radius."""
    from hashlearn.index import HashTableIndex

    index = HashTableIndex(n_bits)
    index.add(db_codes)
    index.range_search(q_codes[:1], 1)  # compiled and built outside the measurement
    out: dict[str, list[float]] = {"radius": [], "P@10": [], "query_ms": [], "candidates": []}
    for r in range(_max_probe_radius(n_bits, largest) + 1):
        start = time.perf_counter()
        lims, distances, ids = index.range_search(q_codes, r)
        ms = 1000 * (time.perf_counter() - start) / len(q_codes)
        hits = np.zeros(len(q_codes))
        for q in range(len(q_codes)):
            part = slice(lims[q], lims[q + 1])
            top = ids[part][np.lexsort((ids[part], distances[part]))[:10]]
            hits[q] = (
                np.count_nonzero(db_labels[top] == q_labels[q])
                if q_labels.ndim == 1
                else (np.count_nonzero((db_labels[top] & q_labels[q]).any(axis=1)))
            )
        out["radius"].append(r)
        out["P@10"].append(float(hits.mean() / 10))
        out["query_ms"].append(ms)
        out["candidates"].append(float(np.diff(lims).mean()))
    return out


def _query_ms(q_codes: np.ndarray, db_codes: np.ndarray, n_bits: int) -> float:
    from hashlearn.index import LinearIndex

    index = LinearIndex(n_bits)
    index.add(db_codes)
    index.search(q_codes[:1], 1)  # compiled outside the measurement
    start = time.perf_counter()
    index.search(q_codes, min(100, len(db_codes)))
    return 1000 * (time.perf_counter() - start) / len(q_codes)


def _fit_encode(spec: MethodSpec, n_bits: int, seed: int, inputs: dict, split: Any):
    """Fit the method's hasher(s); return database codes, query codes, code bits, fit seconds,
    encode seconds and the hasher (None for several tables)."""
    from hashlearn.index import concatenate_codes
    from hashlearn.tuning import fit_timed

    db_parts, q_parts = [], []
    fit_s = encode_s = 0.0
    for table in range(spec.tables):
        table_seed = seed if spec.tables == 1 else seed * 1000 + table
        params = {**spec.params, "random_state": table_seed}
        hasher, seconds = fit_timed(spec.method, n_bits, params, inputs, split)
        fit_s += seconds
        start = time.perf_counter()
        db_parts.append(hasher.encode(inputs["database"]))
        encode_s += time.perf_counter() - start
        q_parts.append(hasher.encode(inputs["query"]))
    if spec.tables == 1:
        return db_parts[0], q_parts[0], n_bits, fit_s, encode_s, hasher
    return (
        concatenate_codes(db_parts, n_bits),
        concatenate_codes(q_parts, n_bits),
        n_bits * spec.tables,
        fit_s,
        encode_s,
        None,
    )


def _select_encode(
    spec: MethodSpec,
    n_bits: int,
    seed: int,
    inputs: dict,
    split: Any,
    select_by: str,
) -> tuple[np.ndarray, np.ndarray, float, float, Any, dict[str, Any], list[dict[str, Any]]]:
    """Choose among ``spec.grid`` on the validation part; encode the database and queries with
    the chosen hasher. Returns the codes, its fit and encode seconds, the hasher, its grid
    values and every trial."""
    from hashlearn.tuning import parameter_grid, select_params

    shared = {**spec.params, "random_state": seed}
    trials, chosen, hasher = select_params(
        spec.method, n_bits, parameter_grid(spec.grid), shared, inputs, split, select_by
    )
    start = time.perf_counter()
    db_codes = hasher.encode(inputs["database"])
    encode_s = time.perf_counter() - start
    q_codes = hasher.encode(inputs["query"])
    return (
        db_codes,
        q_codes,
        chosen.fit_s,
        encode_s,
        hasher,
        dict(chosen.params),
        [asdict(t) for t in trials],
    )


def measure_run(
    config: BenchmarkConfig,
    split: Any,
    q_codes: np.ndarray,
    db_codes: np.ndarray,
    *,
    method: str,
    hasher: str,
    n_bits: int,
    seed: int,
    features: str,
    fit_s: float,
    encode_s: float,
    tables: int = 1,
    code_bits: int | None = None,
    model_path: str = "",
) -> BenchmarkRow:
    """Evaluate one fitted method's codes of ``split`` as ``config`` says: the metrics, the PR
    curve, the hash-table radius curve and the k-NN query time, as one :class:`BenchmarkRow`."""
    from hashlearn.evaluation import evaluate_retrieval

    code_bits = n_bits if code_bits is None else code_bits
    evaluation = evaluate_retrieval(
        q_codes,
        split.query.y,
        db_codes,
        split.database.y,
        ks=config.ks,
        map_at=config.map_at,
        ndcg_at=config.ndcg_at,
        radius=config.radius,
        ties=config.ties,
    )
    pr = {
        k: evaluation.pr_curve[k][: code_bits + 1].tolist()
        for k in ("radius", "precision", "recall")
    }
    curves = {"pr": pr}
    if config.radius_curve:
        curves["radius"] = radius_curve(
            q_codes, split.query.y, db_codes, split.database.y, code_bits, config.radius_curve
        )
    return BenchmarkRow(
        dataset=config.dataset,
        protocol=config.protocol,
        manifest=split.manifest,
        features=features,
        method=method,
        hasher=hasher,
        tables=tables,
        n_bits=n_bits,
        seed=int(seed),
        metrics=evaluation.metrics,
        fit_s=fit_s,
        encode_ms=1000 * encode_s / len(db_codes),
        query_ms=_query_ms(q_codes, db_codes, code_bits),
        sizes=split.sizes(),
        model_path=model_path,
        curves=curves,
    )


def run_config(
    config: BenchmarkConfig,
    *,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[BenchmarkRow]:
    """Run every (seed, method, bits) of ``config``; one row each, in that order."""
    from hashlearn.datasets import load_dataset
    from hashlearn.evaluation import apply_protocol
    from hashlearn.features import create_features
    from hashlearn.hashers import FeatureHasher, get_hasher_class

    data = load_dataset(config.dataset, data_dir=config.data_dir, verbose=verbose)
    rows: list[BenchmarkRow] = []
    bar = tqdm(
        total=(len(config.methods) + len(config.baselines)) * len(config.bits) * len(config.seeds),
        desc="benchmark",
        unit="run",
        disable=not verbose,
    )
    for seed in config.seeds:
        overrides = {} if config.n_validation is None else {"n_validation": config.n_validation}
        split = apply_protocol(data, config.protocol, seed, **overrides)
        parts = ("train", "query", "database")
        if any(spec.grid for spec in config.methods):  # grids are chosen on validation
            parts += ("validation",)
        images = {part: getattr(split, part).X for part in parts}
        extractor = None
        if config.features == "pixels":
            # the images as they are: shallow hashers flatten them, and keep their shape in the
            # model files for the service
            feats = images
        else:
            extractor = create_features(config.features)
            extractor.fit(split.train.X)
            feats = {part: extractor.transform(X) for part, X in images.items()}
        for spec in config.methods:
            deep = get_hasher_class(spec.method).input_kind == "images"
            inputs = images if deep else feats
            for n_bits in config.bits:
                chosen: dict[str, Any] = {}
                trials: list[dict[str, Any]] = []
                if spec.grid:
                    db_codes, q_codes, fit_s, encode_s, hasher, chosen, trials = _select_encode(
                        spec, n_bits, seed, inputs, split, config.select_by
                    )
                    code_bits = n_bits
                else:
                    db_codes, q_codes, code_bits, fit_s, encode_s, hasher = _fit_encode(
                        spec, n_bits, seed, inputs, split
                    )
                model_path = ""
                if config.models_dir and hasher is not None:
                    os.makedirs(config.models_dir, exist_ok=True)
                    model_path = os.path.join(
                        config.models_dir, f"{spec.label}-{n_bits}bits-seed{seed}.safetensors"
                    )
                    # with its extractor, a shallow model's file encodes images
                    shallow_with_features = extractor is not None and not deep
                    model = FeatureHasher(extractor, hasher) if shallow_with_features else hasher
                    model.save(model_path)
                row = measure_run(
                    config,
                    split,
                    q_codes,
                    db_codes,
                    method=spec.label,
                    hasher=spec.method,
                    tables=spec.tables,
                    n_bits=n_bits,
                    code_bits=code_bits,
                    seed=seed,
                    features="images" if deep else config.features,
                    fit_s=fit_s,
                    encode_s=encode_s,
                    model_path=model_path,
                )
                if spec.grid:
                    row = replace(row, chosen=chosen, trials=trials)
                rows.append(row)
                if log:
                    shown = "  ".join(
                        f"{k} {v:.4f}" for k, v in row.metrics.items() if not k.startswith("R")
                    )
                    log(
                        f"{spec.label:10s} {n_bits:4d} bits seed {seed}: {shown}  fit {fit_s:.1f} s"
                    )
                bar.update()
        for metric in config.baselines:
            for row in _baseline_rows(config, split, feats, metric, seed):
                rows.append(row)
                bar.update()
    bar.close()
    return rows


def _baseline_rows(
    config: BenchmarkConfig, split: Any, feats: dict[str, Any], metric: str, seed: int
) -> list[BenchmarkRow]:
    """Exact ``metric`` search on the features, one row per code length (the same figures in
    each: the reference the methods' rows are read against)."""
    from hashlearn.evaluation import evaluate_features

    start = time.perf_counter()
    metrics = evaluate_features(
        feats["query"],
        split.query.y,
        feats["database"],
        split.database.y,
        metric=metric,
        ks=config.ks,
        map_at=config.map_at,
    )
    query_ms = 1000 * (time.perf_counter() - start) / len(split.query)
    return [
        BenchmarkRow(
            dataset=config.dataset,
            protocol=config.protocol,
            manifest=split.manifest,
            features=config.features,
            method=f"exact-{metric}",
            hasher="",
            tables=0,
            n_bits=n_bits,
            seed=int(seed),
            metrics=metrics,
            fit_s=0.0,
            encode_ms=0.0,
            query_ms=query_ms,
            sizes=split.sizes(),
        )
        for n_bits in config.bits
    ]


def run_benchmark(
    dataset: str,
    methods: Sequence[Any],
    bits: Sequence[int],
    seeds: Sequence[int] | int,
    *,
    features: str = "pixels",
    method_params: dict[str, dict[str, Any]] | None = None,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> list[BenchmarkRow]:
    """Build a :class:`BenchmarkConfig` (see :func:`make_config`) and run it."""
    config = make_config(
        dataset, methods, bits, seeds, method_params=method_params, features=features, **options
    )
    return run_config(config, verbose=verbose, log=log)


# --------------------------------------------------------------------------------------------
# tables and files
# --------------------------------------------------------------------------------------------


def _value(row: BenchmarkRow, metric: str) -> float:
    if metric in row.metrics:
        return row.metrics[metric]
    if metric in ("fit_s", "encode_ms", "query_ms"):
        return float(getattr(row, metric))
    raise InvalidInputError(
        f"unknown metric {metric!r}; the rows have {', '.join(row.metrics)}, fit_s, encode_ms, query_ms"
    )


def summarize(rows: Sequence[BenchmarkRow], metric: str = "mAP") -> str:
    """Methods x bits table of ``metric`` as mean ± standard deviation over seeds."""
    methods = list(dict.fromkeys(r.method for r in rows))
    bits = sorted({r.n_bits for r in rows})
    table = []
    for method in methods:
        line: list[Any] = [method]
        for b in bits:
            values = [_value(r, metric) for r in rows if r.method == method and r.n_bits == b]
            line.append(_mean_std(values) if values else "-")
        table.append(line)
    return format_table([metric] + [f"{b} bits" for b in bits], table)


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    from hashlearn._version import __version__

    return {
        "hashlearn": __version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def write_results(
    rows: Sequence[BenchmarkRow],
    csv_path: str,
    json_path: str,
    config: BenchmarkConfig | dict[str, Any],
    *,
    total_s: float | None = None,
) -> None:
    """Write the rows as CSV (one column per metric) and, with the configuration, protocol,
    metric definitions, versions and timings, as JSON (schema 2)."""
    if not rows:
        raise InvalidInputError("no benchmark rows to write")
    metric_names = list(dict.fromkeys(k for r in rows for k in r.metrics))
    fixed = [
        f
        for f in BenchmarkRow.__dataclass_fields__
        if f not in ("metrics", "curves", "sizes", "trials")
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fixed + metric_names)
    for row in rows:
        cells = [getattr(row, f) for f in fixed]
        cells[fixed.index("chosen")] = json.dumps(row.chosen) if row.chosen else ""
        writer.writerow(cells + [row.metrics.get(m, "") for m in metric_names])
    with atomic_write(csv_path) as handle:
        handle.write(buffer.getvalue().encode())

    config_dict = config.to_dict() if isinstance(config, BenchmarkConfig) else dict(config)
    first = rows[0]
    definitions = metric_definitions(
        config_dict.get("ks", ()),
        config_dict.get("map_at", ()),
        config_dict.get("ndcg_at", ()),
        config_dict.get("radius"),
        config_dict.get("ties", "position"),
    )
    document = {
        "schema": SCHEMA_VERSION,
        "config": config_dict,
        "protocol": {
            "name": first.protocol,
            "dataset": first.dataset,
            "manifest": {str(r.seed): r.manifest for r in rows},
            "sizes": first.sizes,
        },
        "metrics": definitions,
        "versions": _versions(),
        "timings": {"total_s": total_s},
        "results": [asdict(r) for r in rows],
    }
    with atomic_write(json_path) as handle:
        handle.write(json.dumps(document, indent=2).encode())
