"""hashlearn: learning to hash for fast image retrieval.

Images (or their features) become short binary codes, similar images get codes a few bits apart,
and a Hamming-space index finds their neighbours. The package is laid out along the data flow::

    datasets -> hashers (fit / encode) -> codes (packed bits) -> index (add / search) -> evaluation

``import hashlearn`` does not import torch; only the deep hashers do, when they are created.
"""

from hashlearn._version import __version__
from hashlearn.codes import hamming_distance, pack_bits, unpack_bits
from hashlearn.datasets import load_dataset, retrieval_split
from hashlearn.exceptions import (
    CodeFormatError,
    FileFormatError,
    HashlearnError,
    InvalidInputError,
    NotFittedError,
    UnknownNameError,
)
from hashlearn.hashers import create_hasher, list_hashers, load_hasher
from hashlearn.index import LinearIndex, load_index

__all__ = [
    "CodeFormatError",
    "FileFormatError",
    "HashlearnError",
    "InvalidInputError",
    "LinearIndex",
    "NotFittedError",
    "UnknownNameError",
    "__version__",
    "create_hasher",
    "hamming_distance",
    "list_hashers",
    "load_dataset",
    "load_hasher",
    "load_index",
    "pack_bits",
    "retrieval_split",
    "unpack_bits",
]
