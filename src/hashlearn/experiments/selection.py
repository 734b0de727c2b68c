"""Choosing a method's parameters on the validation part: the fits and scores the benchmark's
``grid`` and :func:`~hashlearn.experiments.tune` share.

Every candidate is fitted on the train part (:func:`fit_timed`) and scored by retrieval with the
validation part as queries against the train part as database (:func:`score_split`); the first
of the highest scores wins (:func:`select_params`). The queries play no part in the choice.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hashlearn._progress import progress
from hashlearn.evaluation import evaluate_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher, create_hasher, get_hasher_class

__all__ = [
    "Trial",
    "check_unsupervised",
    "fit_timed",
    "metric_cutoffs",
    "parameter_grid",
    "score_split",
    "select_params",
]

_METRIC = re.compile(r"^(mAP|mAP@(\d+)|P@(\d+)|R@(\d+)|NDCG@(\d+))$")


@dataclass(frozen=True)
class Trial:
    """One fit of the grid: its parameters, validation score and fit time (seconds)."""

    params: dict[str, Any]
    score: float
    fit_s: float


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


def metric_cutoffs(metric: str) -> dict[str, tuple[int, ...]]:
    """The ``evaluate_codes`` cut-offs that compute the selection metric ``metric``.

    ``metric`` is ``mAP``, ``mAP@k``, ``P@k``, ``R@k`` or ``NDCG@k`` (k >= 1); anything else
    raises InvalidInputError.

    >>> metric_cutoffs("P@20")
    {'map_at': (), 'ks': (20,), 'ndcg_at': ()}
    """
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


def score_split(
    hasher: Hasher,
    inputs: Mapping[str, Any],
    split: Any,
    queries: str,
    database: str,
    cutoffs: Mapping[str, Any],
) -> dict[str, float]:
    """Metrics of ``split``'s part ``queries`` against its part ``database`` (Hamming ranking,
    ties by position, no radius metrics).

    ``inputs`` maps part names to what ``hasher`` encodes (images or features); ``split`` gives
    the labels; ``cutoffs`` are ``evaluate_codes``'s ``ks`` / ``map_at`` / ``ndcg_at`` (none
    unless given).
    """
    return evaluate_codes(
        hasher.encode(inputs[queries]),
        getattr(split, queries).y,
        hasher.encode(inputs[database]),
        getattr(split, database).y,
        radius=None,
        **{"ks": (), "map_at": (), "ndcg_at": (), **cutoffs},
    )


def check_unsupervised(methods: Sequence[str], dataset: str) -> None:
    """Refuse supervised methods for an unlabelled dataset, naming them.

    Raises
    ------
    InvalidInputError
        One of ``methods`` needs labels.
    """
    supervised = [m for m in methods if get_hasher_class(m).supervised]
    if supervised:
        raise InvalidInputError(
            f"dataset {dataset!r} has no labels, and {', '.join(map(repr, supervised))} "
            "need(s) them: choose unsupervised methods (`hashlearn list`), or give the pictures "
            "one sub-folder per class"
        )


def fit_timed(
    method: str, n_bits: int, params: Mapping[str, Any], inputs: Mapping[str, Any], split: Any
) -> tuple[Hasher, float]:
    """Create ``method`` with ``params`` and fit it on ``inputs["train"]`` (with the train
    labels); return it and the seconds the fit took.

    Deep hashers also get the validation part, when there is one, to choose their epoch on,
    and stay quiet unless ``params`` says ``verbose``.
    """
    cls = get_hasher_class(method)
    deep = cls.input_kind == "images"
    if deep and "verbose" in cls._param_names():
        params = {"verbose": False, **params}
    hasher = create_hasher(method, n_bits=n_bits, **params)
    start = time.perf_counter()
    # unlabelled data: fitted without labels (the parts' y is then neighbour relevance)
    y_train, y_val = (split.train.y, split.validation.y) if split.labelled else (None, None)
    if deep and len(split.validation):  # model selection on the validation part only
        hasher.fit(inputs["train"], y_train, X_val=split.validation.X, y_val=y_val)
    else:
        hasher.fit(inputs["train"], y_train)
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
    cutoffs = metric_cutoffs(metric)
    if not combos:
        raise InvalidInputError("no parameter combinations to choose from")
    if len(split.validation) == 0:
        raise InvalidInputError(
            "the split has no validation part to choose parameters on; give it n_validation > 0"
        )
    trials: list[Trial] = []
    best: tuple[Trial, Hasher] | None = None
    bar = progress(combos, desc=f"select {method}", unit="fit", disable=not verbose, leave=False)
    for combo in bar:
        hasher, fit_s = fit_timed(method, n_bits, {**shared, **combo}, inputs, split)
        score = score_split(hasher, inputs, split, "validation", "train", cutoffs)[metric]
        trial = Trial(dict(combo), float(score), fit_s)
        trials.append(trial)
        if best is None or trial.score > best[0].score:
            best = (trial, hasher)
        bar.set_postfix({f"best {metric}": f"{best[0].score:.4f}"})
    bar.close()
    assert best is not None  # combos is not empty
    return trials, best[0], best[1]
