"""Datasets and retrieval splits.

``load_dataset(name)`` returns a :class:`Dataset` with ``X`` (float32 images in [0, 1], shape
``(n, h, w)`` or ``(n, h, w, c)``; or features ``(n, d)`` from :func:`load_arrays`) and ``y``
(int64 labels, or a bool multi-label indicator). The standard benchmarks ("mnist",
"fashion-mnist", "cifar10") are downloaded once, checked against their published SHA-256, and
mark their official test set in ``Dataset.test_mask``. ``retrieval_split`` carves a dataset into
query / database / train / validation parts, which :func:`save_split` writes as ``.npz`` files;
:mod:`hashlearn.evaluation.protocols` names the splits of the literature. A new dataset is one
loader plus one ``register`` line in :mod:`hashlearn.datasets.registry`.
"""

from hashlearn.datasets.arrays import load_arrays
from hashlearn.datasets.dataset import Dataset
from hashlearn.datasets.download import data_home
from hashlearn.datasets.folder import load_image_folder
from hashlearn.datasets.load import load_dataset, parse_image_size
from hashlearn.datasets.registry import describe_datasets, list_datasets
from hashlearn.datasets.split import (
    RetrievalSplit,
    Subset,
    default_split,
    retrieval_split,
    save_split,
)

__all__ = [
    "Dataset",
    "RetrievalSplit",
    "Subset",
    "data_home",
    "default_split",
    "describe_datasets",
    "list_datasets",
    "load_arrays",
    "load_dataset",
    "load_image_folder",
    "parse_image_size",
    "retrieval_split",
    "save_split",
]
