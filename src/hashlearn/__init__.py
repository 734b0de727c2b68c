"""hashlearn: learning to hash for fast image retrieval.

Images (or their features) become short binary codes, similar images get codes a few bits apart,
and a Hamming-space index finds their neighbours. The package is laid out in layers along the
data flow (docs/architecture.md)::

    core -> codes -> datasets -> features -> hashers -> index -> evaluation
         -> experiments, report -> encoding -> serve -> cli

``import hashlearn`` does not import torch; only the deep hashers do, when they are created.
"""

from hashlearn._parallel import get_num_threads, set_num_threads
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
    "get_num_threads",
    "hamming_distance",
    "list_hashers",
    "load_dataset",
    "load_hasher",
    "load_index",
    "pack_bits",
    "retrieval_split",
    "set_num_threads",
    "unpack_bits",
]
