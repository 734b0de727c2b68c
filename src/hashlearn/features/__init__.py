"""Feature extractors behind one registry: ``create_features(name, **params)``, ``list_features()``.

The stage between datasets and hashers: an extractor maps images ``(n, h, w[, c])`` in [0, 1] (or
``(n, d)`` features, for ``pixels`` and ``l2-center``) to a ``float32`` array ``(n, d)``::

    >>> extractor = create_features("hog")            # 324 values per image
    >>> extractor = create_features("gist", postprocess="l2-center")   # a FeaturePipeline
    >>> extractor = create_features("torchvision:resnet18")   # pretrained network, 512 values

Every extractor is an estimator (``fit(X, y=None) -> self``, ``transform(X)``,
``fit_transform``). A fitted one is saved without pickle by :func:`features_to_dict` (a JSON-able
``config`` and ``state`` plus a flat dict of numpy ``arrays``, ready for safetensors) and rebuilt by
:func:`features_from_dict`. Adding an extractor is one module plus one ``register`` line in
:mod:`hashlearn.features.registry`; modules are imported when an extractor is first created.
"""

from hashlearn.features.base import FeatureExtractor
from hashlearn.features.create import create_features, get_features_class
from hashlearn.features.pipeline import FeaturePipeline
from hashlearn.features.registry import describe_features, list_features
from hashlearn.features.saving import features_from_dict, features_to_dict

__all__ = [
    "FeatureExtractor",
    "FeaturePipeline",
    "create_features",
    "describe_features",
    "features_from_dict",
    "features_to_dict",
    "get_features_class",
    "list_features",
]
