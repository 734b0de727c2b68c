"""The compiled C scans (``_hamming.c``), called through ctypes on hashlearn's threads.

The extension ``hashlearn.codes.kernels._hamming`` is built when the package is installed (an
optional build: without a C compiler the package installs and the numba scans serve instead). It
holds one variant of the scan per CPU class and reports which ones the running CPU can execute;
:mod:`hashlearn.codes.kernels` chooses among them. ctypes releases the GIL for the length of a
call, so the work units of one search run side by side on the threads of
:mod:`hashlearn._parallel`.

A search is cut into units of (a block of queries, a part of the database): query blocks when
there are enough queries for every thread, database parts otherwise (one query per call, the
service's case, is split over the database). Each unit keeps its own top-k heaps (merged after)
or hit list (concatenated after, then sorted by query and key), so units share no memory.
"""

from __future__ import annotations

import ctypes
import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hashlearn._parallel import get_num_threads, parallel_map
from hashlearn.codes.keys import EMPTY_KEY

__all__ = ["VARIANT_IDS", "NativeKernels", "load_native"]

VARIANT_IDS = {"scalar": 0, "avx2": 1, "avx512": 2}
"""The C library's number for each variant."""

_NO_MEMORY, _UNSUPPORTED = -1, -2
_MIN_PART = 1 << 16  # the database is split for threads only in parts of at least this many codes
_QUERIES_PER_UNIT = 64  # fewest queries a query block gets when there are more queries than threads


class NativeKernels:
    """The loaded library: which variants the CPU can run, and the k-NN and radius scans."""

    def __init__(self, library: ctypes.CDLL, path: str) -> None:
        self.path = path
        self._lib = library
        pointer, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        library.hl_supported.argtypes = []
        library.hl_supported.restype = i32
        library.hl_knn.argtypes = [i32, pointer, i64, i64, i32, pointer, pointer, i32, i32, pointer]
        library.hl_knn.restype = i64
        library.hl_range.argtypes = [
            i32, pointer, i64, i64, i32, pointer, pointer, i32, i64, pointer, pointer, i64,
        ]  # fmt: skip
        library.hl_range.restype = i64
        library.hl_distances.argtypes = [i32, pointer, i64, i64, i32, pointer, i32, pointer]
        library.hl_distances.restype = i64
        library.hl_peak.argtypes = [i32, i64, pointer]
        library.hl_peak.restype = i64
        mask = library.hl_supported()
        self.supported = [name for name, bit in VARIANT_IDS.items() if mask & (1 << bit)]

    # ------------------------------------------------------------------ searches
    def knn_search(
        self, variant: str, codes: np.ndarray, rank: np.ndarray | None, queries: np.ndarray, k: int
    ) -> np.ndarray:
        """The ``k`` smallest keys of every query, ``(nq, k)`` sorted, ``EMPTY_KEY`` padded.

        ``codes`` and ``queries`` are C-contiguous ``uint8`` arrays of one code size; ``rank``
        gives each item's rank in id order, ``None`` when it is its position.
        """
        n, nq = len(codes), len(queries)
        query_block, n_parts, part = _plan(n, nq)
        heaps = np.full((n_parts, nq, k), EMPTY_KEY, dtype=np.int64)
        call = self._caller(variant, codes, rank, queries)

        def unit(q0: int, q1: int, p: int) -> None:
            out = heaps[p, q0:q1]
            call(self._lib.hl_knn, p * part, min(n, (p + 1) * part), q0, q1, k, out.ctypes.data)

        parallel_map(unit, _units(nq, query_block, n_parts, n, part))
        if n_parts == 1:
            return np.sort(heaps[0], axis=1)
        merged = heaps.transpose(1, 0, 2).reshape(nq, n_parts * k)
        return np.sort(np.partition(merged, k - 1, axis=1)[:, :k], axis=1)

    def range_search(
        self,
        variant: str,
        codes: np.ndarray,
        rank: np.ndarray | None,
        queries: np.ndarray,
        radius: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(lims, keys)``: the keys of the items within ``radius`` of each query, sorted per
        query, found in one pass (a unit whose hits overflow its buffer runs again with room
        for all of them). Arguments as for :meth:`knn_search`."""
        n, nq = len(codes), len(queries)
        query_block, n_parts, part = _plan(n, nq)
        call = self._caller(variant, codes, rank, queries)

        def unit(q0: int, q1: int, p: int) -> tuple[np.ndarray, np.ndarray]:
            d0, d1 = p * part, min(n, (p + 1) * part)
            capacity = 1024 + 16 * (q1 - q0)
            while True:
                found_query = np.empty(capacity, dtype=np.int64)
                found_key = np.empty(capacity, dtype=np.int64)
                count = call(
                    self._lib.hl_range, d0, d1, q0, q1, radius,
                    found_query.ctypes.data, found_key.ctypes.data, capacity,
                )  # fmt: skip
                if count <= capacity:
                    return found_query[:count] + q0, found_key[:count]
                capacity = count

        parts = parallel_map(unit, _units(nq, query_block, n_parts, n, part))
        found_query = np.concatenate([p[0] for p in parts])
        keys = np.concatenate([p[1] for p in parts])
        order = np.lexsort((keys, found_query))
        lims = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(np.bincount(found_query, minlength=nq), out=lims[1:])
        return lims, keys[order]

    def distances(
        self, variant: str, codes: np.ndarray, first: int, last: int, queries: np.ndarray
    ) -> np.ndarray:
        """Every distance of ``queries`` to ``codes[first:last]``, ``uint16 (nq, last - first)``,
        on the calling thread (the evaluation engine runs its own blocks side by side)."""
        out = np.empty((len(queries), last - first), dtype=np.uint16)
        if out.size:
            status = self._lib.hl_distances(
                VARIANT_IDS[variant], codes.ctypes.data, first, last, codes.shape[1],
                queries.ctypes.data, len(queries), out.ctypes.data,
            )  # fmt: skip
            _check(status, variant)
        return out

    def peak_words_per_second(self, variant: str, seconds: float = 0.2) -> float:
        """The most 64-bit words ``variant`` can xor and popcount per second on one core,
        measured on registers alone (no memory): the ceiling a scan is compared with."""
        words = ctypes.c_int64(0)
        rounds, elapsed = 1 << 16, 0.0
        while elapsed < seconds:
            rounds *= 2
            start = time.perf_counter()
            self._lib.hl_peak(VARIANT_IDS[variant], rounds, ctypes.byref(words))
            elapsed = time.perf_counter() - start
        return words.value / elapsed

    # ------------------------------------------------------------------ helpers
    def _caller(
        self, variant: str, codes: np.ndarray, rank: np.ndarray | None, queries: np.ndarray
    ) -> Callable[..., int]:
        """``call(function, first, last, q0, q1, *rest)`` for one unit, errors turned into
        exceptions; keeps the arrays alive for the length of the search."""
        variant_id = VARIANT_IDS[variant]
        code_size = codes.shape[1]
        codes_at = codes.ctypes.data
        rank_at = None if rank is None else rank.ctypes.data
        queries_at = queries.ctypes.data

        def call(function: Any, first: int, last: int, q0: int, q1: int, *rest: Any) -> int:
            status = function(
                variant_id, codes_at, first, last, code_size, rank_at,
                queries_at + q0 * code_size, q1 - q0, *rest,
            )  # fmt: skip
            return _check(status, variant)

        return call


def _check(status: int, variant: str) -> int:
    """``status`` of a library call, or the exception its error code stands for."""
    if status == _NO_MEMORY:
        raise MemoryError("the Hamming scan could not allocate its block buffers")
    if status == _UNSUPPORTED:
        raise RuntimeError(f"the {variant} kernel cannot run on this CPU")
    return int(status)


def _plan(n: int, nq: int) -> tuple[int, int, int]:
    """``(query_block, n_parts, part)``: query blocks for the threads when there are enough
    queries, else database parts of ``part`` codes (each at least ``_MIN_PART`` codes)."""
    threads = get_num_threads()
    n_qblocks = max(1, min(threads, nq // _QUERIES_PER_UNIT))
    query_block = -(-nq // n_qblocks)
    n_parts = 1
    if n_qblocks < threads:
        n_parts = max(1, min(threads // n_qblocks, n // _MIN_PART))
    return query_block, n_parts, -(-n // n_parts)


def _units(
    nq: int, query_block: int, n_parts: int, n: int, part: int
) -> list[tuple[int, int, int]]:
    return [
        (q0, min(q0 + query_block, nq), p)
        for q0 in range(0, nq, query_block)
        for p in range(n_parts)
        if p * part < n
    ]


def load_native() -> tuple[NativeKernels | None, str]:
    """The compiled library and ``""``, or ``None`` and why it is not there."""
    try:
        spec = importlib.util.find_spec("hashlearn.codes.kernels._hamming")
    except ImportError as exc:  # pragma: no cover - a broken installation
        return None, f"the compiled scans cannot be found: {exc}"
    if spec is None or not spec.origin:
        return None, "the compiled scans were not built (no C compiler at install time?)"
    try:
        return NativeKernels(ctypes.CDLL(spec.origin), spec.origin), ""
    except OSError as exc:
        return None, f"the compiled scans in {spec.origin} cannot be loaded: {exc}"
    except AttributeError as exc:  # built from an older source: rebuild (make install)
        return None, f"the compiled scans in {spec.origin} are out of date (rebuild them): {exc}"
