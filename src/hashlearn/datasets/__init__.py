"""Datasets and retrieval splits.

``load_dataset(name)`` returns a :class:`Dataset` with ``X`` (float32 images in [0, 1], shape
``(n, h, w)`` or ``(n, h, w, c)``) and ``y`` (int64 labels). ``retrieval_split`` carves it into
query / database / train / validation parts.
"""

from hashlearn.datasets.base import Dataset, list_datasets, load_dataset
from hashlearn.datasets.folder import load_image_folder
from hashlearn.datasets.split import RetrievalSplit, Subset, default_split, retrieval_split

__all__ = [
    "Dataset",
    "RetrievalSplit",
    "Subset",
    "default_split",
    "list_datasets",
    "load_dataset",
    "load_image_folder",
    "retrieval_split",
]
