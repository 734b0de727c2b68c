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

from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.exceptions import CodeFormatError, InvalidInputError

__all__ = [
    "MAX_BITS",
    "check_codes",
    "codes_to_hex",
    "n_bytes",
    "pack_bits",
    "pack_signs",
    "unpack_bits",
]

MAX_BITS = 4096


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
