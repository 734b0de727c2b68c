"""Index types by name: one :class:`~hashlearn._registry.Registry`, one ``register`` line per type.

The registry name is what users type (``create_index("mih", 64)``, ``hashlearn index
--index-type mih``) and what index files record; an index class states it as its ``type_name``. Files written
by hashlearn 0.1 recorded the class name instead, which resolves to the same type by an alias.
Listing names imports none of the index modules; :func:`hashlearn.index.create_index` and
:func:`hashlearn.index.load_index` import a type's module when they first need it.
"""

from __future__ import annotations

from hashlearn._registry import Registry

__all__ = ["INDEX_TYPES", "describe_indexes", "list_indexes"]

INDEX_TYPES: Registry[type] = Registry("index type")

INDEX_TYPES.register(
    "linear",
    "hashlearn.index.linear:LinearIndex",
    "exact k-NN and radius search by a compiled multi-threaded scan",
)
INDEX_TYPES.register(
    "hash-table",
    "hashlearn.index.hash_table:HashTableIndex",
    "one hash table keyed by the code (or a prefix); exact multi-probe radius and k-NN search",
)
INDEX_TYPES.register(
    "multi-table",
    "hashlearn.index.multi_table:MultiTableIndex",
    "L hash tables over the concatenated codes of L hashers; approximate (param n_tables)",
)
INDEX_TYPES.register(
    "mih",
    "hashlearn.index.mih:MultiIndexHashingIndex",
    "multi-index hashing: exact sublinear k-NN and radius search (Norouzi et al., 2012)",
)
INDEX_TYPES.register(
    "faiss",
    "hashlearn.index.faiss_adapter:FaissIndex",
    "faiss IndexBinaryFlat / Hash / MultiHash behind this contract (param kind)",
)

# The names files of hashlearn 0.1 hold.
INDEX_TYPES.alias("LinearIndex", "linear")
INDEX_TYPES.alias("HashTableIndex", "hash-table")
INDEX_TYPES.alias("MultiTableIndex", "multi-table")
INDEX_TYPES.alias("MultiIndexHashingIndex", "mih")
INDEX_TYPES.alias("FaissIndex", "faiss")


def list_indexes(pattern: str | None = None) -> list[str]:
    """Names of the index types, sorted; only those matching the shell-style ``pattern`` if given.

    >>> list_indexes()
    ['faiss', 'hash-table', 'linear', 'mih', 'multi-table']
    """
    return INDEX_TYPES.names(pattern)


def describe_indexes(pattern: str | None = None) -> dict[str, str]:
    """``{name: one-line description}`` of the index types, in name order."""
    return INDEX_TYPES.describe(pattern)
