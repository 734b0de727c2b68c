"""Codes as signs: the one bit convention of every hasher, for the code matrices they optimise.

A bit is 1 where a projection is ``>= 0`` (``sign(0) = +1``), the rule of
:meth:`Hasher.encode <hashlearn.hashers.base.Hasher.encode>` and :func:`hashlearn.codes.pack_signs`;
methods that alternate over codes ``B`` in ``{-1, +1}`` take their sign matrices from here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["signs"]


def signs(values: np.ndarray, dtype: DTypeLike = np.float64) -> np.ndarray:
    """``+1`` where ``values >= 0``, ``-1`` elsewhere, as an array of ``dtype`` (float64) and the
    shape of ``values``."""
    return np.where(values >= 0, 1.0, -1.0).astype(dtype, copy=False)
