"""Seeded, stratified retrieval splits.

The protocol of the hashing literature: a held-out **query** set, a **database** of every other
item that queries are searched against, and a **train** set drawn from the database to learn the
codes. A **validation** set, also drawn from the database and disjoint from train, is the only
data model selection (early stopping, hyper-parameters) may look at; queries never are.
:func:`save_split` writes the parts as ``.npz`` files (what ``hashlearn split`` writes).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._io import write_arrays
from hashlearn._validation import check_labels, check_random_state
from hashlearn.datasets.dataset import Dataset
from hashlearn.exceptions import InvalidInputError


@dataclass(frozen=True)
class Subset:
    """One part of a split: ``X`` and ``y`` (plain arrays; ``y`` None for unlabelled data) and the
    row ``indices`` they came from."""

    X: np.ndarray
    y: np.ndarray | None
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


PARTS = ("query", "database", "train", "validation")


@dataclass(frozen=True)
class RetrievalSplit:
    """Query / database / train / validation parts.

    Train and validation are disjoint; the query set is disjoint from the other three. In
    :func:`retrieval_split` train and validation are subsets of the database; some named
    protocols (:mod:`hashlearn.evaluation.protocols`) hold train out of the database instead.
    ``protocol`` names the protocol that made the split ("" when made directly). ``labelled`` is
    False for a split of unlabelled data: hashers are fitted without labels, and the parts' ``y``
    is None or, for measuring, the neighbour relevance of
    :func:`hashlearn.evaluation.with_neighbour_relevance`.
    """

    query: Subset
    database: Subset
    train: Subset
    validation: Subset
    protocol: str = ""
    labelled: bool = True

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in PARTS}

    @property
    def manifest(self) -> str:
        """Fingerprint of the chosen rows: the first 16 hex digits of a SHA-256 over each part's
        name, length and indices (int64 little-endian), in the order query, database, train,
        validation. Any change of a chosen index, or of the order of a part, changes it."""
        digest = hashlib.sha256()
        for part in PARTS:
            indices = getattr(self, part).indices
            digest.update(f"{part}:{len(indices)};".encode())
            digest.update(np.ascontiguousarray(indices, dtype="<i8").tobytes())
        return digest.hexdigest()[:16]


def resolve_count(value: Any, total: int, name: str) -> int:
    """A count given as an int >= 0, or as a fraction in (0, 1) of ``total`` (at least 1).

    Raises
    ------
    InvalidInputError
        For a bool, a non-number, a negative count or a fraction outside (0, 1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{name} must be a count or a fraction in (0, 1), got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not 0 < value < 1:
            raise InvalidInputError(f"{name} as a fraction must be in (0, 1), got {value}")
        return max(1, round(value * total))
    if value < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {value}")
    return int(value)


def stratified_sample(
    rng: np.random.Generator, pool: np.ndarray, y: np.ndarray | None, n: int
) -> np.ndarray:
    """Draw ``n`` items of ``pool`` stratified by label, returned in random order.

    Each class gets its share of ``n`` rounded down, and the left-over items go to the classes
    with the largest remainders (ties in random order). Multi-label ``y`` (2-D) and unlabelled
    items (``y`` None) are sampled uniformly.

    Parameters
    ----------
    rng : the random generator.
    pool : int array of candidate indices into ``y``.
    y : labels of the whole dataset, (N,) or (N, c), or None.
    n : number to draw, 0 <= n <= len(pool).

    Returns
    -------
    np.ndarray
        ``n`` distinct indices of ``pool``.
    """
    if n == len(pool):
        return rng.permutation(pool)
    if y is None or y.ndim != 1:  # unlabelled or multi-label: plain random sample
        return rng.choice(pool, size=n, replace=False)
    classes, inverse, counts = np.unique(y[pool], return_inverse=True, return_counts=True)
    exact = counts * (n / len(pool))
    quota = np.floor(exact).astype(int)
    remainder = n - quota.sum()
    if remainder:
        order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
        quota[order[:remainder]] += 1
    chosen = [
        rng.choice(pool[inverse == c], size=q, replace=False) for c, q in enumerate(quota) if q
    ]
    return rng.permutation(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def retrieval_split(
    X: Any,
    y: Any,
    *,
    n_query: int | float,
    n_train: int | float | None = None,
    n_validation: int | float = 0,
    random_state: int = 0,
) -> RetrievalSplit:
    """Split ``(X, y)`` into query, database, train and validation parts, stratified by label.

    Parameters
    ----------
    X : array (n, ...), the samples (kept as they are: images stay images).
    y : int array (n,) of class labels, a (n, c) multi-label indicator matrix (not stratified),
        or None for unlabelled samples (parts drawn at random; ``labelled`` False).
    n_query : count, or fraction of n, of held-out queries.
    n_train : count (or fraction of the database) used to fit; default all of the database that
        validation does not take.
    n_validation : count (or fraction of the database) carved from the training draw for model selection.
    random_state : seed; the same seed gives the same indices.

    Returns
    -------
    RetrievalSplit with ``database`` = every non-query item, ``train`` and ``validation`` disjoint
    subsets of the database. Each part lists its rows in a seeded random order, so that ranking
    ties broken by database position are not correlated with the order of the source file (the
    packaged MNIST sample, for one, is sorted by label).
    """
    X = np.asarray(X)
    if y is not None:
        y = check_labels(y, len(y) if hasattr(y, "__len__") else 0)
        if len(X) != len(y):
            raise InvalidInputError(f"X has {len(X)} samples but y has {len(y)} labels")
    n = len(X)
    seed = check_random_state(random_state)
    rng = np.random.default_rng(seed)
    q = resolve_count(n_query, n, "n_query")
    if not 1 <= q < n:
        raise InvalidInputError(
            f"n_query must leave at least one database item and take at least one query; got {q} of {n}"
        )
    everything = np.arange(n)
    query = stratified_sample(rng, everything, y, q)
    database = rng.permutation(np.setdiff1d(everything, query))
    v = resolve_count(n_validation, len(database), "n_validation")
    t = len(database) - v if n_train is None else resolve_count(n_train, len(database), "n_train")
    if t < 1 or t + v > len(database):
        raise InvalidInputError(
            f"n_train ({t}) + n_validation ({v}) must be between 1 and the database size ({len(database)})"
        )
    pool = stratified_sample(rng, database, y, t + v)
    validation = stratified_sample(rng, pool, y, v) if v else np.empty(0, dtype=np.int64)
    train = pool[~np.isin(pool, validation)]

    def subset(idx: np.ndarray) -> Subset:
        idx = idx.astype(np.int64)
        return Subset(X=X[idx], y=None if y is None else y[idx], indices=idx)

    parts = (subset(query), subset(database), subset(train), subset(validation))
    return RetrievalSplit(*parts, labelled=y is not None)


def default_split(dataset: Dataset, random_state: int = 0) -> RetrievalSplit:
    """The dataset's standard split (``dataset.default_split``) with the given seed."""
    return retrieval_split(dataset.X, dataset.y, random_state=random_state, **dataset.default_split)


def save_split(split: RetrievalSplit, out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Write each part of ``split`` to ``out_dir/PART.npz`` (the folder is made if missing).

    Each file holds ``X`` (the part's samples as they are), ``y`` (its labels) and ``indices``
    (int64, the rows of the dataset they came from), written atomically, nothing pickled; parts
    in the order query, database, train, validation.

    Returns
    -------
    dict of str to str
        ``{part: path}`` of the files written, ``path`` being ``os.path.join(out_dir, PART.npz)``.

    >>> import numpy as np
    >>> split = retrieval_split(np.eye(20), np.arange(20) % 2, n_query=4, n_validation=2)
    >>> paths = save_split(split, "split/")  # doctest: +SKIP
    >>> np.load(paths["train"])["X"].shape  # doctest: +SKIP
    (14, 20)
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for part in PARTS:
        subset = getattr(split, part)
        paths[part] = os.path.join(out_dir, f"{part}.npz")
        labels = {} if subset.y is None else {"y": subset.y}
        write_arrays(paths[part], X=subset.X, indices=subset.indices, **labels)
    return paths
