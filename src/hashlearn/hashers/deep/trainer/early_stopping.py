"""Early stopping without given validation data: when it is on, and the validation part it
carves from the training data.

A deep hasher fitted without ``X_val`` sets a stratified ``validation_fraction`` of its training
images aside (:func:`carve_validation`), trains on the rest, and keeps the epoch with the best
validation mAP, stopping after ``patience`` epochs without a better one (scikit-learn's
``HistGradientBoosting*`` and ``MLP*`` estimators do the same with ``early_stopping`` and
``validation_fraction``). ``early_stopping="auto"`` turns it on from
:data:`EARLY_STOPPING_MIN_SAMPLES` labelled training images (:func:`resolve_early_stopping`).

Why 1,000. The validation mAP ranks each validation image against the others
(:func:`~hashlearn.hashers.deep.trainer.validation_map`), so it needs a handful of images of each
class: 10% of 1,000 images is 100, about 10 per class of a 10-class problem, so every query has
relevant items to find. Below that the epoch would be chosen on a few dozen images, a noisy
score, at the price of a tenth of the data a small training set can least spare; training all
``epochs`` and keeping the last one is then the default, as before. scikit-learn's
``HistGradientBoosting*`` switch at 10,000 samples, but they stop on a loss measured per sample,
and their iterations cost far less than an epoch of a network. On mnist5k (5,000 training
images) the carved part holds 500 images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_float
from hashlearn.datasets.split import stratified_sample
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_PATIENCE",
    "EARLY_STOPPING_MIN_SAMPLES",
    "carve_validation",
    "check_validation_fraction",
    "resolve_early_stopping",
]

EARLY_STOPPING_MIN_SAMPLES = 1000
DEFAULT_PATIENCE = 5


def check_validation_fraction(fraction: Any) -> float:
    """``fraction`` as a float in (0, 1); raises InvalidInputError otherwise."""
    value = check_float(fraction, "validation_fraction")
    if not 0.0 < value < 1.0:
        raise InvalidInputError(f"validation_fraction must be in (0, 1), got {fraction!r}")
    return value


def resolve_early_stopping(early_stopping: Any, n_samples: int, *, labelled: bool) -> bool:
    """Whether to carve a validation part from ``n_samples`` training images.

    ``early_stopping`` True or False says so; ``"auto"`` means on from
    :data:`EARLY_STOPPING_MIN_SAMPLES` images, and only with labels (``labelled``): the
    validation mAP ranks by label, so unsupervised fits train all epochs and keep the last.

    Raises
    ------
    InvalidInputError
        ``early_stopping`` is none of True, False, ``"auto"``; or it is True without labels.
    """
    if early_stopping == "auto" and isinstance(early_stopping, str):
        return labelled and n_samples >= EARLY_STOPPING_MIN_SAMPLES
    if not isinstance(early_stopping, bool):
        raise InvalidInputError(
            f"early_stopping must be True, False or 'auto', got {early_stopping!r}"
        )
    if early_stopping and not labelled:
        raise InvalidInputError(
            "early_stopping=True needs labels: the epoch is chosen by the validation mAP, which "
            "ranks by label; fit with y, or use early_stopping=False"
        )
    return early_stopping


def carve_validation(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0 .. n-1`` into a training part and a validation part.

    The validation part holds ``max(2, round(fraction * n))`` positions drawn by
    :func:`hashlearn.datasets.split.stratified_sample` with ``numpy.random.default_rng(seed)``
    (stratified by class for class labels ``(n,)``, uniform for multi-label indicators
    ``(n, c)``); the training part is every other position. Both are sorted ``int64`` arrays,
    disjoint, together ``0 .. n-1``; the same ``y``, ``fraction`` and ``seed`` give the same
    parts on every machine and process.

    Raises
    ------
    InvalidInputError
        Fewer than 2 positions would be left for training.
    """
    n = len(y)
    n_val = max(2, round(fraction * n))
    if n - n_val < 2:
        raise InvalidInputError(
            f"validation_fraction={fraction} of {n} training images leaves {n - n_val} to train "
            "on; early stopping needs more images (or early_stopping=False)"
        )
    rng = np.random.default_rng(seed)
    validation = np.sort(stratified_sample(rng, np.arange(n), y, n_val)).astype(np.int64)
    train = np.setdiff1d(np.arange(n, dtype=np.int64), validation, assume_unique=True)
    return train, validation
