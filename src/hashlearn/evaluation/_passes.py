"""The compiled passes of the evaluation engine: every retrieval count from one streaming pass.

A full Hamming ranking of ``n`` items per query (an ``argsort``) costs ``n log n`` time and ``8 n``
bytes; for 10,000 queries against 1,000,000 items that is the bulk of the work. Hamming distances
take only ``n_bits + 1`` values, so the ranking is never materialised here. For each query, one
pass over the database in its stored order:

Histograms
    ``joint[d, s]`` counts the items at distance ``d`` that share ``s`` labels with the query
    (``s`` is 1 or 0 for class labels). From it alone come the number of relevant items,
    precision and recall within every radius (the precision-recall curve), the ideal DCG, and
    every metric with *tie-averaged* ranks (:mod:`hashlearn.evaluation._tie_averaged`).

Records (ties by database position)
    For every relevant item, one ``int64`` record of its distance ``d``, its shared-label count
    and ``seen``, the number of items at distance ``d`` met before it. After the pass, with
    ``before[d]`` the number of items at distances below ``d``, the item's rank is
    ``before[d] + seen + 1``: exactly the position :func:`~hashlearn.evaluation.hamming_ranking`
    gives it. Walking the records then yields average precision over the full ranking and the
    gains of the top ``k_max`` ranks (irrelevant items have gain 0), from which mAP@k, P@k, R@k
    and NDCG@k follow. Records take 8 bytes per relevant item and query of a group.

Queries are processed in groups; each group walks the database in blocks that stay in cache
while every query of the group passes over them, four queries sharing each item load. Groups run
on the thread pool. Class labels, the common case, have their own loops. For codes wider than
64 bits the distances of a group to a block of the database come from the Hamming kernel layer
(:func:`hashlearn.codes.kernels.distances`: the AVX-512, AVX2 or scalar variant, several codes
per vector instruction, or its numba fallback) and the loops only count and record them. Up to
64 bits a distance is one scalar ``popcnt``, and one fused loop computes and counts (measured
faster there: the counting is the work). Every path gives the same integers, so the same metrics
to the last bit. Multi-label data takes the general loop (:func:`_scan`).
"""

from __future__ import annotations

import numba
import numpy as np

from hashlearn._parallel import parallel_map
from hashlearn.codes import kernels
from hashlearn.codes.distance import as_words
from hashlearn.codes.kernels import popcount64

BLOCK_ITEMS = 4096  # database items per cache block
GROUP_QUERIES = 16  # queries that share a pass over one block
# With the compiled kernels: a group of queries gets the distances to BLOCK_ITEMS items at a time
# (uint16, 512 KiB for 64 queries: an L2 share); more queries per group spread the kernel's cost
# of staging a block over more of them.
KERNEL_GROUP_QUERIES = 64


@numba.njit(nogil=True, cache=True, inline="always")
def _four(array, q0):
    """``array[q0 : q0 + 4]`` as a tuple (rows of a 2-D array, values of a 1-D one)."""
    return array[q0], array[q0 + 1], array[q0 + 2], array[q0 + 3]


@numba.njit(nogil=True, cache=True, inline="always")
def _four_distances(a0, a1, a2, a3, d_words, j):
    """Hamming distances of item ``j`` to four queries (rows of words). Every load of the item
    happens here, before the caller's stores, so the item's words are read once."""
    d0 = d1 = d2 = d3 = 0
    for w in range(d_words.shape[1]):
        x = d_words[j, w]
        d0 += popcount64(a0[w] ^ x)
        d1 += popcount64(a1[w] ^ x)
        d2 += popcount64(a2[w] ^ x)
        d3 += popcount64(a3[w] ^ x)
    return d0, d1, d2, d3


@numba.njit(nogil=True, cache=True, inline="always")
def _four_shared(l0, l1, l2, l3, d_labels, j, multilabel):
    """Labels item ``j`` shares with four queries (1 or 0 for class labels: equal or not)."""
    if not multilabel:
        x = d_labels[j, 0]
        return int(l0[0] == x), int(l1[0] == x), int(l2[0] == x), int(l3[0] == x)
    s0 = s1 = s2 = s3 = 0
    for w in range(d_labels.shape[1]):
        x = d_labels[j, w]
        s0 += popcount64(l0[w] & x)
        s1 += popcount64(l1[w] & x)
        s2 += popcount64(l2[w] & x)
        s3 += popcount64(l3[w] & x)
    return s0, s1, s2, s3


SEEN_BITS = 36  # a record packs (distance, shared labels, items met before it at its distance)
SHARED_BITS = 8
MAX_ITEMS = 1 << SEEN_BITS
MAX_SHARED = (1 << SHARED_BITS) - 1


@numba.njit(nogil=True, cache=True, inline="always")
def _record(records, cursor, last, histogram, d, s, width):
    """Write the record of the item just counted in ``histogram`` at distance ``d`` into the
    next free slot, and keep it (advance the cursor) only when the item is relevant: no branch
    to mispredict. ``last`` is the query's spare slot, so the write stays in its own slots."""
    seen = -1  # the item itself is already counted
    for i in range(d * width, d * width + width):
        seen += histogram[i]
    records[min(cursor, last)] = (d << (SEEN_BITS + SHARED_BITS)) | (s << SEEN_BITS) | seen
    return cursor + (s > 0)


@numba.njit(nogil=True, cache=True)
def _scan(q_words, q_labels, d_words, d_labels, multilabel, width, joint, records, offsets):
    """The pass over the database for a group of queries (a multiple of 4, sharing item loads).

    Counts ``joint[q, d * width + s] += 1`` for every item at distance ``d`` that shares ``s``
    labels with query ``q``, and, when ``records`` is not empty, appends one record per relevant
    item, in database order, to ``records[offsets[q]:offsets[q + 1] - 1]`` (the last slot is
    spare). Returns the number of records each query produced.
    """
    n = d_words.shape[0]
    g = q_words.shape[0]
    keep = records.shape[0] > 0
    cursor = offsets[:-1].copy()
    spare = offsets[1:] - 1  # each query's last slot
    for start in range(0, n, BLOCK_ITEMS):
        stop = min(start + BLOCK_ITEMS, n)
        for q0 in range(0, g, 4):
            a0, a1, a2, a3 = _four(q_words, q0)
            l0, l1, l2, l3 = _four(q_labels, q0)
            h0, h1, h2, h3 = _four(joint, q0)
            c0, c1, c2, c3 = _four(cursor, q0)
            e0, e1, e2, e3 = _four(spare, q0)
            for j in range(start, stop):
                d0, d1, d2, d3 = _four_distances(a0, a1, a2, a3, d_words, j)
                s0, s1, s2, s3 = _four_shared(l0, l1, l2, l3, d_labels, j, multilabel)
                h0[d0 * width + s0] += 1
                h1[d1 * width + s1] += 1
                h2[d2 * width + s2] += 1
                h3[d3 * width + s3] += 1
                if keep:
                    c0 = _record(records, c0, e0, h0, d0, s0, width)
                    c1 = _record(records, c1, e1, h1, d1, s1, width)
                    c2 = _record(records, c2, e2, h2, d2, s2, width)
                    c3 = _record(records, c3, e3, h3, d3, s3, width)
            cursor[q0], cursor[q0 + 1], cursor[q0 + 2], cursor[q0 + 3] = c0, c1, c2, c3
    return cursor - offsets[:-1]


@numba.njit(nogil=True, cache=True, inline="always")
def _count_four(h, c, e, records, d0, d1, d2, d3, label, l0, l1, l2, l3):
    """One item met by four queries at distances ``d0..d3`` (class labels): count it in the
    histograms ``h`` and write its record in the next free slot of each query (cursors ``c``,
    spare slots ``e``), kept only where it is relevant, branch-free like :func:`_record`.
    Returns the new cursors."""
    one = 1 << SEEN_BITS
    shift = SEEN_BITS + SHARED_BITS
    h0, h1, h2, h3 = h
    c0, c1, c2, c3 = c
    e0, e1, e2, e3 = e
    x0, x1, x2, x3 = h0[d0], h1[d1], h2[d2], h3[d3]
    h0[d0], h1[d1], h2[d2], h3[d3] = x0 + 1, x1 + 1, x2 + 1, x3 + 1
    records[min(c0, e0)] = (d0 << shift) | one | x0
    records[min(c1, e1)] = (d1 << shift) | one | x1
    records[min(c2, e2)] = (d2 << shift) | one | x2
    records[min(c3, e3)] = (d3 << shift) | one | x3
    return c0 + (label == l0), c1 + (label == l1), c2 + (label == l2), c3 + (label == l3)


@numba.njit(nogil=True, cache=True, inline="always")
def _histogram_four(h, d0, d1, d2, d3, label, l0, l1, l2, l3):
    """One item met by four queries at distances ``d0..d3``: ``h[q][2 d + relevant] += 1``."""
    h0, h1, h2, h3 = h
    h0[2 * d0 + (label == l0)] += 1
    h1[2 * d1 + (label == l1)] += 1
    h2[2 * d2 + (label == l2)] += 1
    h3[2 * d3 + (label == l3)] += 1


@numba.njit(nogil=True, cache=True)
def _scan_classes(q_words, q_labels, d_words, d_labels, count, records, offsets):
    """The common case, specialised: class labels and codes of at most 64 bits (one word), where
    a distance is one ``popcnt`` and the counting is the work (wider codes: :func:`_count_block`).

    ``count[q, d] += 1`` for every item, and a record ``d << (SEEN_BITS + SHARED_BITS) | 1 <<
    SEEN_BITS | seen`` per relevant item, written branch-free like :func:`_record`.
    """
    n = d_words.shape[0]
    g = q_words.shape[0]
    first_words, first_labels = q_words[:, 0], q_labels[:, 0]
    cursor = offsets[:-1].copy()
    spare = offsets[1:] - 1  # each query's last slot
    one = 1 << SEEN_BITS
    shift = SEEN_BITS + SHARED_BITS
    for start in range(0, n, BLOCK_ITEMS):
        stop = min(start + BLOCK_ITEMS, n)
        for q0 in range(0, g, 4):
            a0, a1, a2, a3 = _four(first_words, q0)
            l0, l1, l2, l3 = _four(first_labels, q0)
            h0, h1, h2, h3 = _four(count, q0)
            c0, c1, c2, c3 = _four(cursor, q0)
            e0, e1, e2, e3 = _four(spare, q0)
            for j in range(start, stop):
                w = d_words[j, 0]
                label = d_labels[j, 0]
                d0 = popcount64(a0 ^ w)
                d1 = popcount64(a1 ^ w)
                d2 = popcount64(a2 ^ w)
                d3 = popcount64(a3 ^ w)
                x0, x1, x2, x3 = h0[d0], h1[d1], h2[d2], h3[d3]
                h0[d0], h1[d1], h2[d2], h3[d3] = x0 + 1, x1 + 1, x2 + 1, x3 + 1
                records[min(c0, e0)] = (d0 << shift) | one | x0
                records[min(c1, e1)] = (d1 << shift) | one | x1
                records[min(c2, e2)] = (d2 << shift) | one | x2
                records[min(c3, e3)] = (d3 << shift) | one | x3
                c0 += label == l0
                c1 += label == l1
                c2 += label == l2
                c3 += label == l3
            cursor[q0], cursor[q0 + 1], cursor[q0 + 2], cursor[q0 + 3] = c0, c1, c2, c3
    return cursor - offsets[:-1]


@numba.njit(nogil=True, cache=True)
def _histogram_classes(q_words, q_labels, d_words, d_labels, joint):
    """Histograms only (for tie-averaged metrics), specialised like :func:`_scan_classes`:
    ``joint[q, 2 d + relevant] += 1``."""
    n = d_words.shape[0]
    g = q_words.shape[0]
    first_words, first_labels = q_words[:, 0], q_labels[:, 0]
    for start in range(0, n, BLOCK_ITEMS):
        stop = min(start + BLOCK_ITEMS, n)
        for q0 in range(0, g, 4):
            a0, a1, a2, a3 = _four(first_words, q0)
            l0, l1, l2, l3 = _four(first_labels, q0)
            h0, h1, h2, h3 = _four(joint, q0)
            for j in range(start, stop):
                w = d_words[j, 0]
                label = d_labels[j, 0]
                h0[2 * popcount64(a0 ^ w) + (label == l0)] += 1
                h1[2 * popcount64(a1 ^ w) + (label == l1)] += 1
                h2[2 * popcount64(a2 ^ w) + (label == l2)] += 1
                h3[2 * popcount64(a3 ^ w) + (label == l3)] += 1


@numba.njit(nogil=True, cache=True)
def _count_block(distances, start, q_labels, d_labels, count, records, cursor, spare):
    """:func:`_scan_classes` over one block of distances: ``distances[q, i]`` is query ``q``'s
    distance to item ``start + i``. Advances ``cursor`` (each query's next record slot)."""
    first_labels = q_labels[:, 0]
    for q0 in range(0, distances.shape[0], 4):
        r0, r1, r2, r3 = _four(distances, q0)
        l0, l1, l2, l3 = _four(first_labels, q0)
        h = _four(count, q0)
        c = _four(cursor, q0)
        e = _four(spare, q0)
        for i in range(distances.shape[1]):
            d0, d1, d2, d3 = np.int64(r0[i]), np.int64(r1[i]), np.int64(r2[i]), np.int64(r3[i])
            c = _count_four(
                h, c, e, records, d0, d1, d2, d3, d_labels[start + i, 0], l0, l1, l2, l3
            )
        cursor[q0], cursor[q0 + 1], cursor[q0 + 2], cursor[q0 + 3] = c


@numba.njit(nogil=True, cache=True)
def _histogram_block(distances, start, q_labels, d_labels, joint):
    """:func:`_histogram_classes` over one block of distances (as :func:`_count_block`)."""
    first_labels = q_labels[:, 0]
    for q0 in range(0, distances.shape[0], 4):
        r0, r1, r2, r3 = _four(distances, q0)
        l0, l1, l2, l3 = _four(first_labels, q0)
        h = _four(joint, q0)
        for i in range(distances.shape[1]):
            d0, d1, d2, d3 = np.int64(r0[i]), np.int64(r1[i]), np.int64(r2[i]), np.int64(r3[i])
            _histogram_four(h, d0, d1, d2, d3, d_labels[start + i, 0], l0, l1, l2, l3)


def _by_kernel(q_words: np.ndarray) -> bool:
    """Whether class-label distances come in blocks from the kernel layer: for codes wider than
    one word. Up to 64 bits a distance is one scalar ``popcnt`` inside the counting loop and the
    counting is the work, so the fused loop (:func:`_scan_classes`) is faster there
    (benchmarks/README.md, "Evaluation engine and the kernel layer")."""
    return q_words.shape[1] > 1


def _classes_by_kernel(q_codes, q_labels, d_codes, d_labels, histogram, records, offsets, position):
    """The class-label pass with the distances from the kernel layer, block by block:
    :func:`_count_block` into ``histogram`` (``count``) with ``position``, else
    :func:`_histogram_block` (``joint``). Returns the records each query produced."""
    cursor = offsets[:-1].copy()
    spare = offsets[1:] - 1
    for start in range(0, len(d_codes), BLOCK_ITEMS):
        block = kernels.distances(d_codes, q_codes, start, min(start + BLOCK_ITEMS, len(d_codes)))
        if position:
            _count_block(block, start, q_labels, d_labels, histogram, records, cursor, spare)
        else:
            _histogram_block(block, start, q_labels, d_labels, histogram)
    return cursor - offsets[:-1]


@numba.njit(nogil=True, cache=True)
def _ranks(records, offsets, count, multilabel, relevant, precision_sum, top_gain):
    """Ranks (ties by database position) from the records, query by query.

    Counts the relevant items at each distance into ``relevant[q]``; then, with ``before[d]`` /
    ``before_rel[d]`` the items / relevant items at distances below ``d``, a relevant item is
    ranked ``before[d] + seen + 1`` and is the ``before_rel[d] + (relevant items met earlier at
    d) + 1``-th relevant item. Writes ``precision_sum[q]``, the sum over relevant items of
    (relevant items ranked up to and including it) / (its rank), and ``top_gain[q, r]``, the gain
    ``2**s - 1`` of the item ranked ``r + 1`` (0 for the irrelevant items).
    """
    k_max = top_gain.shape[1]
    n_dist = count.shape[1]
    seen_mask = (1 << SEEN_BITS) - 1
    shared_mask = (1 << SHARED_BITS) - 1
    shift = SEEN_BITS + SHARED_BITS
    before = np.empty(n_dist, dtype=np.int64)
    before_rel = np.empty(n_dist, dtype=np.int64)
    for q in range(len(precision_sum)):
        first, last = offsets[q], offsets[q + 1] - 1
        for i in range(first, last):
            relevant[q, records[i] >> shift] += 1
        total = 0
        total_rel = 0
        for d in range(n_dist):
            before[d] = total
            before_rel[d] = total_rel
            total += count[q, d]
            total_rel += relevant[q, d]
        ap_sum = 0.0
        for i in range(first, last):
            record = records[i]
            d = record >> shift
            rank = before[d] + (record & seen_mask) + 1
            rel_rank = before_rel[d] + 1
            before_rel[d] = rel_rank
            ap_sum += rel_rank / rank
            if rank <= k_max:
                s = (record >> SEEN_BITS) & shared_mask
                top_gain[q, rank - 1] = 2.0**s - 1.0 if multilabel else 1.0
        precision_sum[q] = ap_sum


def _group(q_codes, q_labels, d_codes, d_labels, multilabel, width, k_max, n_relevant, position):
    """Everything for one group of queries (a multiple of 4); run on the thread pool.

    ``q_codes`` / ``d_codes`` are ``(packed uint8 codes, their uint64 words)`` pairs."""
    (q_packed, q_words), (d_packed, d_words) = q_codes, d_codes
    g = len(q_words)
    n_dist = 64 * q_words.shape[1] + 1
    offsets = np.zeros(g + 1, dtype=np.int64)
    if position:
        offsets[1:] = np.cumsum(n_relevant + 1)  # one spare slot per query
    records = np.empty(offsets[-1], dtype=np.int64)
    classes = not multilabel
    blocks = classes and _by_kernel(q_words)
    if classes and position:
        count = np.zeros((g, n_dist), dtype=np.int64)
        if blocks:
            produced = _classes_by_kernel(
                q_packed, q_labels, d_packed, d_labels, count, records, offsets, True
            )
        else:
            produced = _scan_classes(q_words, q_labels, d_words, d_labels, count, records, offsets)
    else:
        joint = np.zeros((g, n_dist * width), dtype=np.int64)
        if blocks:
            _classes_by_kernel(
                q_packed, q_labels, d_packed, d_labels, joint, records, offsets, False
            )
        elif classes:
            _histogram_classes(q_words, q_labels, d_words, d_labels, joint)
        else:
            produced = _scan(
                q_words, q_labels, d_words, d_labels, multilabel, width, joint, records, offsets
            )
        joint = joint.reshape(g, n_dist, width)
        count = joint.sum(axis=2)
    if position and not np.array_equal(produced, n_relevant):  # pragma: no cover - a bug
        raise RuntimeError("evaluation engine: relevant counts of the scan and the labels differ")
    precision_sum = np.zeros(g, dtype=np.float64)
    top_gain = np.zeros((g, k_max if position else 0), dtype=np.float64)
    if position:
        relevant = np.zeros((g, n_dist), dtype=np.int64)
        _ranks(records, offsets, count, multilabel, relevant, precision_sum, top_gain)
    else:
        relevant = count - joint[:, :, 0]
    if multilabel:
        gain_sum = joint @ (2.0 ** np.arange(width) - 1.0)
        shared = joint.sum(axis=1)
    else:
        gain_sum = relevant.astype(np.float64)
        n_rel = relevant.sum(axis=1)
        shared = np.stack([count.sum(axis=1) - n_rel, n_rel], axis=1)
    return count, relevant, gain_sum, shared, precision_sum, top_gain


def relevant_counts(q_labels: np.ndarray, d_labels: np.ndarray, multilabel: bool) -> np.ndarray:
    """Relevant database items per query, from the labels alone (int64 (nq,))."""
    if not multilabel:
        classes, counts = np.unique(d_labels[:, 0], return_counts=True)
        where = np.clip(np.searchsorted(classes, q_labels[:, 0]), 0, len(classes) - 1)
        return np.where(classes[where] == q_labels[:, 0], counts[where], 0).astype(np.int64)
    rows, counts = np.unique(d_labels, axis=0, return_counts=True)
    out = np.zeros(len(q_labels), dtype=np.int64)
    step = max(1, (1 << 24) // max(1, len(rows) * rows.shape[1]))
    for start in range(0, len(q_labels), step):
        block = q_labels[start : start + step]
        overlap = (block[:, None, :] & rows[None, :, :]).any(axis=2)
        out[start : start + step] = overlap @ counts
    return out


def run_passes(
    q_codes: np.ndarray,
    q_labels: np.ndarray,
    d_codes: np.ndarray,
    d_labels: np.ndarray,
    *,
    multilabel: bool,
    k_max: int,
    position: bool,
    group: int | None = None,
    d_words: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Run the engine for every query, groups of ``group`` queries on the thread pool.

    ``q_codes`` / ``d_codes`` are packed ``uint8`` codes of one width (``d_words``: the
    database's ``as_words``, when the caller has it already); ``q_labels`` / ``d_labels`` are
    ``uint64`` arrays of shape (n, 1) holding class labels, or (n, w) label-bit words when
    ``multilabel``. ``position=False`` skips the records (tie-averaged metrics need only the
    histograms). ``group`` defaults to ``KERNEL_GROUP_QUERIES`` when the compiled kernels serve
    the distances (class labels, codes wider than 64 bits), else ``GROUP_QUERIES``. The distance
    arrays have ``64 w + 1`` entries for
    codes of ``w`` words (distances are at most ``8 * code_size``).

    Returns per-query arrays: ``count`` and ``relevant`` (nq, 64 w + 1) items and relevant items
    at each distance, ``gain_sum`` (nq, 64 w + 1) their summed gains, ``shared`` (nq, s + 1) items
    sharing 0, 1, ... labels with the query, ``precision_sum`` (nq,) and ``top_gain`` (nq, k_max).
    """
    q_codes = np.ascontiguousarray(q_codes)
    d_codes = np.ascontiguousarray(d_codes)
    d_words = as_words(d_codes) if d_words is None else d_words
    nq = len(q_codes)
    if multilabel:  # an item shares at most as many labels as the query has
        width = int(np.bitwise_count(q_labels).sum(axis=1).max()) + 1
    else:
        width = 2
    if width - 1 > MAX_SHARED:
        raise ValueError(f"queries with more than {MAX_SHARED} labels are not supported")
    if len(d_words) >= MAX_ITEMS:
        raise ValueError(f"the evaluation engine takes fewer than {MAX_ITEMS} database items")
    padded = -nq % 4
    if padded:
        q_codes = np.concatenate([q_codes, np.repeat(q_codes[-1:], padded, axis=0)])
        q_labels = np.concatenate([q_labels, np.repeat(q_labels[-1:], padded, axis=0)])
    n_relevant = relevant_counts(q_labels, d_labels, multilabel)
    q_words = as_words(q_codes)
    if group is None:
        blocks = not multilabel and _by_kernel(q_words)
        group = KERNEL_GROUP_QUERIES if blocks else GROUP_QUERIES
    group = max(4, group - group % 4)
    tasks = [
        (
            (q_codes[s : s + group], q_words[s : s + group]),
            q_labels[s : s + group],
            (d_codes, d_words),
            d_labels,
            multilabel,
            width,
            k_max,
            n_relevant[s : s + group],
            position,
        )
        for s in range(0, len(q_codes), group)
    ]
    parts = parallel_map(_group, tasks)
    names = ("count", "relevant", "gain_sum", "shared", "precision_sum", "top_gain")
    return {name: np.concatenate([p[i] for p in parts])[:nq] for i, name in enumerate(names)}
