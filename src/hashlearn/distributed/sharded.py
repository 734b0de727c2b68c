"""An index split over Ray actors, one per shard file, searched as one index.

:class:`ShardedIndex` follows the index contract of :class:`~hashlearn.index.BinaryIndex`
(``search``, ``range_search``, ``add_with_ids``, ``remove_ids``, ``ntotal``) over the shards a
manifest lists (:func:`~hashlearn.distributed.write_sharded_index`). Each shard is loaded,
memory-mapped, by one Ray actor, spread over the cluster's machines; every query batch goes to
every shard at once and the shards' results are merged by (distance, id). Each shard returns its
own ``k`` best (or everything within the radius) sorted by (distance, id), and the index
contract breaks ties by id, so the merged results are exactly those of one index holding all
items: the ``k`` smallest (distance, id) pairs of the union (faiss' ``IndexShards`` merges the
same way, by distance only).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashlearn._validation import check_int, check_k
from hashlearn.codes import check_codes, n_bytes
from hashlearn.distributed._ray import connect, worker_error
from hashlearn.distributed.manifest import file_sha256, read_manifest, shard_of
from hashlearn.exceptions import FileFormatError, HashlearnError, InvalidInputError
from hashlearn.index import check_queries, load_index

__all__ = ["ShardedIndex"]


class _ShardActor:
    """Holds one shard's index (a Ray actor); the methods are the index's."""

    def __init__(self, path: str, sha256: str, mmap: bool) -> None:
        if file_sha256(path) != sha256:
            raise FileFormatError(f"{path!r} is not the shard file its manifest lists (checksum)")
        self.index = load_index(path, mmap=mmap)

    def ntotal(self) -> int:
        return self.index.ntotal

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, k)

    def range_search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
        return self.index.range_search(queries, radius)

    def ids(self) -> np.ndarray:
        return self.index.ids

    def get_codes(self, ids: np.ndarray) -> np.ndarray:
        return self.index.get_codes(ids)

    def present(self, ids: np.ndarray) -> np.ndarray:
        return ids[np.isin(ids, self.index.ids)]

    def add_with_ids(self, codes: np.ndarray, ids: np.ndarray) -> None:
        self.index.add_with_ids(codes, ids)

    def remove_ids(self, ids: np.ndarray) -> int:
        return self.index.remove_ids(ids)


class ShardedIndex:
    """The shards of a manifest, each held by a Ray actor, searched as one index.

    Parameters
    ----------
    manifest : path
        A shard manifest (``hashlearn index --shards``, :func:`write_sharded_index`).
    address : str or None, default "local"
        The Ray cluster (see :func:`~hashlearn.distributed.connect`).
    mmap : bool, default True
        Memory-map the shard files (the page cache holds them, shared with other processes).
    cpus_per_shard : float, default 0
        CPUs reserved by each shard's actor. None is reserved by default: an actor mostly waits
        for queries, and a reservation would keep other work (an encoding job) off the cluster.
    timeout : float, default 120
        Seconds to wait for every shard to be loaded.

    Attributes
    ----------
    n_bits, code_size, n_shards : int

    Notes
    -----
    Item ``id`` lives in shard ``id % n_shards``: :meth:`add_with_ids` and :meth:`remove_ids`
    send each id to its shard. Changes live in the actors' memory until :meth:`close`; the
    shard files are not rewritten. Calls from one process are applied in order.

    Raises
    ------
    InvalidInputError, FileFormatError
        A missing, malformed or corrupted manifest or shard file.
    HashlearnError
        Ray is not installed.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str],
        *,
        address: str | None = "local",
        mmap: bool = True,
        cpus_per_shard: float = 0.0,
        timeout: float = 120.0,
    ) -> None:

        self.manifest = read_manifest(manifest)
        for path in self.manifest.shards:
            if not path.is_file():
                raise InvalidInputError(f"shard file not found: {os.fspath(path)!r}")
        self._ray = ray = connect(address)
        self.n_bits = self.manifest.n_bits
        self.code_size = n_bytes(self.n_bits)
        self.n_shards = self.manifest.n_shards
        actor = ray.remote(_ShardActor).options(
            num_cpus=cpus_per_shard, scheduling_strategy="SPREAD"
        )
        self._actors = [
            actor.remote(os.fspath(path), digest, mmap)
            for path, digest in zip(self.manifest.shards, self.manifest.sha256)
        ]
        # loaded, or the reason why not
        self._get([a.ntotal.remote() for a in self._actors], timeout=timeout)

    # ------------------------------------------------------------------ plumbing
    def _get(self, refs: list[Any], timeout: float | None = None) -> list[Any]:
        """The results of actor calls, with a shard's hashlearn error raised as itself."""
        ray = self._ray
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise HashlearnError(
                f"the {self.n_shards} shards were not loaded within {timeout} s: is the cluster "
                "short of memory or CPUs?"
            ) from None
        except ray.exceptions.RayError as exc:
            cause = worker_error(exc)
            if cause is not None:
                raise cause from None
            message = str(exc).strip().splitlines()
            raise HashlearnError(
                f"a shard failed: {message[-1] if message else type(exc).__name__}"
            ) from None

    def _route(self, ids: np.ndarray) -> list[np.ndarray]:
        """Positions of ``ids`` in each shard (``id % n_shards``)."""
        owner = shard_of(ids, self.n_shards)
        return [np.flatnonzero(owner == shard) for shard in range(self.n_shards)]

    @staticmethod
    def _ids(ids: Any, n: int | None = None) -> NDArray[np.int64]:
        array = np.asarray(ids)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise InvalidInputError(
                f"ids must be a 1-D array of integers, got {array.dtype} {array.shape}"
            )
        if n is not None and len(array) != n:
            raise InvalidInputError(f"{len(array)} ids for {n} codes")
        if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
            raise InvalidInputError("ids must fit in int64")
        return array.astype(np.int64)

    # ------------------------------------------------------------------ the index contract
    @property
    def ntotal(self) -> int:
        """Items over all shards."""
        return int(sum(self._get([a.ntotal.remote() for a in self._actors])))

    @property
    def ids(self) -> NDArray[np.int64]:
        """Ids of the items, shard by shard (each in its insertion order), ``int64 (ntotal,)``."""
        parts = self._get([a.ids.remote() for a in self._actors])
        return np.concatenate([np.zeros(0, np.int64), *parts]).astype(np.int64)

    def get_codes(self, ids: Any) -> NDArray[np.uint8]:
        """The codes of items by id, ``uint8 (len(ids), code_size)``, from their shards.

        Raises
        ------
        UnknownIdError
            An id is not in the index.
        """
        ids = self._ids(ids)
        routes = self._route(ids)
        out = np.zeros((len(ids), self.code_size), dtype=np.uint8)
        asked = [(a, r) for a, r in zip(self._actors, routes) if len(r)]
        for (_, r), codes in zip(asked, self._get([a.get_codes.remote(ids[r]) for a, r in asked])):
            out[r] = codes
        return out

    def nodes(self) -> list[str]:
        """The Ray node id of each shard's actor (where its shard is held)."""
        return [str(node) for node in self._get([a.node.remote() for a in self._actors])]

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"ShardedIndex(n_bits={self.n_bits}, n_shards={self.n_shards})"

    def search(
        self, queries: NDArray[np.uint8], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """The ``k`` nearest items of each query over all shards.

        Parameters
        ----------
        queries : uint8 (nq, code_size)
        k : int
            At least 1.

        Returns
        -------
        D : int32 (nq, min(k, ntotal))
            Hamming distances, ascending; padding ``2**31 - 1``.
        I : int64 (nq, min(k, ntotal))
            Ids, ties by id; padding ``-1``.
        """
        queries = check_queries(queries, self.n_bits)
        k = check_k(k)
        ref = self._ray.put(queries)
        parts = self._get([a.search.remote(ref, k) for a in self._actors])
        D = np.concatenate([d for d, _ in parts], axis=1)
        I = np.concatenate([i for _, i in parts], axis=1)
        # padding has the largest distance, so it sorts after every item
        best = np.lexsort((I, D), axis=1)[:, :k]
        return (
            np.take_along_axis(D, best, axis=1).astype(np.int32),
            np.take_along_axis(I, best, axis=1).astype(np.int64),
        )

    def range_search(
        self, queries: NDArray[np.uint8], radius: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """Every item within ``radius`` (inclusive) of each query, over all shards.

        Returns
        -------
        lims : int64 (nq + 1,)
        D : int32 (lims[-1],)
        I : int64 (lims[-1],)
            Query ``q``'s results are ``D[lims[q]:lims[q + 1]]``, ``I[...]``, sorted by
            (distance, id).
        """
        queries = check_queries(queries, self.n_bits)
        radius = check_int(radius, "radius", minimum=0)
        ref = self._ray.put(queries)
        parts = self._get([a.range_search.remote(ref, radius) for a in self._actors])
        nq = len(queries)
        query = np.concatenate(
            [np.repeat(np.arange(nq, dtype=np.int64), np.diff(lims)) for lims, _, _ in parts]
        )
        D = np.concatenate([d for _, d, _ in parts]).astype(np.int32)
        I = np.concatenate([i for _, _, i in parts]).astype(np.int64)
        order = np.lexsort((I, D, query))
        lims = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(np.bincount(query, minlength=nq), out=lims[1:])
        return lims, D[order], I[order]

    def add_with_ids(self, codes: NDArray[np.uint8], ids: Any) -> None:
        """Add items, each to the shard of its id; nothing is added if an id is refused.

        Raises
        ------
        CodeFormatError
            Bad codes.
        InvalidInputError
            ``ids`` are not ``n`` integers, or are negative, repeated or already present.
        """
        codes = check_codes(codes, self.n_bits)
        ids = self._ids(ids, len(codes))
        if len(ids) and ids.min() < 0:
            raise InvalidInputError("ids must be non-negative")
        if len(np.unique(ids)) != len(ids):
            raise InvalidInputError("ids repeat within the call")
        routes = self._route(ids)
        found = self._get([a.present.remote(ids[r]) for a, r in zip(self._actors, routes)])
        present = np.concatenate([np.zeros(0, np.int64), *found])
        if len(present):
            raise InvalidInputError(
                f"{len(present)} ids are already in the index, e.g. {present[:5].tolist()}"
            )
        self._get(
            [
                a.add_with_ids.remote(codes[r], ids[r])
                for a, r in zip(self._actors, routes)
                if len(r)
            ]
        )

    def remove_ids(self, ids: Any) -> int:
        """Remove the items with these ids (absent ids are ignored); the number removed."""
        ids = self._ids(ids)
        routes = self._route(ids)
        return int(
            sum(
                self._get(
                    [a.remove_ids.remote(ids[r]) for a, r in zip(self._actors, routes) if len(r)]
                )
            )
        )

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the shard actors (unsaved changes are lost)."""
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        self._actors = []

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
