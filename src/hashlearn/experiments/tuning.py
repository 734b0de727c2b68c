"""Hyper-parameter selection on the validation part, never on the queries.

:func:`tune` fits one method once per combination of a parameter grid on the train part of a
protocol's split, scores each fit by retrieval with the validation part as queries and the train
part as database, and keeps the best. Only that model is then measured on the query set against
the database, once: the reported test figures played no part in the choice.

Deep hashers also pick their epoch on the same validation part (``fit(..., X_val, y_val)``);
shallow hashers fitted on features other than pixels come back as a
:class:`~hashlearn.hashers.FeatureHasher`, ready to save and serve. The fits, scores and choice
are those of :mod:`hashlearn.experiments.selection`, which a benchmark's ``grid`` shares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._table import format_table
from hashlearn._validation import check_int
from hashlearn.datasets import load_dataset
from hashlearn.evaluation import apply_protocol, with_neighbour_relevance
from hashlearn.exceptions import InvalidInputError
from hashlearn.experiments.results import metric_definitions
from hashlearn.experiments.selection import (
    Trial,
    check_unsupervised,
    metric_cutoffs,
    parameter_grid,
    score_split,
    select_params,
)
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher, Hasher, get_hasher_class

__all__ = ["TuneResult", "tune", "write_tune_result"]


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
    image_size: str | tuple[int, int] | None = None,
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
        Every combination is fitted (:func:`~hashlearn.experiments.parameter_grid`).
    params : mapping, optional
        Parameters every fit shares (``random_state`` is ``seed`` unless given).
    metric : str, default "mAP"
        Selection metric: ``mAP``, ``mAP@k``, ``P@k``, ``R@k`` or ``NDCG@k``, as
        :func:`hashlearn.evaluation.evaluate_codes` defines them (Hamming ranking, ties by
        database position, relevant = shares a label; for unlabelled data, one of the 2% of
        the database nearest to the query in the features the hasher reads).
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
    image_size : "HxW" or (height, width), optional
        Resize the pictures of a ``folder:`` dataset to this size.
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
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    cutoffs = metric_cutoffs(metric)
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

    data = load_dataset(dataset, data_dir=data_dir, image_size=image_size, verbose=verbose)
    if not data.labelled:
        check_unsupervised([method], data.name)
    overrides = {} if n_validation is None else {"n_validation": n_validation}
    split = apply_protocol(data, protocol, seed, **overrides)
    parts = ("train", "validation", "query", "database")
    inputs = {part: getattr(split, part).X for part in parts}
    extractor = None
    if not deep and features != "pixels":
        extractor = create_features(features).fit(split.train.X)
        inputs = {part: extractor.transform(X) for part, X in inputs.items()}
    if not split.labelled:  # relevant: the nearest items in the features the hasher reads
        split = with_neighbour_relevance(split, inputs)

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
    test = score_split(hasher, inputs, split, "query", "database", reported)
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


def write_tune_result(result: TuneResult, path: str | os.PathLike[str]) -> None:
    """Write ``result.to_dict()`` as JSON to ``path`` (atomically)."""
    text = json.dumps(result.to_dict(), indent=2, default=_jsonable)
    with atomic_write(path) as handle:
        handle.write(text.encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")
