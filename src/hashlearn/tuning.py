"""Hyper-parameter selection on the validation part, never on the queries.

:func:`tune` fits one method once per combination of a parameter grid on the train part of a
protocol's split, scores each fit by retrieval with the validation part as queries and the train
part as database, and keeps the best. Only that model is then measured on the query set against
the database, once: the reported test figures played no part in the choice.

Deep hashers also pick their epoch on the same validation part (``fit(..., X_val, y_val)``);
shallow hashers fitted on features other than pixels come back as a
:class:`~hashlearn.hashers.FeatureHasher`, ready to save and serve.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hashlearn._table import format_table
from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher

__all__ = ["Trial", "TuneResult", "parameter_grid", "select_params", "tune", "write_tune_result"]

_METRIC = re.compile(r"^(mAP|mAP@(\d+)|P@(\d+)|R@(\d+)|NDCG@(\d+))$")


@dataclass(frozen=True)
class Trial:
    """One fit of the grid: its parameters, validation score and fit time (seconds)."""

    params: dict[str, Any]
    score: float
    fit_s: float


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` chose and measured.

    ``trials`` are in grid order; ``best`` is the first trial with the highest validation
    score; ``test`` holds the metrics of its model on the query set against the database;
    ``model`` is that fitted model; ``definitions`` says what each metric means.
    """

    method: str
    n_bits: int
    metric: str
    dataset: str
    protocol: str
    seed: int
    manifest: str
    features: str
    sizes: dict[str, int]
    trials: list[Trial]
    best: Trial
    test: dict[str, float]
    model: Hasher = field(repr=False)
    definitions: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        """The trials as a text table, the chosen one marked, then the test figures."""
        names = sorted({name for trial in self.trials for name in trial.params})
        rows = [
            [
                *(json.dumps(trial.params.get(name)) for name in names),
                f"{trial.score:.4f}",
                f"{trial.fit_s:.1f}",
                "<- chosen" if trial is self.best else "",
            ]
            for trial in self.trials
        ]
        table = format_table([*names, f"validation {self.metric}", "fit s", ""], rows)
        test = ", ".join(f"{name} {value:.4f}" for name, value in self.test.items())
        return f"{table}\n\ntest, queries against the database, of the chosen model only: {test}"

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, JSON-able."""
        return {
            "method": self.method,
            "n_bits": self.n_bits,
            "metric": self.metric,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "seed": self.seed,
            "manifest": self.manifest,
            "features": self.features,
            "sizes": self.sizes,
            "selection": (
                f"validation {self.metric}: the validation part as queries against the train "
                "part as database; the first of equal scores in grid order wins"
            ),
            "trials": [
                {"params": t.params, "score": t.score, "fit_s": t.fit_s} for t in self.trials
            ],
            "best": {"params": self.best.params, "score": self.best.score},
            "test": self.test,
            "definitions": self.definitions,
        }


def parameter_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid``'s values, the last name varying fastest.

    >>> parameter_grid({"a": [1, 2], "b": ["x"]})
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    """
    if not isinstance(grid, Mapping) or not grid:
        raise InvalidInputError(f"grid must be a non-empty mapping of name -> values, got {grid!r}")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise InvalidInputError(
                f"grid[{name!r}] must be a non-empty list of values, got {values!r}"
            )
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def _metric_cutoffs(metric: str) -> dict[str, tuple[int, ...]]:
    """The ``evaluate_codes`` cut-offs that compute ``metric``."""
    match = _METRIC.match(metric) if isinstance(metric, str) else None
    if match is None:
        raise InvalidInputError(
            f"unknown selection metric {metric!r}; use mAP, mAP@k, P@k, R@k or NDCG@k (k >= 1)"
        )
    _, map_k, p_k, r_k, ndcg_k = match.groups()
    k = int(map_k or p_k or r_k or ndcg_k or 1)
    if k < 1:
        raise InvalidInputError(f"the cut-off of {metric!r} must be >= 1")
    return {
        "map_at": (k,) if map_k else (),
        "ks": (k,) if (p_k or r_k) else (),
        "ndcg_at": (k,) if ndcg_k else (),
    }


def tune(
    dataset: str,
    method: str,
    n_bits: int,
    grid: Mapping[str, Sequence[Any]],
    *,
    params: Mapping[str, Any] | None = None,
    metric: str = "mAP",
    protocol: str = "default",
    features: str = "pixels",
    seed: int = 0,
    n_validation: int | float | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> TuneResult:
    """Choose ``method``'s parameters from ``grid`` on the validation part; test the choice once.

    Parameters
    ----------
    dataset : str
        Dataset name (:func:`hashlearn.datasets.load_dataset`).
    method : str
        Hasher name (:func:`hashlearn.hashers.list_hashers`).
    n_bits : int
        Code length.
    grid : mapping of parameter name -> list of values
        Every combination is fitted (:func:`parameter_grid`).
    params : mapping, optional
        Parameters every fit shares (``random_state`` is ``seed`` unless given).
    metric : str, default "mAP"
        Selection metric: ``mAP``, ``mAP@k``, ``P@k``, ``R@k`` or ``NDCG@k``, as
        :func:`hashlearn.evaluation.evaluate_codes` defines them (Hamming ranking, ties by
        database position, relevant = shares a label).
    protocol : str, default "default"
        Retrieval protocol of the split (:func:`hashlearn.evaluation.list_protocols`).
    features : str, default "pixels"
        Feature extractor of shallow methods, e.g. ``"gist+l2-center"``.
    seed : int, default 0
        Seed of the split and of every fit.
    n_validation : int or float, optional
        Size of the validation part carved from train (the protocol's default otherwise).
    data_dir : path, optional
        Folder of downloaded datasets.
    verbose : bool, default True
        Progress bars.

    Returns
    -------
    TuneResult

    Raises
    ------
    InvalidInputError
        An empty grid or list of values, an unknown metric, a parameter the method does not
        take, or a split without a validation part.
    UnknownNameError
        An unknown dataset, method, protocol or feature extractor.
    """
    from hashlearn.benchmark import metric_definitions
    from hashlearn.datasets import load_dataset
    from hashlearn.evaluation import apply_protocol
    from hashlearn.features import create_features
    from hashlearn.hashers import FeatureHasher, get_hasher_class

    n_bits = check_int(n_bits, "n_bits", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    cutoffs = _metric_cutoffs(metric)
    parameter_grid(grid)  # an empty grid fails before the data is loaded
    shared = dict(params or {})
    shared.setdefault("random_state", seed)
    cls = get_hasher_class(method)
    allowed = set(cls._param_names()) - {"n_bits"}
    unknown = sorted((set(shared) | set(grid)) - allowed)
    if unknown:
        raise InvalidInputError(
            f"{method!r} has no parameter(s) {', '.join(unknown)}; its parameters are: "
            f"{', '.join(sorted(allowed))}"
        )
    deep = cls.input_kind == "images"

    data = load_dataset(dataset, data_dir=data_dir, verbose=verbose)
    overrides = {} if n_validation is None else {"n_validation": n_validation}
    split = apply_protocol(data, protocol, seed, **overrides)
    parts = ("train", "validation", "query", "database")
    inputs = {part: getattr(split, part).X for part in parts}
    extractor = None
    if not deep and features != "pixels":
        extractor = create_features(features).fit(split.train.X)
        inputs = {part: extractor.transform(X) for part, X in inputs.items()}

    trials, chosen, hasher = select_params(
        method,
        n_bits,
        parameter_grid(grid),
        shared,
        inputs,
        split,
        metric,
        verbose=verbose,
    )
    reported = {
        "ks": tuple(dict.fromkeys((10, *cutoffs["ks"]))),
        "map_at": tuple(dict.fromkeys((10, *cutoffs["map_at"]))),
        "ndcg_at": cutoffs["ndcg_at"],
    }
    test = _score(hasher, inputs, split, "query", "database", reported)
    model: Hasher = FeatureHasher(extractor, hasher) if extractor is not None else hasher
    definitions = metric_definitions(
        reported["ks"], reported["map_at"], reported["ndcg_at"], None, "position"
    )
    return TuneResult(
        method=method,
        n_bits=n_bits,
        metric=metric,
        dataset=dataset,
        protocol=protocol,
        seed=seed,
        manifest=split.manifest,
        features="images" if deep else features,
        sizes=split.sizes(),
        trials=trials,
        best=chosen,
        test={name: float(value) for name, value in test.items()},
        model=model,
        definitions={name: text for name, text in definitions.items() if name in test},
    )


def _score(
    hasher: Hasher,
    inputs: Mapping[str, Any],
    split: Any,
    queries: str,
    database: str,
    cutoffs: Mapping[str, Any],
) -> dict[str, float]:
    """Metrics of ``split``'s part ``queries`` against its part ``database`` (Hamming ranking,
    ties by position)."""
    from hashlearn.evaluation import evaluate_codes

    return evaluate_codes(
        hasher.encode(inputs[queries]),
        getattr(split, queries).y,
        hasher.encode(inputs[database]),
        getattr(split, database).y,
        radius=None,
        **{"ks": (), "map_at": (), "ndcg_at": (), **cutoffs},
    )


def fit_timed(
    method: str, n_bits: int, params: Mapping[str, Any], inputs: Mapping[str, Any], split: Any
) -> tuple[Hasher, float]:
    """Create ``method`` with ``params`` and fit it on ``inputs["train"]`` (with the train
    labels); return it and the seconds the fit took.

    Deep hashers also get the validation part, when there is one, to choose their epoch on,
    and stay quiet unless ``params`` says ``verbose``.
    """
    from hashlearn.hashers import create_hasher, get_hasher_class

    cls = get_hasher_class(method)
    deep = cls.input_kind == "images"
    if deep and "verbose" in cls._param_names():
        params = {"verbose": False, **params}
    hasher = create_hasher(method, n_bits=n_bits, **params)
    start = time.perf_counter()
    if deep and len(split.validation):  # model selection on the validation part only
        hasher.fit(
            inputs["train"], split.train.y, X_val=split.validation.X, y_val=split.validation.y
        )
    else:
        hasher.fit(inputs["train"], split.train.y)
    return hasher, time.perf_counter() - start


def select_params(
    method: str,
    n_bits: int,
    combos: Sequence[dict[str, Any]],
    shared: Mapping[str, Any],
    inputs: Mapping[str, Any],
    split: Any,
    metric: str = "mAP",
    *,
    verbose: bool = False,
) -> tuple[list[Trial], Trial, Hasher]:
    """Fit ``method`` once per parameter combination on ``inputs["train"]`` and keep the best
    by ``metric`` of ``inputs["validation"]`` (queries) against ``inputs["train"]`` (database).

    ``inputs`` maps split part names to what the hasher reads (images or features); ``split``
    gives the labels. Deep hashers also get the validation part for their epoch selection.
    Returns the trials in order, the chosen one (the first of the highest scores) and its
    fitted hasher.

    Raises
    ------
    InvalidInputError
        ``combos`` is empty, ``split`` has no validation part, or ``metric`` is unknown.
    """
    cutoffs = _metric_cutoffs(metric)
    if not combos:
        raise InvalidInputError("no parameter combinations to choose from")
    if len(split.validation) == 0:
        raise InvalidInputError(
            "the split has no validation part to choose parameters on; give it n_validation > 0"
        )
    trials: list[Trial] = []
    best: tuple[Trial, Hasher] | None = None
    bar = tqdm(combos, desc=f"select {method}", unit="fit", disable=not verbose, leave=False)
    for combo in bar:
        hasher, fit_s = fit_timed(method, n_bits, {**shared, **combo}, inputs, split)
        score = _score(hasher, inputs, split, "validation", "train", cutoffs)[metric]
        trial = Trial(dict(combo), float(score), fit_s)
        trials.append(trial)
        if best is None or trial.score > best[0].score:
            best = (trial, hasher)
        bar.set_postfix({f"best {metric}": f"{best[0].score:.4f}"})
    bar.close()
    assert best is not None  # combos is not empty
    return trials, best[0], best[1]


def write_tune_result(result: TuneResult, path: str | os.PathLike[str]) -> None:
    """Write ``result.to_dict()`` as JSON to ``path`` (atomically)."""
    from hashlearn._io import atomic_write

    text = json.dumps(result.to_dict(), indent=2, default=_jsonable)
    with atomic_write(path) as handle:
        handle.write(text.encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")
