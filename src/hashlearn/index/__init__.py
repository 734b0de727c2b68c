"""Indexes over packed binary codes, following faiss' binary index contract.

:class:`LinearIndex` is the exact, brute-force index (faiss' ``IndexBinaryFlat``). Every index
derives from :class:`BinaryIndex`, saves itself to one versioned, checksummed file (format in
:mod:`hashlearn.index._format`) and is read back by :func:`load_index`, whatever its type.
"""

from hashlearn.index._kernels import get_num_threads, set_num_threads
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex, UnknownIdError, load_index
from hashlearn.index.linear import LinearIndex
from hashlearn.index.registry import create_index, list_indexes

__all__ = [
    "PAD_DISTANCE",
    "PAD_ID",
    "BinaryIndex",
    "LinearIndex",
    "UnknownIdError",
    "create_index",
    "get_num_threads",
    "list_indexes",
    "load_index",
    "set_num_threads",
]
