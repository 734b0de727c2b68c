"""What the report shows of one model: its codes of a dataset's split, maps of its distinct codes
(t-SNE, and UMAP when ``umap-learn`` is installed), the class median codes and the ranked results
of a few queries."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._validation import check_int, check_random_state
from hashlearn.codes import check_codes, codes_to_hex, hamming_distance, unpack_bits
from hashlearn.datasets import load_dataset
from hashlearn.datasets.split import Subset
from hashlearn.evaluation import apply_protocol, hamming_ranking, relevance_matrix
from hashlearn.evaluation.analysis import class_median_codes, extreme_class_pairs
from hashlearn.exceptions import InvalidInputError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher, Hasher, load_hasher

__all__ = [
    "UMAP_EXTRA",
    "ClassDistances",
    "DistinctCodes",
    "EncodedSplit",
    "Retrievals",
    "class_distances",
    "distinct_codes",
    "encode_split",
    "load_model",
    "retrievals",
    "tsne_embedding",
    "umap_embedding",
]

UMAP_EXTRA = "pip install 'hashlearn[umap]'"  # what the report tells a user without umap-learn


@dataclass(frozen=True)
class EncodedSplit:
    """A model's codes of a dataset's query and database parts.

    Attributes
    ----------
    method : registry name of the model's method.
    n_bits : code length.
    dataset : dataset name.
    seed : seed of the split.
    class_names : label -> name (the dataset's class names, or the label itself).
    query, database : the split's parts (images, labels, row indices).
    query_codes, database_codes : uint8 packed codes of those parts.
    """

    method: str
    n_bits: int
    dataset: str
    seed: int
    class_names: dict[int, str]
    query: Subset
    database: Subset
    query_codes: np.ndarray
    database_codes: np.ndarray

    def label_name(self, label: Any) -> str:
        """Name of a class label, or the names of a multi-label row joined by '+'."""
        if np.ndim(label) == 0:
            return self.class_names.get(int(label), str(label))
        return "+".join(self.class_names.get(int(c), str(c)) for c in np.flatnonzero(label))


def load_model(model: str | os.PathLike[str] | Hasher) -> Hasher:
    """A fitted hasher, given as one or as the path of a model file (``Hasher.save``).

    Raises
    ------
    InvalidInputError
        If ``model`` is neither, or the file does not exist.
    FileFormatError
        If the file is not a hashlearn model.
    """
    if isinstance(model, Hasher):
        model._check_fitted()
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise InvalidInputError(
            f"model must be a fitted Hasher or the path of a model file, got {type(model).__name__}"
        )
    if not os.path.isfile(model):
        raise InvalidInputError(f"model file not found: {os.fspath(model)!r}")
    return load_hasher(model)


def needs_features(hasher: Hasher) -> bool:
    """Whether ``hasher`` reads feature vectors that it does not compute itself."""
    return hasher.input_kind == "features" and not isinstance(hasher, FeatureHasher)


def encode_split(
    hasher: Hasher,
    dataset: str,
    seed: int = 0,
    features: str = "pixels",
    protocol: str = "default",
) -> EncodedSplit:
    """Encode the query and database parts of ``dataset``, split by ``protocol``, with ``hasher``.

    A hasher that reads features gets those of the extractor ``features``, fitted on the split's
    train part (as the benchmark does); a deep hasher, or a
    :class:`~hashlearn.hashers.FeatureHasher` (which holds its own extractor), reads the images.

    Parameters
    ----------
    hasher : fitted hasher.
    dataset : registered dataset name.
    seed : seed of the split.
    features : feature extractor name, used when ``hasher`` reads feature vectors and holds no
        extractor of its own.
    protocol : retrieval protocol (:func:`hashlearn.evaluation.list_protocols`) that splits it,
        the dataset's own default split unless told otherwise.

    Returns
    -------
    EncodedSplit

    Raises
    ------
    UnknownNameError
        For an unknown dataset or feature extractor.
    InvalidInputError
        If the model's input does not fit the data.
    """
    seed = check_int(check_random_state(seed, "seed"), "seed")
    data = load_dataset(dataset)
    split = apply_protocol(data, protocol, seed)
    if needs_features(hasher):
        extractor = create_features(features)
        extractor.fit(split.train.X)
        inputs = [extractor.transform(split.query.X), extractor.transform(split.database.X)]
    else:
        inputs = [split.query.X, split.database.X]
    query_codes, database_codes = (check_codes(hasher.encode(x), hasher.n_bits) for x in inputs)
    labels = range(data.y.shape[1]) if data.y.ndim == 2 else np.unique(data.y)
    names = {
        int(c): (data.classes[int(c)] if int(c) < len(data.classes) else str(int(c)))
        for c in labels
    }
    return EncodedSplit(
        hasher.name,
        int(hasher.n_bits),
        dataset,
        seed,
        names,
        split.query,
        split.database,
        query_codes,
        database_codes,
    )


def tsne_embedding(
    codes: np.ndarray, n_bits: int, *, max_points: int = 2000, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE of at most ``max_points`` codes (a seeded sample), on their +-1 bits.

    Uses :class:`sklearn.manifold.TSNE` with ``init="pca"``, ``random_state`` and a perplexity of
    ``min(30, (n - 1) / 3)``, on one OpenMP thread.

    Parameters
    ----------
    codes : uint8 (n, ceil(n_bits / 8)) packed codes, n >= 4.
    n_bits : code length.
    max_points : largest sample embedded.
    random_state : seed of the sample and of t-SNE.

    Returns
    -------
    positions : int64 (m,) sorted rows of ``codes`` embedded, m = min(n, max_points).
    embedding : float64 (m, 2).

    Raises
    ------
    InvalidInputError
        With fewer than 4 codes, or an invalid ``max_points`` / ``random_state``.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    codes = check_codes(codes, n_bits)
    max_points = check_int(max_points, "max_points", minimum=4)
    seed = check_random_state(random_state)
    if len(codes) < 4:
        raise InvalidInputError(f"t-SNE needs at least 4 codes, got {len(codes)}")
    positions = _sample(len(codes), max_points, seed)
    signs = unpack_bits(codes[positions], n_bits, signed=True).astype(np.float64)
    tsne = TSNE(
        n_components=2,
        init="pca",
        perplexity=min(30.0, (len(positions) - 1) / 3),
        random_state=seed,
    )
    # One OpenMP thread: the Barnes-Hut gradient is a short parallel loop run 1,000 times, and on
    # a busy 2-core machine thread synchronisation cost far more than the work (1,000 codes:
    # 21 s with two threads against 6 s with one; 40 codes: 15 s against 0.4 s).
    with threadpool_limits(limits=1, user_api="openmp"):
        embedding = tsne.fit_transform(signs)
    return positions, np.asarray(embedding, dtype=np.float64)


def _sample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted rows of a seeded sample of ``max_points`` out of ``n`` (all of them when fewer)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


@dataclass(frozen=True)
class DistinctCodes:
    """The distinct codes of a seeded sample of database codes, each with how many codes of the
    sample equal it: at 12 or 16 bits many items share a code, and a map that drew every code
    would stack them on one point.

    Attributes
    ----------
    n_sampled : number of codes in the sample.
    codes : uint8 (m, n_bytes) the distinct codes, in :func:`numpy.unique` order.
    counts : int64 (m,) how many codes of the sample equal each; they sum to ``n_sampled``.
    labels : int64 (m,) the most common label among those codes (the smallest label on a tie).
    n_mixed : how many distinct codes are shared by items of more than one class.
    """

    n_sampled: int
    codes: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    n_mixed: int


def distinct_codes(
    codes: np.ndarray, labels: Any, n_bits: int, *, max_points: int = 2000, random_state: int = 0
) -> DistinctCodes:
    """The distinct codes among at most ``max_points`` codes (the seeded sample
    :func:`tsne_embedding` draws), their counts and majority labels.

    Parameters
    ----------
    codes : uint8 (n, ceil(n_bits / 8)) packed codes.
    labels : int (n,) single labels.
    n_bits : code length.
    max_points : largest sample.
    random_state : seed of the sample.

    Raises
    ------
    InvalidInputError
        For multi-label or mismatched labels, or an invalid ``max_points`` / ``random_state``.
    """
    codes = check_codes(codes, n_bits)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(codes):
        raise InvalidInputError(
            f"labels must be one label per code, shape ({len(codes)},); got {labels.shape}"
        )
    max_points = check_int(max_points, "max_points", minimum=1)
    rows = _sample(len(codes), max_points, check_random_state(random_state))
    unique, which, counts = np.unique(codes[rows], axis=0, return_inverse=True, return_counts=True)
    classes, label_index = np.unique(labels[rows], return_inverse=True)
    per_class = np.zeros((len(unique), len(classes)), dtype=np.int64)
    np.add.at(per_class, (which.ravel(), label_index), 1)
    return DistinctCodes(
        len(rows),
        unique,
        counts.astype(np.int64),
        classes[per_class.argmax(axis=1)].astype(np.int64),  # argmax: the first (smallest) on ties
        int(((per_class > 0).sum(axis=1) > 1).sum()),
    )


def umap_embedding(codes: np.ndarray, n_bits: int, *, random_state: int = 0) -> np.ndarray:
    """2-D UMAP of codes under the Hamming distance (``umap-learn``, the ``umap`` extra).

    Runs :class:`umap.UMAP` with ``metric="hamming"`` on the unpacked 0/1 bits,
    ``n_neighbors=min(15, n - 1)`` and ``random_state`` (which makes it deterministic and
    single-threaded). Give it distinct codes: UMAP's neighbour graph is ill-defined on many
    identical points.

    Parameters
    ----------
    codes : uint8 (n, ceil(n_bits / 8)) packed codes, n >= 4.
    n_bits : code length.
    random_state : seed.

    Returns
    -------
    float64 (n, 2)

    Raises
    ------
    ModuleNotFoundError
        When ``umap-learn`` is not installed; the message names the extra to install.
    InvalidInputError
        With fewer than 4 codes.
    """
    codes = check_codes(codes, n_bits)
    seed = check_random_state(random_state)
    if len(codes) < 4:
        raise InvalidInputError(f"UMAP needs at least 4 codes, got {len(codes)}")
    try:
        import umap
    except ImportError:
        raise ModuleNotFoundError(
            f"the UMAP map needs the optional package 'umap-learn', which is not installed: "
            f"{UMAP_EXTRA} (or: pip install umap-learn)",
            name="umap",
        ) from None
    bits = unpack_bits(codes, n_bits).astype(np.float64)
    reducer = umap.UMAP(
        n_components=2, n_neighbors=min(15, len(codes) - 1), metric="hamming", random_state=seed
    )
    with warnings.catch_warnings():
        # umap-learn warns that a seed makes it single-threaded (the point of the seed) and that
        # inverse_transform is unavailable for the Hamming metric (the report does not use it)
        for message in ("n_jobs value", "gradient function is not yet implemented"):
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        embedding = reducer.fit_transform(bits)
    return np.asarray(embedding, dtype=np.float64)


@dataclass(frozen=True)
class ClassDistances:
    """Class median codes and the Hamming distances between them.

    Attributes
    ----------
    classes : int64 (c,) sorted labels.
    medians : uint8 (c, n_bytes) packed median codes.
    distances : int (c, c) Hamming distances between medians.
    closest, farthest : ``(class_a, class_b, distance)`` (see
        :func:`hashlearn.evaluation.analysis.extreme_class_pairs`).
    hex_codes : the medians in hex, byte 0 first.
    bit_strings : the medians as '0'/'1' strings, bit 0 first.
    """

    classes: np.ndarray
    medians: np.ndarray
    distances: np.ndarray
    closest: tuple[int, int, int]
    farthest: tuple[int, int, int]
    hex_codes: list[str]
    bit_strings: list[str]

    def position(self, label: int) -> int:
        """Row of ``label`` in ``classes``."""
        return int(np.flatnonzero(self.classes == label)[0])


def class_distances(codes: np.ndarray, labels: Any, n_bits: int) -> ClassDistances:
    """Median code of every class and the Hamming distances between them.

    Raises
    ------
    InvalidInputError
        For multi-label data or fewer than two classes.
    """
    classes, medians = class_median_codes(codes, labels, n_bits)
    extremes = extreme_class_pairs(classes, medians)
    bits = unpack_bits(medians, n_bits)
    return ClassDistances(
        classes,
        medians,
        hamming_distance(medians, medians),
        extremes["closest"],
        extremes["farthest"],
        codes_to_hex(medians),
        ["".join(str(int(b)) for b in row) for row in bits],
    )


@dataclass(frozen=True)
class Retrievals:
    """Ranked results of a few queries.

    Attributes
    ----------
    queries : int64 (nq,) rows of the query part, sorted.
    distances : int32 (nq, k) Hamming distances of the results, ascending.
    indices : int64 (nq, k) database rows of the results (ties by database position).
    matches : bool (nq, k) whether each result shares the query's label.
    closer : int64 (nq,) database items closer to the query than its last result shown.
    tied : int64 (nq,) database items at the distance of its last result shown; the first
        ``k - closer`` of them by database position are shown. When ``tied > k - closer`` the
        cut falls inside a tie, and another query of the same code, or at the same distances
        from those items, shows the same row.
    """

    queries: np.ndarray
    distances: np.ndarray
    indices: np.ndarray
    matches: np.ndarray
    closer: np.ndarray
    tied: np.ndarray

    def shown_at_cut(self) -> np.ndarray:
        """int64 (nq,) results shown at the distance of the last one."""
        return self.distances.shape[1] - self.closer


def retrievals(
    encoded: EncodedSplit, *, n_queries: int = 8, k: int = 10, random_state: int = 0
) -> Retrievals:
    """Top-``k`` database items of ``n_queries`` seeded queries, by Hamming distance.

    The queries are a seeded sample (without replacement) of the query part; the ranking is
    :func:`hashlearn.evaluation.hamming_ranking` (ties by database position). Also counts, per
    query, the database items closer than its last result shown and those tied with it.
    """
    n_queries = check_int(n_queries, "n_queries", minimum=1)
    k = check_int(k, "k", minimum=1)
    rng = np.random.default_rng(check_random_state(random_state))
    count = min(n_queries, len(encoded.query_codes))
    queries = np.sort(rng.choice(len(encoded.query_codes), size=count, replace=False))
    distances, indices = hamming_ranking(encoded.query_codes[queries], encoded.database_codes, k)
    relevant = relevance_matrix(encoded.query.y[queries], encoded.database.y)
    matches = np.take_along_axis(relevant, indices, axis=1).astype(bool)
    every = hamming_distance(encoded.query_codes[queries], encoded.database_codes)
    cut = distances[:, -1:]
    return Retrievals(
        queries.astype(np.int64),
        distances,
        indices,
        matches,
        (every < cut).sum(axis=1).astype(np.int64),
        (every == cut).sum(axis=1).astype(np.int64),
    )
