"""The evaluation driver: packed codes and labels in, every retrieval metric out.

:func:`evaluate_retrieval` (and :func:`evaluate_codes`, its means) computes mAP over the full
ranking, mAP@k, P@k, R@k, NDCG@k, precision and recall within a Hamming radius and the
precision-recall curve, in one compiled pass per group of queries (:mod:`._passes`; the
tie-averaged expectations in :mod:`._tie_averaged`). The
definitions are those of the ranking primitives in :mod:`hashlearn.codes.ranking`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._progress import progress
from hashlearn._validation import check_int, check_radius
from hashlearn.codes.distance import as_words
from hashlearn.codes.metrics import check_precision_convention, precision_sum, safe_divide
from hashlearn.codes.ranking import check_code_pair, check_label_pair
from hashlearn.evaluation._passes import run_passes
from hashlearn.evaluation._tie_averaged import tie_averaged
from hashlearn.exceptions import InvalidInputError

__all__ = [
    "TIES",
    "RetrievalEvaluation",
    "check_cutoffs",
    "evaluate_codes",
    "evaluate_retrieval",
]

# --------------------------------------------------------------------------------------------
# one call: codes + labels -> metrics
# --------------------------------------------------------------------------------------------


def check_cutoffs(values: Any, name: str) -> list[int]:
    """Metric cut-offs (``ks``, ``map_at``...) as a list of distinct ints >= 1, in given order.

    ``values`` is an int, a sequence of ints, or None (no cut-off); a bad value raises
    InvalidInputError naming ``name``.
    """
    if values is None:
        return []
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Iterable) or isinstance(values, (str, bytes)):
        raise InvalidInputError(f"{name} must be a sequence of integers >= 1, got {values!r}")
    cutoffs: list[int] = []
    for value in values:
        value = check_int(value, f"each value of {name}", minimum=1)
        if value not in cutoffs:
            cutoffs.append(value)
    return cutoffs


TIES = ("position", "average")


@dataclass(frozen=True)
class RetrievalEvaluation:
    """Everything :func:`evaluate_retrieval` measured.

    Attributes
    ----------
    metrics : dict of str to float
        Means over queries, in the order described by :func:`evaluate_codes`.
    per_query : dict of str to numpy.ndarray
        The per-query value of every metric, shape (nq,) each.
    n_relevant : numpy.ndarray of int64, shape (nq,)
        Relevant database items per query.
    pr_curve : dict of str to numpy.ndarray
        Precision-recall curve by Hamming radius sweep: ``"radius"`` (0 .. n_bits, the code
        length), ``"precision"`` and ``"recall"`` within each radius under
        ``precision_convention``, and ``"retrieved"`` (mean number of items within each radius).
    ties : str
        How tied items were ordered (``"position"`` or ``"average"``).
    precision_convention : str
        ``"per-query"``: the curve and ``"P@r<radius>"`` / ``"R@r<radius>"`` are means over
        queries of :func:`precision_within_radius` and :func:`recall_within_radius` (an empty
        ball has precision 0). ``"pooled"``: they are the good pairs over the retrieved (or
        relevant) pairs, summed over the queries, as the Spectral Hashing and ITQ evaluation
        code computes them; ``per_query["P@r<radius>"]`` is then NaN for a query whose ball is
        empty, and these two metrics are not the means of their ``per_query`` values. See
        :mod:`hashlearn.codes.metrics`.
    """

    metrics: dict[str, float]
    per_query: dict[str, np.ndarray]
    n_relevant: np.ndarray
    pr_curve: dict[str, np.ndarray]
    ties: str
    precision_convention: str = "per-query"


def _label_words(labels: np.ndarray) -> np.ndarray:
    """Labels as ``uint64`` words for the engine: class labels (n, 1), or indicator bits (n, w)."""
    if labels.ndim == 1:
        return labels.astype(np.int64).view(np.uint64).reshape(-1, 1)
    packed = np.packbits(labels, axis=1, bitorder="little")
    return as_words(packed) if packed.shape[1] else np.zeros((len(labels), 1), np.uint64)


def _discounts(k: int) -> np.ndarray:
    """``cumulative[m]`` = sum over ranks i = 1..m of 1 / log2(i + 1)."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])


def _ideal_dcg(n_relevant: np.ndarray, shared: np.ndarray, multilabel: bool, k: int) -> np.ndarray:
    """DCG@k of the best possible ranking: the highest gains first."""
    cumulative = _discounts(k)
    if not multilabel:
        return cumulative[np.minimum(n_relevant, k)]
    ideal = np.zeros(len(shared))
    placed = np.zeros(len(shared), dtype=np.int64)
    for s in range(shared.shape[1] - 1, 0, -1):
        end = np.minimum(placed + shared[:, s], k)
        ideal += (2.0**s - 1.0) * (cumulative[end] - cumulative[np.minimum(placed, k)])
        placed = end
    return ideal


def evaluate_retrieval(
    query_codes: np.ndarray,
    query_labels: Any,
    db_codes: np.ndarray,
    db_labels: Any,
    *,
    ks: Iterable[int] | int | None = (10,),
    map_at: Iterable[int] | int | None = (10,),
    ndcg_at: Iterable[int] | int | None = (),
    radius: int | None = 2,
    ties: str = "position",
    n_bits: int | None = None,
    precision_convention: str = "per-query",
    chunk_size: int | None = None,
    verbose: bool = False,
) -> RetrievalEvaluation:
    """Evaluate Hamming ranking for every query: metric means, per-query values and the PR curve.

    See :func:`evaluate_codes` for the parameters and the metrics; this returns them with the
    per-query values, the relevant counts and the precision-recall curve by radius sweep.

    ``ties`` chooses how items at equal Hamming distance are ordered:

    * ``"position"`` (default): by database position, as :func:`hamming_ranking` orders them,
      so every value equals that of the building-block functions on that ranking.
    * ``"average"``: each rank-based metric is its expected value over all orders of tied
      items, each equally likely (McSherry & Najork, ECIR 2008). The result does not depend on
      the order of the database at all, which makes it the fairest way to compare short codes,
      where ties are many. Precision and recall within a radius do not depend on ties.

    ``n_bits`` is the code length (default: 8 bits per byte of the packed codes); the
    precision-recall curve runs over radii 0 .. ``n_bits``, so a 12-bit code's curve stops at
    12, not at 16. ``precision_convention`` (``"per-query"`` or ``"pooled"``) chooses how
    precision and recall within a radius treat queries whose Hamming ball is empty, for the
    curve and for ``"P@r<radius>"`` / ``"R@r<radius>"`` (see :class:`RetrievalEvaluation`).

    Memory is bounded by a few arrays of ``n_bits + 1`` counts per query: the ranking is never
    materialised, so 10,000 queries against 1,000,000 items need no more memory than the codes
    and labels themselves.
    """
    q_codes, d_codes = check_code_pair(query_codes, db_codes)
    q_labels, d_labels = check_label_pair(query_labels, db_labels)
    if len(q_codes) == 0:
        raise InvalidInputError("query_codes is empty: there are no queries to evaluate")
    if len(d_codes) == 0:
        raise InvalidInputError("db_codes is empty: there is no database to search")
    if len(q_labels) != len(q_codes):
        raise InvalidInputError(
            f"query_labels has {len(q_labels)} rows but query_codes has {len(q_codes)} codes"
        )
    if len(d_labels) != len(d_codes):
        raise InvalidInputError(
            f"db_labels has {len(d_labels)} rows but db_codes has {len(d_codes)} codes"
        )
    if ties not in TIES:
        raise InvalidInputError(f"ties must be one of {', '.join(map(repr, TIES))}, got {ties!r}")
    ks_ = check_cutoffs(ks, "ks")
    map_at_ = check_cutoffs(map_at, "map_at")
    ndcg_at_ = check_cutoffs(ndcg_at, "ndcg_at")
    radius_ = None if radius is None else check_radius(radius)
    convention = check_precision_convention(precision_convention)
    rows = 256 if chunk_size is None else check_int(chunk_size, "chunk_size", minimum=1)
    nq, width = len(q_codes), 8 * q_codes.shape[1]
    n_bits = width if n_bits is None else check_int(n_bits, "n_bits", minimum=1)
    if n_bits not in range(width - 7, width + 1):
        raise InvalidInputError(
            f"n_bits={n_bits} does not fit codes of {width // 8} bytes, which hold "
            f"{width - 7} to {width} bits"
        )
    multilabel = q_labels.ndim == 2
    k_max = max([*ks_, *map_at_, *ndcg_at_, 1])
    position = ties == "position"

    d_words = as_words(d_codes)
    q_label_words, d_label_words = _label_words(q_labels), _label_words(d_labels)
    parts = []
    with progress(total=nq, desc="evaluating", unit="query", disable=not verbose) as bar:
        for start in range(0, nq, rows):
            stop = min(start + rows, nq)
            parts.append(
                run_passes(
                    q_codes[start:stop],
                    q_label_words[start:stop],
                    d_codes,
                    d_label_words,
                    multilabel=multilabel,
                    k_max=k_max,
                    position=position,
                    d_words=d_words,
                )
            )
            bar.update(stop - start)
    widest = max(p["shared"].shape[1] for p in parts)  # chunks see different label counts
    for p in parts:
        p["shared"] = np.pad(p["shared"], ((0, 0), (0, widest - p["shared"].shape[1])))
    passes = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    # the engine counts distances over whole 64-bit words; the codes have width bits, of which
    # the first n_bits may differ
    count, relevant = passes["count"][:, : width + 1], passes["relevant"][:, : width + 1]
    if count[:, n_bits + 1 :].any():
        raise InvalidInputError(
            f"some codes differ beyond bit {n_bits}: they are not {n_bits}-bit codes (the padding "
            "bits of the last byte must be 0)"
        )
    n_relevant = relevant.sum(axis=1)
    ideal = {k: _ideal_dcg(n_relevant, passes["shared"], multilabel, k) for k in ndcg_at_}

    per_query: dict[str, np.ndarray] = {}
    if position:
        top_gain = passes["top_gain"]
        top = top_gain > 0
        discount = 1.0 / np.log2(np.arange(2, k_max + 2))
        per_query["mAP"] = safe_divide(passes["precision_sum"], n_relevant)
        for k in map_at_:
            per_query[f"mAP@{k}"] = safe_divide(precision_sum(top[:, :k]), top[:, :k].sum(axis=1))
        hits_at = {k: top[:, :k].sum(axis=1, dtype=np.int64) for k in ks_}
        for k in ndcg_at_:
            dcg = top_gain[:, :k] @ discount[:k]
            per_query[f"NDCG@{k}"] = safe_divide(dcg, ideal[k])
    else:
        ap = np.zeros(nq)
        ap_at = np.zeros((nq, len(map_at_)))
        hits = np.zeros((nq, len(ks_)))
        dcg_at = np.zeros((nq, len(ndcg_at_)))
        ideal_matrix = np.stack([ideal[k] for k in ndcg_at_], axis=1) if ndcg_at_ else dcg_at
        tie_averaged(
            count,
            relevant,
            np.ascontiguousarray(passes["gain_sum"][:, : width + 1]),
            multilabel,
            np.array(ks_, dtype=np.int64),
            np.array(map_at_, dtype=np.int64),
            np.array(ndcg_at_, dtype=np.int64),
            np.ascontiguousarray(ideal_matrix),
            ap,
            ap_at,
            hits,
            dcg_at,
        )
        per_query["mAP"] = ap
        for i, k in enumerate(map_at_):
            per_query[f"mAP@{k}"] = ap_at[:, i]
        hits_at = {k: hits[:, i] for i, k in enumerate(ks_)}
        for i, k in enumerate(ndcg_at_):
            per_query[f"NDCG@{k}"] = dcg_at[:, i]
    for k in ks_:
        per_query[f"P@{k}"] = hits_at[k] / np.float64(k)
        per_query[f"R@{k}"] = safe_divide(hits_at[k], n_relevant)

    within = np.cumsum(count[:, : n_bits + 1], axis=1)
    within_relevant = np.cumsum(relevant[:, : n_bits + 1], axis=1)
    precision_curve = safe_divide(within_relevant, within)
    recall_curve = safe_divide(within_relevant, n_relevant[:, None])
    pooled: dict[str, float] = {}
    if convention == "pooled":
        curve_precision = safe_divide(within_relevant.sum(axis=0), within.sum(axis=0))
        curve_recall = safe_divide(within_relevant.sum(axis=0), n_relevant.sum())
    else:
        curve_precision, curve_recall = precision_curve.mean(axis=0), recall_curve.mean(axis=0)
    if radius_ is not None:
        r = min(radius_, n_bits)
        per_query[f"P@r{radius_}"] = precision_curve[:, r]
        per_query[f"R@r{radius_}"] = recall_curve[:, r]
        if convention == "pooled":
            per_query[f"P@r{radius_}"] = np.where(within[:, r] > 0, precision_curve[:, r], np.nan)
            pooled = {f"P@r{radius_}": curve_precision[r], f"R@r{radius_}": curve_recall[r]}
    order = ["mAP", *(f"mAP@{k}" for k in map_at_)]
    order += [name for k in ks_ for name in (f"P@{k}", f"R@{k}")]
    order += [f"NDCG@{k}" for k in ndcg_at_]
    if radius_ is not None:
        order += [f"P@r{radius_}", f"R@r{radius_}"]
    per_query = {name: per_query[name] for name in order}
    return RetrievalEvaluation(
        metrics={
            name: float(pooled[name]) if name in pooled else float(values.mean())
            for name, values in per_query.items()
        },
        per_query=per_query,
        n_relevant=n_relevant,
        pr_curve={
            "radius": np.arange(n_bits + 1),
            "precision": curve_precision,
            "recall": curve_recall,
            "retrieved": within.mean(axis=0),
        },
        ties=ties,
        precision_convention=convention,
    )


def evaluate_codes(
    query_codes: np.ndarray,
    query_labels: Any,
    db_codes: np.ndarray,
    db_labels: Any,
    *,
    ks: Iterable[int] | int | None = (10,),
    map_at: Iterable[int] | int | None = (10,),
    ndcg_at: Iterable[int] | int | None = (),
    radius: int | None = 2,
    ties: str = "position",
    n_bits: int | None = None,
    precision_convention: str = "per-query",
    chunk_size: int | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """Rank the database for every query by Hamming distance and report retrieval metrics.

    Nothing of size ``nq * n`` is ever built: a compiled engine streams over the database twice
    per group of queries (see :mod:`hashlearn.evaluation._passes`) and keeps ``n_bits + 1``
    counts per query, so 10,000 queries against 1,000,000 items run in bounded memory. Results
    equal those of the building blocks on the full ranking (:func:`hamming_ranking`,
    :func:`relevance_matrix`, :func:`average_precision`, ...) and do not depend on ``chunk_size``.

    Parameters
    ----------
    query_codes : numpy.ndarray of dtype uint8 and shape (nq, n_bytes)
        Packed query codes.
    query_labels : array-like of shape (nq,) or (nq, n_classes)
        Query labels (see :func:`relevance_matrix`).
    db_codes : numpy.ndarray of dtype uint8 and shape (n, n_bytes)
        Packed database codes, same width as ``query_codes``.
    db_labels : array-like of shape (n,) or (n, n_classes)
        Database labels, same kind as ``query_labels``.
    ks : int or sequence of int >= 1, default (10,)
        Cut-offs for precision and recall (``"P@k"``, ``"R@k"``). Empty or None for none.
    map_at : int or sequence of int >= 1, default (10,)
        Cut-offs for mAP@k (``"mAP@k"``, see :func:`average_precision`). Empty or None for none.
    ndcg_at : int or sequence of int >= 1, default ()
        Cut-offs for NDCG@k (``"NDCG@k"``): ``DCG@k / ideal DCG@k`` with
        ``DCG@k = sum over ranks i <= k of (2**s_i - 1) / log2(i + 1)``, where ``s_i`` is the
        number of labels the item ranked ``i`` shares with the query (1 or 0 for single-label
        data, so the gain is its relevance), and the ideal DCG ranks the database by gain.
    radius : int >= 0 or None, default 2
        Hamming radius for ``"P@r<radius>"`` and ``"R@r<radius>"``; None to skip them.
    ties : {"position", "average"}, default "position"
        Order of items at equal distance: by database position, or the expected value over all
        orders (see :func:`evaluate_retrieval`).
    n_bits : int or None, default None
        The code length, when the packed width holds padding bits (a 12-bit code in 2 bytes);
        None: 8 bits per byte. ``radius`` is capped at it.
    precision_convention : {"per-query", "pooled"}, default "per-query"
        ``"P@r<radius>"`` and ``"R@r<radius>"`` as means over queries (an empty Hamming ball
        has precision 0), or pooled over queries as the Spectral Hashing and ITQ evaluation
        code computes them (see :mod:`hashlearn.codes.metrics`).
    chunk_size : int >= 1 or None, default None
        Queries per step of the progress bar (default 256).
    verbose : bool, default False
        Show a progress bar.

    Returns
    -------
    dict of str to float
        In this order: ``"mAP"`` (full ranking), ``"mAP@k"`` for each ``k`` in ``map_at``,
        ``"P@k"`` and ``"R@k"`` for each ``k`` in ``ks``, ``"NDCG@k"`` for each ``k`` in
        ``ndcg_at``, then ``"P@r<radius>"`` and ``"R@r<radius>"`` (e.g. ``"P@r2"``), each the
        mean over queries of the per-query metric defined by :func:`average_precision`,
        :func:`precision_at_k`, :func:`recall_at_k`, :func:`precision_within_radius` and
        :func:`recall_within_radius` (the last two pooled over queries instead with
        ``precision_convention="pooled"``).

    Raises
    ------
    CodeFormatError
        If the codes are not packed ``uint8`` arrays of the same width.
    InvalidInputError
        If there are no queries or no database items, label counts do not match code counts,
        labels are malformed, or a cut-off, ``radius``, ``ties``, ``n_bits``,
        ``precision_convention`` or ``chunk_size`` is invalid.
    """
    return evaluate_retrieval(
        query_codes,
        query_labels,
        db_codes,
        db_labels,
        ks=ks,
        map_at=map_at,
        ndcg_at=ndcg_at,
        radius=radius,
        ties=ties,
        n_bits=n_bits,
        precision_convention=precision_convention,
        chunk_size=chunk_size,
        verbose=verbose,
    ).metrics
