"""Validation mAP: leave-one-out retrieval among the validation items, after each epoch.

Every validation item is used as a query against *the other validation items* (leave-one-out:
each query is removed from its own ranking), ranked by Hamming distance with ties by position,
relevance = shared label, full-ranking mAP as :func:`hashlearn.codes.ranking.average_precision`
defines it. We chose this over "validation queries against training codes" because it is a
function of held-out data only: training codes are fitted to their own labels, so a database of
them rewards memorisation, and its score would depend on the training set as well as on the
model. Leave-one-out mAP measures what retrieval needs, that unseen items of the same label land
close to each other, and costs one encoding of the validation set per epoch instead of one of the
training set.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hashlearn.codes import pack_signs
from hashlearn.codes.metrics import average_precision
from hashlearn.codes.ranking import hamming_ranking, relevance_matrix
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.deep.trainer.data import BatchSource, input_dtype

__all__ = ["encode_source", "validation_map"]


def validation_map(
    codes: np.ndarray, labels: np.ndarray, *, chunk_size: int | None = None
) -> float:
    """Leave-one-out mAP of a validation set against itself.

    Every item is a query against the ``n - 1`` others: the full Hamming ranking of the set
    (:func:`hashlearn.codes.ranking.hamming_ranking`, ties by position) with the query itself
    removed, relevance by shared label (:func:`hashlearn.codes.ranking.relevance_matrix`), average
    precision over that ranking (:func:`hashlearn.codes.ranking.average_precision`), mean over
    queries (queries with no relevant item count as 0).

    Parameters
    ----------
    codes : numpy.ndarray of dtype uint8 and shape (n, n_bytes)
        Packed codes, ``n >= 2``.
    labels : array-like of shape (n,) or (n, n_classes)
        Class labels or multi-label indicators.
    chunk_size : int or None
        Queries ranked at once; None keeps the temporaries around 64 MiB.

    Returns
    -------
    float in [0, 1]
    """
    n = len(codes)
    if n < 2:
        raise InvalidInputError(f"validation mAP needs at least 2 items, got {n}")
    labels = np.asarray(labels)
    if len(labels) != n:
        raise InvalidInputError(f"{len(labels)} validation labels for {n} codes")
    rows = chunk_size or max(1, (64 * 2**20) // (24 * n))
    total = 0.0
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        _, order = hamming_ranking(codes[start:stop], codes)
        others = order != np.arange(start, stop)[:, None]
        order = order[others].reshape(stop - start, n - 1)
        relevant = np.take_along_axis(relevance_matrix(labels[start:stop], labels), order, axis=1)
        total += float(average_precision(relevant).sum())
    return total / n


def encode_source(
    network: nn.Module, source: BatchSource, device: torch.device, batch_size: int
) -> np.ndarray:
    """Packed codes of every item of ``source`` (float32 outputs, eval mode)."""
    network.eval()
    dtype = input_dtype(network)
    n = len(source)
    chunks = []
    with torch.inference_mode():
        for begin in range(0, n, batch_size):
            images, _ = source.get_batch(torch.arange(begin, min(begin + batch_size, n)))
            chunks.append(network(images.to(device, dtype)).float().cpu().numpy())
    return pack_signs(np.concatenate(chunks))
