"""Indexes over packed binary codes, following faiss' binary index contract.

:class:`LinearIndex` is the exact, brute-force index (faiss' ``IndexBinaryFlat``);
:class:`MultiIndexHashingIndex` is exact and sublinear; :class:`HashTableIndex` and
:class:`MultiTableIndex` are hash tables with multi-probe search and feature re-ranking;
:class:`FaissIndex` wraps faiss' binary indexes. :func:`create_index` builds any of them by its
registry name (:func:`list_indexes`, :func:`describe_indexes`). :func:`near_duplicates` (groups of
identical codes and the links between them, pairs streamed), :func:`near_duplicate_pairs` and
:func:`group_pairs` find the near-duplicates of a collection (saved as CSV by
:func:`write_groups_csv` and :func:`write_pairs_csv`). Every index derives from
:class:`BinaryIndex`, saves itself to one versioned, checksummed file (format in
:mod:`hashlearn.index._format`, which starts with :data:`INDEX_FILE_MAGIC`) and is read back by
:func:`load_index`, whatever its type; :func:`write_search_results` saves what a search returns.

Searches run on :func:`get_num_threads` threads, set by :func:`set_num_threads`: the one thread
setting of hashlearn (:mod:`hashlearn._parallel`), for index searches and evaluation alike.
"""

from hashlearn._parallel import get_num_threads, set_num_threads
from hashlearn.index._faiss import FaissNotInstalledError
from hashlearn.index._format.layout import MAGIC as INDEX_FILE_MAGIC
from hashlearn.index._mapped import IndexFileChangedError
from hashlearn.index.base import (
    PAD_DISTANCE,
    PAD_ID,
    BinaryIndex,
    UnknownIdError,
    check_queries,
)
from hashlearn.index.duplicates import (
    DuplicatePairs,
    NearDuplicates,
    group_pairs,
    near_duplicate_pairs,
    near_duplicates,
    write_groups_csv,
    write_pairs_csv,
)
from hashlearn.index.factory import create_index, load_index
from hashlearn.index.faiss_adapter import FaissIndex
from hashlearn.index.faiss_convert import (
    from_faiss,
    read_faiss_index,
    to_faiss,
    write_faiss_index,
)
from hashlearn.index.hash_table import HashTableIndex
from hashlearn.index.linear import LinearIndex
from hashlearn.index.mih import MultiIndexHashingIndex
from hashlearn.index.multi_table import MultiTableIndex, concatenate_codes
from hashlearn.index.registry import describe_indexes, list_indexes
from hashlearn.index.results_file import write_search_results
from hashlearn.index.warmup import warm_up

__all__ = [
    "INDEX_FILE_MAGIC",
    "PAD_DISTANCE",
    "PAD_ID",
    "BinaryIndex",
    "DuplicatePairs",
    "FaissIndex",
    "FaissNotInstalledError",
    "HashTableIndex",
    "IndexFileChangedError",
    "LinearIndex",
    "MultiIndexHashingIndex",
    "MultiTableIndex",
    "NearDuplicates",
    "UnknownIdError",
    "check_queries",
    "concatenate_codes",
    "create_index",
    "describe_indexes",
    "from_faiss",
    "get_num_threads",
    "group_pairs",
    "list_indexes",
    "load_index",
    "near_duplicate_pairs",
    "near_duplicates",
    "read_faiss_index",
    "set_num_threads",
    "to_faiss",
    "warm_up",
    "write_faiss_index",
    "write_groups_csv",
    "write_pairs_csv",
    "write_search_results",
]
