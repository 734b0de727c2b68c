"""Packed binary codes: the format every hashlearn boundary speaks.

Layout
------
A set of ``n`` codes of ``n_bits`` bits is a C-contiguous ``numpy.uint8`` array of shape
``(n, ceil(n_bits / 8))``. Bit ``i`` of a code is stored in byte ``i // 8`` at bit position
``i % 8``, least significant bit first. This is the layout of faiss binary codes (``IndexBinary*``,
``faiss.fvecs2bitvecs``), so codes move between hashlearn and faiss without conversion. When
``n_bits`` is not a multiple of 8, the unused high bits of the last byte are zero.

A real value ``x`` becomes bit 1 when ``x >= 0`` and bit 0 otherwise (faiss' convention); in
{-1, +1} notation bit 1 is +1 and bit 0 is -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.exceptions import CodeFormatError, InvalidInputError

MAX_BITS = 4096

__all__ = [
    "MAX_BITS",
    "CodeStatistics",
    "check_codes",
    "code_statistics",
    "codes_to_hex",
    "hamming_distance",
    "n_bytes",
    "pack_bits",
    "pack_signs",
    "unpack_bits",
]


def n_bytes(n_bits: int) -> int:
    """Number of bytes of one packed code of ``n_bits`` bits: ``ceil(n_bits / 8)``."""
    n_bits = check_int(n_bits, "n_bits", minimum=1, maximum=MAX_BITS)
    return (n_bits + 7) // 8


def pack_bits(bits: Any) -> np.ndarray:
    """Pack a ``(n, n_bits)`` array of {0, 1} or {-1, +1} values into ``uint8`` codes.

    Parameters
    ----------
    bits : array-like of shape (n, n_bits)
        Booleans, {0, 1} or {-1, +1} integers or floats. 1 and +1 become bit 1.

    Returns
    -------
    numpy.ndarray of dtype uint8 and shape (n, ceil(n_bits / 8))
    """
    array = np.asarray(bits)
    if array.ndim != 2:
        raise InvalidInputError(f"bits must be 2-D (n, n_bits), got shape {array.shape}")
    if not 1 <= array.shape[1] <= MAX_BITS:
        raise InvalidInputError(f"bits must have 1 to {MAX_BITS} columns, got {array.shape[1]}")
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.number):
            raise InvalidInputError(f"bits must be numeric or boolean, got dtype {array.dtype}")
        values = np.unique(array)
        if np.isin(values, (0, 1)).all():
            pass
        elif np.isin(values, (-1, 1)).all():
            pass
        else:
            shown = ", ".join(str(v) for v in values[:5])
            raise InvalidInputError(
                f"bits must be all in {{0, 1}} or all in {{-1, +1}}, found values {shown}"
            )
    return np.packbits(array > 0, axis=1, bitorder="little")


def pack_signs(values: Any) -> np.ndarray:
    """Binarise real values (bit 1 where ``x >= 0``) and pack them; shape ``(n, n_bits)`` -> codes."""
    array = np.asarray(values)
    if array.ndim != 2 or not 1 <= array.shape[1] <= MAX_BITS:
        raise InvalidInputError(
            f"values must be 2-D (n, n_bits) with 1..{MAX_BITS} columns, got shape {array.shape}"
        )
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise InvalidInputError("values hold NaN; cannot take their sign")
    return np.packbits(array >= 0, axis=1, bitorder="little")


def check_codes(codes: Any, n_bits: int | None = None, name: str = "codes") -> np.ndarray:
    """Check that ``codes`` is a packed code array (of ``n_bits`` bits when given); return it contiguous.

    Raises :class:`CodeFormatError` for a wrong type, dtype, rank or width, or set padding bits.
    No silent casts: an ``int64`` array of 0/255 values is an error, not a code array.
    """
    if not isinstance(codes, np.ndarray):
        raise CodeFormatError(
            f"{name} must be a numpy.ndarray of uint8, got {type(codes).__name__}"
        )
    if codes.dtype != np.uint8:
        raise CodeFormatError(
            f"{name} must have dtype uint8 (packed bits), got {codes.dtype}; use hashlearn.pack_bits"
        )
    if codes.ndim != 2:
        raise CodeFormatError(f"{name} must be 2-D (n, n_bytes), got shape {codes.shape}")
    if n_bits is not None:
        width = n_bytes(n_bits)
        if codes.shape[1] != width:
            raise CodeFormatError(
                f"{name} are {codes.shape[1]} bytes wide, but {n_bits}-bit codes take {width} bytes"
            )
        spare = 8 * width - n_bits
        if spare and len(codes) and (codes[:, -1] >> (8 - spare)).any():
            raise CodeFormatError(
                f"{name} have bits set beyond bit {n_bits}: the unused high bits of the last byte must be 0"
            )
    elif codes.shape[1] == 0:
        raise CodeFormatError(f"{name} have width 0")
    return np.ascontiguousarray(codes)


def unpack_bits(codes: Any, n_bits: int, *, signed: bool = False) -> np.ndarray:
    """Unpack ``uint8`` codes into a ``(n, n_bits)`` array of {0, 1} (``uint8``) or {-1, +1} (``int8``)."""
    codes = check_codes(codes, n_bits)
    bits = np.unpackbits(codes, axis=1, count=n_bits, bitorder="little")
    if signed:
        return (bits.astype(np.int8) * 2 - 1).astype(np.int8)
    return bits


def codes_to_hex(codes: Any) -> list[str]:
    """Hex strings of codes, two digits per byte in storage order (byte 0 first)."""
    codes = check_codes(codes)
    return [row.tobytes().hex() for row in codes]


def _as_words(codes: np.ndarray) -> np.ndarray:
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
    wa, wb = _as_words(a), _as_words(b)
    out = np.empty((len(a), len(b)), dtype=np.int32)
    cols = max(1, min(len(b), _BLOCK_ELEMENTS // 64))
    rows = max(1, _BLOCK_ELEMENTS // cols)
    for r in range(0, len(a), rows):
        for c in range(0, len(b), cols):
            _hamming_words(wa[r : r + rows], wb[c : c + cols], out[r : r + rows, c : c + cols])
    return out


@dataclass(frozen=True)
class CodeStatistics:
    """How a set of codes uses its bits and its buckets (see :func:`code_statistics`).

    Attributes
    ----------
    n_codes, n_bits : int
    bit_means : float64 (n_bits,), the share of codes with each bit set (0.5: balanced)
    correlation : float64 (n_bits, n_bits), Pearson correlation between bits; 0 where a bit is
        constant, 1 on the diagonal
    mean_abs_correlation : float, mean ``|correlation|`` over pairs of distinct bits
    distinct : int, number of distinct codes
    largest_bucket : int, codes sharing the most frequent code
    entropy_bits : float, Shannon entropy (base 2) of the distribution of codes; at most
        ``min(n_bits, log2(n_codes))``
    """

    n_codes: int
    n_bits: int
    bit_means: np.ndarray
    correlation: np.ndarray
    mean_abs_correlation: float
    distinct: int
    largest_bucket: int
    entropy_bits: float


def code_statistics(codes: Any, n_bits: int) -> CodeStatistics:
    """Bit balance, bit correlation and bucket occupancy of ``codes``.

    Good codes use every bit half of the time (``bit_means`` near 0.5), with bits uncorrelated
    (``mean_abs_correlation`` near 0), and spread over many buckets (``entropy_bits`` near its
    maximum, a small ``largest_bucket``): a hash-table lookup then inspects few items.

    Raises
    ------
    CodeFormatError
        ``codes`` is not a packed code array of ``n_bits`` bits.
    InvalidInputError
        ``codes`` is empty.
    """
    n_bits = check_int(n_bits, "n_bits", minimum=1, maximum=MAX_BITS)
    codes = check_codes(codes, n_bits)
    if len(codes) == 0:
        raise InvalidInputError("codes is empty: no statistics of 0 codes")
    bits = unpack_bits(codes, n_bits).astype(np.float64)
    means = bits.mean(axis=0)
    centred = bits - means
    spread = np.sqrt((centred**2).mean(axis=0))
    covariance = centred.T @ centred / len(bits)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = covariance / np.outer(spread, spread)
    correlation[~np.isfinite(correlation)] = 0.0
    np.fill_diagonal(correlation, 1.0)
    off_diagonal = ~np.eye(n_bits, dtype=bool)
    mean_abs = float(np.abs(correlation[off_diagonal]).mean()) if n_bits > 1 else 0.0
    _, counts = np.unique(codes, axis=0, return_counts=True)
    shares = counts / len(codes)
    return CodeStatistics(
        n_codes=len(codes),
        n_bits=n_bits,
        bit_means=means,
        correlation=correlation,
        mean_abs_correlation=mean_abs,
        distinct=len(counts),
        largest_bucket=int(counts.max()),
        entropy_bits=float(-(shares * np.log2(shares)).sum()),
    )
