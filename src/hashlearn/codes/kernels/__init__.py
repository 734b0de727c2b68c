"""The Hamming kernel layer: exact k-NN and radius scans over packed codes, fit to the CPU.

Variants, best first (the first the CPU and the installation can run is used):

``avx512``
    512-bit vectors with AVX-512 VPOPCNTDQ: 8 codes of up to 8 bytes (16 of up to 4 bytes) per
    popcount instruction.
``avx2``
    256-bit vectors, popcount by nibble lookup (``vpshufb``) and byte sums (``vpsadbw``).
``scalar``
    the ``popcnt`` instruction, one code at a time.
``numba``
    the scans compiled by numba (:mod:`.numba_scan`): the pure fallback when the C library was
    not built, and the reference the native variants are tested against.

The first three are one C source compiled per instruction set (``_hamming.c`` with
``_hamming_scan.h``), built with the package; the library itself reports which of them the running
CPU can execute (``cpuid``), so no instruction the CPU lacks is ever run. Why C and not numba:
numba's auto-vectorised popcounts use 256-bit registers on AVX-512 machines and cannot keep four
queries' words in registers across a block, and measured 1.3-1.5x faiss where the C variant
measures 5-11x (benchmarks/README.md).

The variant is chosen once per process: ``HASHLEARN_KERNEL=avx512|avx2|scalar|numba`` forces one
(an unknown or unsupported name is an error at the first search), :func:`use_kernel` forces one
from Python (tests), :func:`kernel_info` says which one runs and why.

The scans' results are keys ``distance << 40 | rank`` (:mod:`hashlearn.codes.keys`);
:func:`distances` writes every distance of a block instead, for the evaluation engine.
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

import numpy as np

from hashlearn.codes.kernels import numba_scan
from hashlearn.codes.kernels.native import load_native
from hashlearn.codes.kernels.popcount import popcount64, row_distance
from hashlearn.exceptions import InvalidInputError, UnknownNameError

__all__ = [
    "VARIANTS",
    "available_kernels",
    "distances",
    "kernel_info",
    "kernel_variant",
    "knn_search",
    "popcount64",
    "range_search",
    "row_distance",
    "use_kernel",
]

VARIANTS = ("avx512", "avx2", "scalar", "numba")
ENVIRONMENT_VARIABLE = "HASHLEARN_KERNEL"

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _native() -> tuple[Any, str]:
    with _lock:
        if "native" not in _state:
            _state["native"], _state["native_reason"] = load_native()
    return _state["native"], _state["native_reason"]


def available_kernels() -> list[str]:
    """The variants this CPU and this installation can run, best first (``numba`` always)."""
    native, _ = _native()
    supported = native.supported if native is not None else []
    return [v for v in VARIANTS if v in supported or v == "numba"]


def _check_variant(name: Any) -> str:
    if not isinstance(name, str) or name not in VARIANTS:
        raise UnknownNameError(f"unknown kernel {name!r}; available: {', '.join(VARIANTS)}")
    available = available_kernels()
    if name not in available:
        reason = _native()[1]
        why = reason or f"{cpu_model()} lacks the instructions it needs"
        raise InvalidInputError(
            f"the {name} kernel cannot run here ({why}); this machine can run: "
            f"{', '.join(available)}"
        )
    return name


def use_kernel(name: str | None) -> None:
    """Run every following scan with the variant ``name`` (``None`` or ``"auto"``: the best).

    Raises
    ------
    UnknownNameError
        ``name`` is no variant.
    InvalidInputError
        The CPU (or the installation) cannot run it.
    """
    chosen = available_kernels()[0] if name in (None, "auto") else _check_variant(name)
    with _lock:
        _state["variant"] = chosen


def kernel_variant() -> str:
    """The variant scans run with: forced by :func:`use_kernel` or ``HASHLEARN_KERNEL``, else the
    best one available."""
    variant = _state.get("variant")
    if variant is None:
        use_kernel(os.environ.get(ENVIRONMENT_VARIABLE) or None)
        variant = _state["variant"]
    return variant


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def kernel_info() -> dict[str, Any]:
    """What :func:`kernel_variant` runs and why: ``variant``, ``available``, ``cpu``,
    ``forced`` (the environment variable's value, if set) and ``native`` (the library's path, or
    why it is missing)."""
    native, reason = _native()
    return {
        "variant": kernel_variant(),
        "available": available_kernels(),
        "cpu": cpu_model(),
        "forced": os.environ.get(ENVIRONMENT_VARIABLE) or None,
        "native": native.path if native is not None else reason,
    }


def _contiguous(codes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(codes, dtype=np.uint8)


def knn_search(
    codes: np.ndarray, rank: np.ndarray | None, queries: np.ndarray, k: int
) -> np.ndarray:
    """Exact ``k`` smallest keys of every query, ``(nq, k)`` sorted, ``EMPTY_KEY`` past ``len(codes)``.

    ``codes`` and ``queries`` are packed ``uint8`` codes of one width; ``rank`` gives each item's
    rank in id order, ``None`` when it is the item's position.
    """
    variant = kernel_variant()
    codes, queries = _contiguous(codes), _contiguous(queries)
    rank = None if rank is None else np.ascontiguousarray(rank, dtype=np.int64)
    if variant == "numba":
        words = numba_scan.words_view
        return numba_scan.knn_search(words(codes), rank, words(queries), k)
    return _native()[0].knn_search(variant, codes, rank, queries, k)


def range_search(
    codes: np.ndarray, rank: np.ndarray | None, queries: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(lims, keys)``: keys of the items within ``radius`` of each query, sorted per query.
    Arguments as for :func:`knn_search`."""
    variant = kernel_variant()
    codes, queries = _contiguous(codes), _contiguous(queries)
    rank = None if rank is None else np.ascontiguousarray(rank, dtype=np.int64)
    if variant == "numba":
        words = numba_scan.words_view
        return numba_scan.range_search(words(codes), rank, words(queries), radius)
    return _native()[0].range_search(variant, codes, rank, queries, radius)


def distances(codes: np.ndarray, queries: np.ndarray, first: int = 0, last: int | None = None):
    """Every Hamming distance of ``queries`` to ``codes[first:last]``: ``uint16 (nq, last -
    first)``, row ``q`` for query ``q``, in database order.

    ``codes`` and ``queries`` are packed ``uint8`` codes of one width, at most 65535 bits. Runs on
    the calling thread (callers run blocks side by side on :mod:`hashlearn._parallel`); the
    evaluation engine histograms these blocks (:mod:`hashlearn.evaluation._passes`).
    """
    variant = kernel_variant()
    codes, queries = _contiguous(codes), _contiguous(queries)
    last = len(codes) if last is None else last
    if variant == "numba":
        words = numba_scan.words_view
        return numba_scan.distances(words(codes), first, last, words(queries))
    return _native()[0].distances(variant, codes, first, last, queries)
