"""How a set of codes uses its bits and buckets: balance, correlation, occupancy, entropy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.codes.packing import MAX_BITS, check_codes, unpack_bits
from hashlearn.exceptions import InvalidInputError

__all__ = ["CodeStatistics", "code_statistics"]


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
