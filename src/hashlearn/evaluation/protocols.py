"""Named retrieval protocols: the query / database / train splits of the hashing literature.

Each protocol is a seeded, stratified recipe that turns a :class:`~hashlearn.datasets.Dataset`
into a :class:`~hashlearn.datasets.RetrievalSplit`; the same dataset and seed always give the same
indices (``RetrievalSplit.manifest`` fingerprints them).

=============== ==========================================================================
name            split
=============== ==========================================================================
``cifar10``     1,000 queries (100 per class) from all images; 5,000 train (500 per class)
                from the rest; database = the remaining 54,000 (train is not in it)
``cifar10-1``   1,000 queries (100 per class); database = the other 59,000; 5,000 train
                (500 per class) drawn from the database
``cifar10-2``   queries = the 10,000 official test images; train = database = the 50,000
                official training images
``mnist``       queries = the 10,000 official test images; train = database = the 60,000
                official training images (``fashion-mnist`` the same)
``grh``         Moran & Lavrenko's Graph Regularised Hashing evaluation: 0.2% of the items
                as queries, the rest split 98% database / 2% train (train held out)
``default``     the dataset's own ``default_split`` (see :func:`hashlearn.datasets.default_split`)
=============== ==========================================================================

Every protocol then carves a validation set out of its training draw (stratified, seeded;
10% of the draw unless ``n_validation`` says otherwise; 0 keeps the literature's exact train
size). Validation is disjoint from train, so train shrinks by that much. Model selection may look
at validation, never at the queries.

The protocols are the constants below (``CIFAR10``, ``CIFAR10_1``, ..., ``DEFAULT``), each
registered by name in :mod:`hashlearn.evaluation.registry`; a new protocol is one constant plus
one ``register`` line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.datasets.dataset import Dataset
from hashlearn.datasets.split import (
    RetrievalSplit,
    Subset,
    default_split,
    resolve_count,
    retrieval_split,
    stratified_sample,
)
from hashlearn.evaluation.registry import describe_protocols, get_protocol, list_protocols
from hashlearn.exceptions import InvalidInputError

QUERY_KINDS = ("per_class", "fraction", "test", "default")
TRAIN_KINDS = ("per_class", "fraction", "database")


@dataclass(frozen=True)
class Protocol:
    """A named recipe for a retrieval split.

    Attributes
    ----------
    name : registry name, recorded in ``RetrievalSplit.protocol``.
    description : one line for listings.
    query : how queries are chosen: ``"per_class"`` (``query_per_class`` items of every class,
        from all items), ``"fraction"`` (``query_fraction`` of all items, stratified),
        ``"test"`` (the dataset's official test set, ``Dataset.test_mask``) or ``"default"``
        (the dataset's ``default_split``; the other fields are then unused).
    query_per_class : queries per class for ``query="per_class"``.
    query_fraction : share of all items for ``query="fraction"``, in (0, 1).
    train : the training draw from the non-query items: ``"per_class"`` (``train_per_class``
        of every class), ``"fraction"`` (``train_fraction`` of them, stratified) or
        ``"database"`` (all of them).
    train_per_class : training items per class for ``train="per_class"``.
    train_fraction : share of the non-query items for ``train="fraction"``, in (0, 1).
    train_in_database : True: the database is every non-query item, the training draw among
        them; False: the training draw is held out and the database is what remains.
    validation_fraction : share of the training draw carved out as validation when
        ``split`` gets no ``n_validation``, in [0, 1).
    """

    name: str
    description: str = ""
    query: str = "per_class"
    query_per_class: int = 100
    query_fraction: float = 0.002
    train: str = "per_class"
    train_per_class: int = 500
    train_fraction: float = 0.02
    train_in_database: bool = True
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.query not in QUERY_KINDS:
            raise InvalidInputError(f"query must be one of {QUERY_KINDS}, got {self.query!r}")
        if self.train not in TRAIN_KINDS:
            raise InvalidInputError(f"train must be one of {TRAIN_KINDS}, got {self.train!r}")
        check_int(self.query_per_class, "query_per_class", minimum=1)
        check_int(self.train_per_class, "train_per_class", minimum=1)
        for field_name in ("query_fraction", "train_fraction"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise InvalidInputError(f"{field_name} must be in (0, 1), got {value!r}")
        value = self.validation_fraction
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidInputError(f"validation_fraction must be in [0, 1), got {value!r}")
        if self.train == "database" and not self.train_in_database:
            raise InvalidInputError(
                "train='database' takes every non-query item, so it cannot be held out of the "
                "database (train_in_database=False)"
            )

    def split(
        self, dataset: Dataset, seed: int = 0, *, n_validation: int | float | None = None
    ) -> RetrievalSplit:
        """Split ``dataset`` by this protocol.

        Parameters
        ----------
        dataset : the items; ``dataset.y`` int labels (n,) or a multi-label indicator (n, c)
            (``"per_class"`` draws need int labels).
        seed : non-negative int; the same seed gives the same indices.
        n_validation : validation items carved out of the training draw: a count (0 allowed),
            or a fraction in (0, 1) of the draw; default ``validation_fraction`` of the draw.

        Returns
        -------
        RetrievalSplit
            Parts in seeded random order, ``protocol`` set to this protocol's name.

        Raises
        ------
        InvalidInputError
            For a bad seed or ``n_validation``, a ``"test"`` protocol on a dataset without
            ``test_mask``, a class with too few items for a per-class draw, or a split that
            would leave a part empty.
        """
        seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
        if self.query == "default":
            return self._default(dataset, seed, n_validation)
        y = dataset.y
        rng = np.random.default_rng(seed)
        query, rest = self._queries(dataset, rng)
        draw = self._train_draw(rest, y, rng)
        database = rest if self.train_in_database else np.setdiff1d(rest, draw)
        if len(database) == 0:
            raise InvalidInputError(f"protocol {self.name!r} leaves no database items")
        database = rng.permutation(database)
        n_val = self._validation_size(len(draw), n_validation)
        validation = (
            stratified_sample(rng, draw, y, n_val) if n_val else np.empty(0, dtype=np.int64)
        )
        train = draw[~np.isin(draw, validation)]
        parts = (query, database, train, validation)
        return RetrievalSplit(
            *(_subset(dataset, part) for part in parts),
            protocol=self.name,
            labelled=dataset.labelled,
        )

    # -- the steps -----------------------------------------------------------------------------

    def _queries(self, dataset: Dataset, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Query indices (random order) and the sorted indices of every other item."""
        n = len(dataset)
        everything = np.arange(n)
        if self.query == "test":
            mask = dataset.test_mask
            if mask is None:
                raise InvalidInputError(
                    f"protocol {self.name!r} takes the official test set as queries, but "
                    f"dataset {dataset.name!r} has none (no test_mask)"
                )
            if mask.all() or not mask.any():
                raise InvalidInputError(
                    f"protocol {self.name!r}: dataset {dataset.name!r} has {int(mask.sum())} "
                    f"test items of {n}; it needs both test and training items"
                )
            return rng.permutation(np.flatnonzero(mask)), np.flatnonzero(~mask)
        if self.query == "per_class":
            query = self._per_class(rng, everything, dataset.y, self.query_per_class, "queries")
        else:
            count = max(1, round(self.query_fraction * n))
            if count >= n:
                raise InvalidInputError(
                    f"protocol {self.name!r}: {n} items are too few for "
                    f"{self.query_fraction:g} of them as queries"
                )
            query = stratified_sample(rng, everything, dataset.y, count)
        return query, np.setdiff1d(everything, query)

    def _train_draw(self, rest: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The training draw (before validation is carved out), in random order."""
        if self.train == "database":
            return rng.permutation(rest)
        if self.train == "per_class":
            return self._per_class(rng, rest, y, self.train_per_class, "training items")
        count = max(1, round(self.train_fraction * len(rest)))
        if count >= len(rest) and not self.train_in_database:
            raise InvalidInputError(
                f"protocol {self.name!r}: {len(rest)} non-query items are too few to hold "
                f"{self.train_fraction:g} of them out for training"
            )
        return stratified_sample(rng, rest, y, min(count, len(rest)))

    def _per_class(
        self, rng: np.random.Generator, pool: np.ndarray, y: np.ndarray, k: int, what: str
    ) -> np.ndarray:
        """``k`` items of every class of ``y`` from ``pool``, in random order."""
        if y is None:
            raise InvalidInputError(
                f"protocol {self.name!r} draws {what} per class, but the items have no labels; "
                "choose a protocol that draws at random (`hashlearn list`) or the default"
            )
        if y.ndim != 1:
            raise InvalidInputError(
                f"protocol {self.name!r} draws {what} per class, which needs one int label per "
                f"item; got labels of shape {y.shape}"
            )
        chosen = []
        for label in np.unique(y):
            members = pool[y[pool] == label]
            if len(members) < k:
                raise InvalidInputError(
                    f"protocol {self.name!r} draws {k} {what} per class, but class {int(label)} "
                    f"has only {len(members)} item(s) left to draw from"
                )
            chosen.append(rng.choice(members, size=k, replace=False))
        return rng.permutation(np.concatenate(chosen))

    def _validation_size(self, n_draw: int, n_validation: int | float | None) -> int:
        if n_validation is None:
            count = round(self.validation_fraction * n_draw)
        else:
            count = resolve_count(n_validation, n_draw, "n_validation")
        if count >= n_draw:
            raise InvalidInputError(
                f"protocol {self.name!r}: n_validation ({count}) must leave at least one of the "
                f"{n_draw} training items for training"
            )
        return count

    def _default(
        self, dataset: Dataset, seed: int, n_validation: int | float | None
    ) -> RetrievalSplit:
        if not dataset.default_split:
            raise InvalidInputError(
                f"dataset {dataset.name!r} has no default_split; choose a named protocol "
                f"({', '.join(name for name in list_protocols() if name != 'default')})"
            )
        if n_validation is None:
            split = default_split(dataset, random_state=seed)
        else:
            kwargs = {**dataset.default_split, "n_validation": n_validation}
            split = retrieval_split(dataset.X, dataset.y, random_state=seed, **kwargs)
        return dataclasses.replace(split, protocol=self.name)


def _subset(dataset: Dataset, indices: np.ndarray) -> Subset:
    indices = indices.astype(np.int64)
    y = None if dataset.y is None else dataset.y[indices]
    return Subset(X=dataset.X[indices], y=y, indices=indices)


def _registered(name: str, **recipe: Any) -> Protocol:
    """The protocol registered as ``name`` (its description is the registry's)."""
    return Protocol(name, describe_protocols()[name], **recipe)


CIFAR10 = _registered("cifar10", query="per_class", train="per_class", train_in_database=False)
CIFAR10_1 = _registered("cifar10-1", query="per_class", train="per_class", train_in_database=True)
CIFAR10_2 = _registered("cifar10-2", query="test", train="database")
MNIST = _registered("mnist", query="test", train="database")
FASHION_MNIST = _registered("fashion-mnist", query="test", train="database")
GRH = _registered(
    "grh",
    query="fraction",
    query_fraction=0.002,
    train="fraction",
    train_fraction=0.02,
    train_in_database=False,
)
DEFAULT = _registered("default", query="default")


def apply_protocol(dataset: Dataset, name: str, seed: int = 0, **overrides: Any) -> RetrievalSplit:
    """Split ``dataset`` by the registered protocol ``name``.

    Parameters
    ----------
    dataset : the items.
    name : a name of :func:`list_protocols`.
    seed : non-negative int seed.
    **overrides : ``n_validation`` (see :meth:`Protocol.split`) and any :class:`Protocol`
        field (``query_per_class=10``, ``train_per_class=50``...) to scale the protocol down.

    Returns
    -------
    RetrievalSplit

    Raises
    ------
    UnknownNameError
        For an unregistered protocol.
    InvalidInputError
        For an unknown override or an invalid value (see :meth:`Protocol.split`).
    """
    protocol = get_protocol(name)
    n_validation = overrides.pop("n_validation", None)
    fields = {f.name for f in dataclasses.fields(Protocol)} - {"name", "description"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise InvalidInputError(
            f"unknown protocol override(s) {', '.join(unknown)}; allowed: n_validation, "
            f"{', '.join(sorted(fields))}"
        )
    if overrides:
        protocol = dataclasses.replace(protocol, **overrides)
    return protocol.split(dataset, seed, n_validation=n_validation)
