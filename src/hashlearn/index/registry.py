"""Index types by name: ``create_index(name, n_bits, **params)``, ``list_indexes()``.

The command line (``hashlearn index --type NAME --param KEY=VALUE``) builds indexes through here.
Modules are imported when an index is first created.
"""

from __future__ import annotations

import importlib
from typing import Any

from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.index.base import BinaryIndex

__all__ = ["create_index", "list_indexes"]

# name -> (module, class, one-line description)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "linear": (
        "hashlearn.index.linear",
        "LinearIndex",
        "exact k-NN and radius search by a compiled multi-threaded scan",
    ),
    "hash-table": (
        "hashlearn.index.hash_table",
        "HashTableIndex",
        "one hash table keyed by the code (or a prefix); exact multi-probe radius and k-NN search",
    ),
    "multi-table": (
        "hashlearn.index.hash_table",
        "MultiTableIndex",
        "L hash tables over the concatenated codes of L hashers; approximate (param n_tables)",
    ),
    "mih": (
        "hashlearn.index.mih",
        "MultiIndexHashingIndex",
        "multi-index hashing: exact sublinear k-NN and radius search (Norouzi et al., 2012)",
    ),
    "faiss": (
        "hashlearn.index.faiss_adapter",
        "FaissIndex",
        "faiss IndexBinaryFlat / Hash / MultiHash behind this contract (param kind)",
    ),
}


def _import_all() -> None:
    """Import every registered index module (so that their types are known to ``load_index``)."""
    for module in {entry[0] for entry in _REGISTRY.values()}:
        importlib.import_module(module)


def describe_indexes() -> dict[str, str]:
    """Registered index types with a one-line description each."""
    return dict(list_indexes())


def list_indexes() -> dict[str, str]:
    """Index type names and one-line descriptions."""
    return {name: entry[2] for name, entry in _REGISTRY.items()}


def create_index(name: str, n_bits: int, **params: Any) -> BinaryIndex:
    """An empty index of type ``name`` for codes of ``n_bits`` bits.

    Parameters
    ----------
    name : str
        One of :func:`list_indexes`.
    n_bits : int
        Code width. For ``"multi-table"`` it is the width of the concatenated codes, split into
        ``n_tables`` tables of ``n_bits / n_tables`` bits each.
    **params
        The index type's other constructor arguments, e.g. ``n_substrings`` for ``"mih"``,
        ``key_bits`` for ``"hash-table"``, ``kind``, ``b``, ``nhash``, ``nflip`` for ``"faiss"``.

    Raises
    ------
    UnknownNameError
        ``name`` is not a known index type.
    InvalidInputError
        A parameter is unknown to the index type or out of range.
    """
    if name not in _REGISTRY:
        raise UnknownNameError(
            f"unknown index type {name!r}; known types: {', '.join(sorted(_REGISTRY))}"
        )
    module, class_name, _ = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), class_name)
    if name == "multi-table":
        n_bits = check_int(n_bits, "n_bits", minimum=1)
        if "n_tables" not in params:
            raise InvalidInputError("the multi-table index needs the parameter n_tables")
        n_tables = check_int(params.pop("n_tables"), "n_tables", minimum=1, maximum=n_bits)
        if n_bits % n_tables:
            raise InvalidInputError(
                f"n_bits ({n_bits}) must be a multiple of n_tables ({n_tables}): table t holds "
                "bits [t * n_bits / n_tables, (t + 1) * n_bits / n_tables)"
            )
        params["n_tables"], params["bits_per_table"] = n_tables, n_bits // n_tables
    else:
        params["n_bits"] = n_bits
    try:
        return cls(**params)
    except TypeError as exc:  # an unknown keyword
        raise InvalidInputError(f"index type {name!r}: {exc}") from None
