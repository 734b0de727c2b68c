"""The brute-force reference every index test compares with: exact k-NN and range search over
packed codes with ids, in plain numpy, one query at a time, bit by bit.

Results follow hashlearn's index contract: sorted by Hamming distance, ties by id ascending;
``knn`` pads a row with ``I = -1``, ``D = 2**31 - 1`` when fewer than ``k`` items qualify;
``range_search`` is inclusive (``distance <= radius``) and returns ``(lims, D, I)``. Every
function can be restricted to ``allowed`` items per query (the candidates an approximate index
probes, see :func:`probed`). Shared by the tests under ``tests/index``.
"""

from __future__ import annotations

import numpy as np

PAD_ID = -1
PAD_DISTANCE = 2**31 - 1


def to_codes(values: list[int], n_bits: int) -> np.ndarray:
    """Packed codes from Python ints: bit ``i`` of the int is bit ``i`` of the code (LSB-first
    within each byte, as faiss and hashlearn pack them)."""
    width = (n_bits + 7) // 8
    raw = b"".join(v.to_bytes(width, "little") for v in values)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width).copy()


def bits(codes: np.ndarray, n_bits: int) -> np.ndarray:
    """``(n, n_bits)`` 0/1 array of packed codes (bit ``i`` is bit ``i % 8`` of byte ``i // 8``)."""
    return np.unpackbits(np.asarray(codes, np.uint8), axis=1, bitorder="little")[:, :n_bits]


def hamming(queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``(nq, n)`` ``int64`` Hamming distances: the set bits of ``query ^ code``, counted."""
    codes = np.asarray(codes, np.uint8)
    out = np.zeros((len(queries), len(codes)), dtype=np.int64)
    for q, query in enumerate(np.asarray(queries, np.uint8)):
        out[q] = np.unpackbits(query[None, :] ^ codes, axis=1).sum(axis=1)
    return out


def _ranked(distance: np.ndarray, ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Positions of the kept items, sorted by (distance, id)."""
    kept = np.flatnonzero(keep)
    return kept[np.lexsort((ids[kept], distance[kept]))]


def knn(
    codes: np.ndarray,
    ids,
    queries: np.ndarray,
    k: int,
    *,
    max_distance: int | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(D int32 (nq, min(k, n)), I int64 (nq, min(k, n)))``: the ``k`` nearest items of each
    query, ties by id, padded; only items within ``max_distance`` and, if given, ``allowed[q]``
    (bool (nq, n)). A row never holds more than the ``n`` items there are."""
    ids = np.asarray(ids, dtype=np.int64)
    k = min(k, len(ids))
    distances = hamming(queries, codes)
    D = np.full((len(queries), k), PAD_DISTANCE, dtype=np.int32)
    I = np.full((len(queries), k), PAD_ID, dtype=np.int64)
    for q, distance in enumerate(distances):
        keep = np.ones(len(ids), bool) if allowed is None else allowed[q].copy()
        if max_distance is not None:
            keep &= distance <= max_distance
        top = _ranked(distance, ids, keep)[:k]
        D[q, : len(top)] = distance[top]
        I[q, : len(top)] = ids[top]
    return D, I


def range_search(
    codes: np.ndarray, ids, queries: np.ndarray, radius: int, *, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lims int64 (nq + 1,), D int32, I int64)``: every item within ``radius`` (inclusive) of
    each query (and in ``allowed[q]`` if given), sorted by (distance, id); query ``q``'s results
    are ``D[lims[q]:lims[q + 1]]``, ``I[lims[q]:lims[q + 1]]``."""
    ids = np.asarray(ids, dtype=np.int64)
    lims, found_d, found_i = [0], [], []
    for q, distance in enumerate(hamming(queries, codes)):
        keep = distance <= radius
        if allowed is not None:
            keep &= allowed[q]
        inside = _ranked(distance, ids, keep)
        found_d.extend(distance[inside].tolist())
        found_i.extend(ids[inside].tolist())
        lims.append(len(found_d))
    return (
        np.array(lims, dtype=np.int64),
        np.array(found_d, dtype=np.int32),
        np.array(found_i, dtype=np.int64),
    )


def probed(
    codes: np.ndarray, queries: np.ndarray, n_tables: int, key_bits: int, radius: int
) -> np.ndarray:
    """``(nq, n)`` bool: the items an ``n_tables``-table hash index probes for each query.

    Table ``t`` keys an item by its bits ``[t * key_bits, (t + 1) * key_bits)``; a query probes
    the buckets whose key is within ``radius`` bits of its own key, in every table.
    """
    n_bits = n_tables * key_bits
    q_bits, x_bits = bits(queries, n_bits), bits(codes, n_bits)
    found = np.zeros((len(queries), len(codes)), dtype=bool)
    for t in range(n_tables):
        part = slice(t * key_bits, (t + 1) * key_bits)
        key_distance = (q_bits[:, None, part] != x_bits[None, :, part]).sum(axis=2)
        found |= key_distance <= radius
    return found


def assert_results_equal(got, expected) -> None:
    """Two result tuples (``(D, I)`` or ``(lims, D, I)``) hold equal arrays of equal dtypes."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
        assert g.dtype == e.dtype, (g.dtype, e.dtype)


def check_index(index, codes: np.ndarray, ids, queries: np.ndarray, ks, radii) -> None:
    """``index.search`` and ``index.range_search`` equal the reference on ``codes`` / ``ids`` for
    every ``k`` of ``ks`` and radius of ``radii``, with the contract's dtypes and shapes."""
    ids = np.asarray(ids, dtype=np.int64)
    assert index.ntotal == len(ids)
    assert sorted(index.ids.tolist()) == sorted(ids.tolist())
    for k in ks:
        D, I = index.search(queries, k)
        assert D.dtype == np.int32 and I.dtype == np.int64
        assert D.shape == I.shape == (len(queries), min(k, len(ids)))  # no more than ntotal
        assert_results_equal((D, I), knn(codes, ids, queries, k))
    for radius in radii:
        lims, D, I = index.range_search(queries, radius)
        assert lims.dtype == np.int64 and lims.shape == (len(queries) + 1,)
        assert D.dtype == np.int32 and I.dtype == np.int64
        assert_results_equal((lims, D, I), range_search(codes, ids, queries, radius))
