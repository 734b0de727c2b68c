"""Hamming distances between two sets of packed codes, in numpy (blocks bound the temporaries).

Searches over an index use the compiled scans of :mod:`hashlearn.codes.kernels` instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn.codes.packing import check_codes
from hashlearn.exceptions import CodeFormatError

__all__ = ["as_words", "hamming_distance"]


def as_words(codes: np.ndarray) -> np.ndarray:
    """View packed codes as ``uint64`` words, zero-padding the width to a multiple of 8 bytes."""
    n, width = codes.shape
    n_words = (width + 7) // 8
    if width % 8:
        padded = np.zeros((n, n_words * 8), dtype=np.uint8)
        padded[:, :width] = codes
        codes = padded
    return np.ascontiguousarray(codes).view(np.uint64).reshape(n, n_words)


def _hamming_words(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Hamming distances between ``uint64`` word arrays ``(na, w)`` and ``(nb, w)`` into ``out`` (na, nb)."""
    out[...] = np.bitwise_count(a[:, 0, None] ^ b[None, :, 0])
    for w in range(1, a.shape[1]):
        out += np.bitwise_count(a[:, w, None] ^ b[None, :, w])
    return out


_BLOCK_ELEMENTS = 1 << 22  # distances computed per block: bounds temporaries to ~32 MiB


def hamming_distance(a: Any, b: Any) -> np.ndarray:
    """Hamming distances between two sets of packed codes of the same width.

    Parameters
    ----------
    a : uint8 array of shape (na, n_bytes)
    b : uint8 array of shape (nb, n_bytes)

    Returns
    -------
    numpy.ndarray of dtype int32 and shape (na, nb)
    """
    a = check_codes(a, name="a")
    b = check_codes(b, name="b")
    if a.shape[1] != b.shape[1]:
        raise CodeFormatError(f"a and b have different widths: {a.shape[1]} and {b.shape[1]} bytes")
    wa, wb = as_words(a), as_words(b)
    out = np.empty((len(a), len(b)), dtype=np.int32)
    cols = max(1, min(len(b), _BLOCK_ELEMENTS // 64))
    rows = max(1, _BLOCK_ELEMENTS // cols)
    for r in range(0, len(a), rows):
        for c in range(0, len(b), cols):
            _hamming_words(wa[r : r + rows], wb[c : c + cols], out[r : r + rows, c : c + cols])
    return out
