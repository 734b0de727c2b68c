"""Search results as a file: the ``.npz`` that ``hashlearn search --out`` writes.

Layout (arrays by name, nothing pickled)::

    k nearest       distances (nq, k), ids int64 (nq, k): as ``search`` returns them
    within radius   lims int64 (nq + 1,), distances (m,), ids int64 (m,): as ``range_search``
"""

from __future__ import annotations

import os

import numpy as np

from hashlearn._io import write_arrays

__all__ = ["write_search_results"]


def write_search_results(
    path: str | os.PathLike[str],
    distances: np.ndarray,
    ids: np.ndarray,
    lims: np.ndarray | None = None,
) -> None:
    """Save the results of a search to an ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, under that very name.
    distances, ids : numpy.ndarray
        ``D, I`` of :meth:`~hashlearn.index.BinaryIndex.search` (or of ``search_rerank``), or
        of :meth:`~hashlearn.index.BinaryIndex.range_search` with its ``lims``.
    lims : numpy.ndarray, optional
        The offsets of a range search; written first, as ``lims``, when given.

    >>> D, I = index.search(queries, 10)  # doctest: +SKIP
    >>> write_search_results("hits.npz", D, I)  # doctest: +SKIP
    """
    if lims is None:
        write_arrays(path, distances=distances, ids=ids)
    else:
        write_arrays(path, lims=lims, distances=distances, ids=ids)
