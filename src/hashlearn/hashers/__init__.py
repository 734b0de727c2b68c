"""Hashers behind one registry: ``create_hasher(name, n_bits=..., **params)``, ``list_hashers()``.

Adding a method is one module plus one line in ``_REGISTRY``. Modules are imported when a hasher
is first created, so listing names does not import torch.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.hashers.base import Hasher, read_model_file
from hashlearn.hashers.pipeline import FeatureHasher

# name -> (module, class, one-line description)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "lsh": ("hashlearn.hashers.lsh", "LSH", "sign of Gaussian random projections of centred data"),
    "pcah": (
        "hashlearn.hashers.pca",
        "PCAH",
        "PCA hashing: signs of the top principal components (Wang, Kumar & Chang, CVPR 2010)",
    ),
    "itq": (
        "hashlearn.hashers.itq",
        "ITQ",
        "Iterative Quantization: PCA then a learned rotation (Gong et al., TPAMI 2013)",
    ),
    "itq-cca": (
        "hashlearn.hashers.itq",
        "ITQCCA",
        "supervised ITQ on regularised CCA directions (Gong et al., TPAMI 2013)",
    ),
    "sh": (
        "hashlearn.hashers.spectral",
        "SpectralHashing",
        "Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008)",
    ),
    "sph": (
        "hashlearn.hashers.spherical",
        "SphericalHashing",
        "Spherical Hashing (Heo et al., CVPR 2012)",
    ),
    "agh": ("hashlearn.hashers.agh", "AGH", "Anchor Graph Hashing (Liu et al., ICML 2011)"),
    "dgh": ("hashlearn.hashers.dgh", "DGH", "Discrete Graph Hashing (Liu et al., NIPS 2014)"),
    "sgh": (
        "hashlearn.hashers.sgh",
        "SGH",
        "Stochastic Generative Hashing (Dai et al., ICML 2017)",
    ),
    "grh": (
        "hashlearn.hashers.grh",
        "GRH",
        "Graph Regularised Hashing (Moran & Lavrenko, ECIR 2015)",
    ),
    "ksh": (
        "hashlearn.hashers.ksh",
        "KSH",
        "Kernel-Based Supervised Hashing (Liu et al., CVPR 2012)",
    ),
    "sdh": ("hashlearn.hashers.sdh", "SDH", "Supervised Discrete Hashing (Shen et al., CVPR 2015)"),
    "dsh": (
        "hashlearn.hashers.deep.methods",
        "DSH",
        "Deep Supervised Hashing (Liu et al., CVPR 2016)",
    ),
    "dpsh": (
        "hashlearn.hashers.deep.methods",
        "DPSH",
        "Deep Pairwise-Supervised Hashing (Li et al., IJCAI 2016)",
    ),
    "hashnet": (
        "hashlearn.hashers.deep.methods",
        "HashNet",
        "HashNet: deep learning to hash by continuation (Cao et al., ICCV 2017)",
    ),
    "dsdh": (
        "hashlearn.hashers.deep.methods",
        "DSDH",
        "Deep Supervised Discrete Hashing (Li et al., NIPS 2017)",
    ),
    "dch": ("hashlearn.hashers.deep.methods", "DCH", "Deep Cauchy Hashing (Cao et al., CVPR 2018)"),
    "csq": (
        "hashlearn.hashers.deep.methods",
        "CSQ",
        "Central Similarity Quantization (Yuan et al., CVPR 2020)",
    ),
}

__all__ = [
    "FeatureHasher",
    "Hasher",
    "create_hasher",
    "describe_hashers",
    "get_hasher_class",
    "list_hashers",
    "load_hasher",
]


def list_hashers() -> list[str]:
    """Names of all registered hashers, sorted."""
    return sorted(_REGISTRY)


def describe_hashers() -> dict[str, str]:
    """Registered names with a one-line description each."""
    return {name: _REGISTRY[name][2] for name in list_hashers()}


def get_hasher_class(name: str) -> type[Hasher]:
    """The class registered under ``name``; raises UnknownNameError listing the known names."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise UnknownNameError(f"unknown hasher {name!r}; available: {', '.join(list_hashers())}")
    module_name, class_name, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module_name), class_name)


def create_hasher(name: str, n_bits: int = 32, **params: Any) -> Hasher:
    """Build the hasher registered under ``name`` with ``n_bits`` bits and its own parameters.

    >>> hasher = create_hasher("lsh", n_bits=16, random_state=0)
    """
    cls = get_hasher_class(name)
    allowed = cls._param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"hasher {name!r} has no parameter(s) {', '.join(unknown)}; its parameters are: {', '.join(allowed)}"
        )
    return cls(n_bits=n_bits, **params)


def load_hasher(path: str | os.PathLike[str]) -> Hasher:
    """Load a model written by ``Hasher.save`` (safetensors + JSON metadata; never pickle).

    A file that also holds a feature extractor gives a :class:`FeatureHasher`.
    """
    import json

    from hashlearn.hashers.pipeline import FEATURES_KEY, FEATURES_PREFIX

    metadata, arrays = read_model_file(path)
    try:
        params = json.loads(metadata["params"])
        state = json.loads(metadata["state"])
        method = metadata["method"]
        # the images of the fit; absent from models fitted on feature vectors
        image_shape = json.loads(metadata.get("image_shape", "null"))
        features = json.loads(metadata.get(FEATURES_KEY, "null"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} has incomplete hashlearn metadata: {exc}"
        ) from None
    feature_arrays = {
        key[len(FEATURES_PREFIX) :]: array
        for key, array in arrays.items()
        if key.startswith(FEATURES_PREFIX)
    }
    arrays = {key: array for key, array in arrays.items() if not key.startswith(FEATURES_PREFIX)}
    cls = get_hasher_class(method)
    try:
        hasher = cls(**params)
        hasher._set_state(arrays, state)
        if image_shape is not None:
            hasher.image_shape_ = _checked_image_shape(path, image_shape)
        elif not hasattr(hasher, "image_shape_"):  # deep hashers keep theirs in their state
            hasher.image_shape_ = None
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} does not hold a complete {method!r} model: {exc!r}"
        ) from None
    if features is None:
        return hasher
    return FeatureHasher(_load_features(path, features, feature_arrays), hasher)


def _checked_image_shape(path: Any, value: Any) -> tuple[int, int, int]:
    """The ``image_shape`` metadata of a model file (see ``check_image_shape``)."""
    from hashlearn._validation import check_image_shape

    try:
        return check_image_shape(value)
    except InvalidInputError as exc:
        raise FileFormatError(f"{os.fspath(path)!r} has an unreadable image shape: {exc}") from None


def _load_features(path: Any, saved: Any, arrays: dict[str, Any]) -> Any:
    """The fitted extractor of a model file (its ``features`` metadata and arrays)."""
    from hashlearn.features import features_from_dict

    if not isinstance(saved, dict):
        raise FileFormatError(f"{os.fspath(path)!r} has an unreadable feature extractor entry")
    try:
        return features_from_dict({**saved, "arrays": arrays})
    except (InvalidInputError, UnknownNameError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} holds a feature extractor this hashlearn cannot rebuild: {exc}"
        ) from None
