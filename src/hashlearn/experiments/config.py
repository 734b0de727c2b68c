"""What a benchmark runs: :class:`BenchmarkConfig`, from keyword arguments or a YAML file.

A run is described by a :class:`BenchmarkConfig`, built by :func:`make_config` or read by
:func:`load_config` from a YAML file::

    dataset: mnist5k
    protocol: default          # see hashlearn.evaluation.list_protocols()
    features: hog
    methods:
      - lsh                                   # a hasher name with default parameters
      - {method: lsh, label: lsh-8-tables, tables: 8}
      - {method: dsh, label: dsh-a0.005, params: {epochs: 20, loss_params: {alpha: 0.005}}}
      - {method: ksh, grid: {n_anchors: [100, 300, 1000]}}   # chosen on validation, per run
    bits: [8, 12, 16]
    seeds: 3                   # 0, 1, 2 (or a list)
    metrics: {ks: [10, 100], map_at: [10], ndcg_at: [10], radius: 2, ties: position,
              precision_convention: per-query}   # or pooled (SH / ITQ evaluation code)
    radius_curve: 10           # largest radius of the hash-table curve (0: none)
    models_dir: models/        # save every fitted hasher (one table) here, for hashlearn report
    name: lsh-vs-dsh           # results file name (default benchmark-DATASET-FEATURES)
    baselines: [euclidean]     # exact search on the features, no hashing: a reference row

``grid`` lists parameter values to choose from: for every seed and code length, each
combination is fitted on the train part and scored by ``select_by`` (default ``mAP``) of the
validation part against the train part (:func:`hashlearn.experiments.select_params`); the chosen
model alone is evaluated on the queries, and its row records the choice and every trial.

``tables: L`` fits ``L`` hashers of ``n_bits`` each (seeds ``seed * 1000 + t``) and concatenates
their codes: the ranking by total Hamming distance is what a :class:`~hashlearn.index.MultiTableIndex`
over ``L`` tables returns when every candidate is checked.

Everything is checked here, before any work: unknown hashers, parameters, protocols, baselines
and selection metrics fail when the configuration is made.

:func:`benchmark_config` is what ``hashlearn benchmark`` runs: a YAML file with settings over it,
or settings over the defaults (:data:`DEFAULT_DATASET`, the shallow methods,
:data:`DEFAULT_BITS`, :data:`DEFAULT_SEEDS` seeds). Methods may be named by group
(:func:`~hashlearn.experiments.methods.expand_methods`: ``"all"``, ``"shallow"``), and parameters
and grids given as ``METHOD.KEY`` settings (:mod:`hashlearn.experiments.methods`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.codes.metrics import check_precision_convention
from hashlearn.datasets import parse_image_size
from hashlearn.evaluation import FEATURE_METRICS, get_protocol
from hashlearn.evaluation.retrieval import TIES
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.experiments.methods import expand_methods
from hashlearn.experiments.selection import metric_cutoffs, parameter_grid
from hashlearn.hashers import get_hasher_class

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_DATASET",
    "DEFAULT_SEEDS",
    "BenchmarkConfig",
    "MethodSpec",
    "benchmark_config",
    "load_config",
    "make_config",
]

DEFAULT_DATASET = "mnist5k"
DEFAULT_BITS = (8, 12, 16, 32, 64)
DEFAULT_SEEDS = 3
"""What :func:`benchmark_config` runs without a file, when the settings do not say."""


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
    precision_convention: str = "per-query"  # P@r, R@r and curves.pr; see hashlearn.codes.metrics
    radius_curve: int = 10
    n_validation: int | float | None = None
    name: str | None = None  # file name of the results (the command line's --name wins)
    models_dir: str | None = None  # save each fitted single-table hasher here
    select_by: str = "mAP"  # validation metric that chooses among a method's grid
    baselines: tuple[str, ...] = ()  # exact search on the features: "euclidean", "cosine"
    image_size: str | None = None  # "HxW": resize the pictures of a folder: dataset

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


def _check_presets(spec: MethodSpec) -> None:
    """Preset names of a method's parameters and grid, checked now rather than when the method
    is first built, halfway through a run (InvalidInputError listing the method's presets)."""
    names = [spec.params["preset"]] if "preset" in spec.params else []
    names += list(spec.grid.get("preset", ()))
    names = [name for name in names if name is not None]
    if names:
        from hashlearn.hashers.deep.presets import get_preset  # only deep methods have presets

        for name in names:
            get_preset(get_hasher_class(spec.method), name)


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
        _check_presets(spec)
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
    if config.image_size is not None:
        parse_image_size(config.image_size)  # HxW, checked before any data is read
    if config.ties not in TIES:
        raise InvalidInputError(f"ties must be 'position' or 'average', got {config.ties!r}")
    check_precision_convention(config.precision_convention)
    check_int(config.radius_curve, "radius_curve", minimum=0, maximum=64)
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
        metric_cutoffs(config.select_by)
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


# -- what hashlearn benchmark runs ---------------------------------------------------------------


def benchmark_config(
    path: str | os.PathLike[str] | None = None,
    *,
    methods: str | Sequence[Any] | None = None,
    method_params: dict[str, dict[str, Any]] | None = None,
    method_grids: dict[str, dict[str, list[Any]]] | None = None,
    **options: Any,
) -> BenchmarkConfig:
    """The configuration ``hashlearn benchmark`` runs: a YAML file with settings over it, or, with
    no file, settings over the defaults.

    Settings that are None are not given. With ``path`` (:func:`load_config`) the given settings
    override the file's; the file's ``method_params`` and ``method_grids`` stand unless some are
    given (empty ones are not). Without it (:func:`make_config`): ``dataset``
    :data:`DEFAULT_DATASET`, ``methods`` the shallow ones (also when empty), ``bits``
    :data:`DEFAULT_BITS` and ``seeds`` :data:`DEFAULT_SEEDS` unless given. ``methods`` may name a
    group (:func:`expand_methods`); ``options`` are the other :class:`BenchmarkConfig` fields.

    >>> config = benchmark_config(methods="lsh,itq", bits=[16], seeds=1)  # doctest: +SKIP
    >>> config.dataset, [m.method for m in config.methods]  # doctest: +SKIP
    ('mnist5k', ['lsh', 'itq'])
    """
    if methods is not None:
        methods = expand_methods(methods)
    options = {k: v for k, v in options.items() if v is not None}
    if path is not None:
        if methods is not None:
            options["methods"] = methods
        config = load_config(
            path, method_params=method_params or None, method_grids=method_grids or None, **options
        )
        if not method_params:
            return config
        # given settings beat the file's, its methods' own params included
        specs = [
            replace(spec, params={**spec.params, **method_params.get(spec.method, {})})
            for spec in config.methods
        ]
        return replace(config, methods=specs)
    return make_config(
        options.pop("dataset", DEFAULT_DATASET),
        methods or expand_methods("shallow"),
        options.pop("bits", list(DEFAULT_BITS)),
        options.pop("seeds", DEFAULT_SEEDS),
        method_params=method_params or {},
        method_grids=method_grids or {},
        **options,
    )
