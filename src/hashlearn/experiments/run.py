"""Running a benchmark: methods x bits x seeds under a named retrieval protocol.

For every seed the dataset is split by the protocol with that seed (queries held out; train and
validation drawn as the protocol says, validation always carved from train), the feature extractor
is fitted on the train part, every hasher is fitted on the train features (with labels when
supervised; deep hashers select their epoch on the validation part) and seeded with the same seed,
and the query codes are evaluated against the database codes (:func:`measure_run`). Nothing is
selected on the query set. Deep hashers take the images themselves, whatever the feature
extractor. See :mod:`hashlearn.experiments.config` for what a configuration holds.

The same config and seeds reproduce every metric exactly on CPU (timings differ).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from hashlearn._progress import progress
from hashlearn.datasets import load_dataset
from hashlearn.evaluation import apply_protocol, evaluate_features, with_neighbour_relevance
from hashlearn.experiments.config import BenchmarkConfig, MethodSpec, make_config
from hashlearn.experiments.measure import measure_run
from hashlearn.experiments.results import BenchmarkRow
from hashlearn.experiments.selection import (
    check_unsupervised,
    fit_timed,
    parameter_grid,
    select_params,
)
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher, get_hasher_class
from hashlearn.index import concatenate_codes

__all__ = ["run_benchmark", "run_config"]


def _fit_encode(spec: MethodSpec, n_bits: int, seed: int, inputs: dict, split: Any):
    """Fit the method's hasher(s); return database codes, query codes, code bits, fit seconds,
    encode seconds and the hasher (None for several tables)."""
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


def run_config(
    config: BenchmarkConfig,
    *,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[BenchmarkRow]:
    """Run every (seed, method, bits) of ``config``; one row each, in that order."""
    data = load_dataset(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size, verbose=verbose
    )
    if not data.labelled:
        check_unsupervised([spec.method for spec in config.methods], data.name)
    rows: list[BenchmarkRow] = []
    bar = progress(
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
        if not split.labelled:  # relevant: the nearest items in the features the hashers read
            split = with_neighbour_relevance(split, feats)
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
