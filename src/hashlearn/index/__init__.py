"""Indexes over packed binary codes, following faiss' binary index contract.

:class:`LinearIndex` is the exact, brute-force index (faiss' ``IndexBinaryFlat``);
:class:`MultiIndexHashingIndex` is exact and sublinear; :class:`HashTableIndex` and
:class:`MultiTableIndex` are hash tables with multi-probe search and feature re-ranking;
:class:`FaissIndex` wraps faiss' binary indexes. :func:`create_index` builds any of them by name.
:func:`near_duplicate_pairs` and :func:`group_pairs` find the near-duplicates of a collection.
Every index
derives from :class:`BinaryIndex`, saves itself to one versioned, checksummed file (format in
:mod:`hashlearn.index._format`) and is read back by :func:`load_index`, whatever its type.
"""

from hashlearn._parallel import get_num_threads, set_num_threads
from hashlearn.index.base import PAD_DISTANCE, PAD_ID, BinaryIndex, UnknownIdError, load_index
from hashlearn.index.duplicates import DuplicatePairs, group_pairs, near_duplicate_pairs
from hashlearn.index.faiss_adapter import (
    FaissIndex,
    from_faiss,
    read_faiss_index,
    to_faiss,
    write_faiss_index,
)
from hashlearn.index.hash_table import HashTableIndex, MultiTableIndex, concatenate_codes
from hashlearn.index.linear import LinearIndex
from hashlearn.index.mih import MultiIndexHashingIndex
from hashlearn.index.registry import create_index, describe_indexes, list_indexes

__all__ = [
    "PAD_DISTANCE",
    "PAD_ID",
    "BinaryIndex",
    "DuplicatePairs",
    "FaissIndex",
    "HashTableIndex",
    "LinearIndex",
    "MultiIndexHashingIndex",
    "MultiTableIndex",
    "UnknownIdError",
    "concatenate_codes",
    "create_index",
    "describe_indexes",
    "from_faiss",
    "get_num_threads",
    "group_pairs",
    "list_indexes",
    "load_index",
    "near_duplicate_pairs",
    "read_faiss_index",
    "set_num_threads",
    "to_faiss",
    "write_faiss_index",
]
