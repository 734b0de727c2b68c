"""Hashers: estimators that learn binary codes, built by name from one registry.

``create_hasher(name, n_bits=..., **params)`` builds any registered method, ``list_hashers()``
names them and ``describe_hashers()`` says what each is (:mod:`hashlearn.hashers.registry`);
``load_hasher(path)`` reads a saved model back (:mod:`hashlearn.hashers.loading`). Every hasher
follows the estimator contract of :class:`~hashlearn.hashers.base.Hasher`. Methods are imported
when first built, so listing them does not import torch; the deep methods live in
:mod:`hashlearn.hashers.deep`.
"""

from __future__ import annotations

from hashlearn.hashers.base import Hasher
from hashlearn.hashers.loading import load_hasher
from hashlearn.hashers.model_format import read_model_file
from hashlearn.hashers.pipeline import FeatureHasher
from hashlearn.hashers.registry import (
    create_hasher,
    describe_hashers,
    get_hasher_class,
    list_hashers,
)

__all__ = [
    "FeatureHasher",
    "Hasher",
    "create_hasher",
    "describe_hashers",
    "get_hasher_class",
    "list_hashers",
    "load_hasher",
    "read_model_file",
]
