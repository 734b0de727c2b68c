"""The search service without HTTP: a hasher, an index, and a durable store of writes.

:class:`SearchService` answers the requests of the web application (:mod:`hashlearn.serve.app`)
as plain Python calls, so it can be used and tested without a server. Searches run on a
consistent view of the index while writes go on: a write is first made durable in the
:class:`~hashlearn.serve.store.ItemStore` (searches continue meanwhile), then applied to the index
under a short exclusive lock. :func:`~hashlearn.serve.loading.open_service` builds one from files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.codes import codes_to_hex
from hashlearn.exceptions import InvalidInputError
from hashlearn.index import BinaryIndex, UnknownIdError
from hashlearn.serve.catalog import ItemCatalog
from hashlearn.serve.decoding import DecodeBudget
from hashlearn.serve.errors import ItemNotFoundError, TooLargeError
from hashlearn.serve.limits import ServeLimits
from hashlearn.serve.locking import ReadWriteLock
from hashlearn.serve.queries import QueryEncoder
from hashlearn.serve.store import ItemStore
from hashlearn.serve.thumbnails import Thumbnail, ThumbnailCache
from hashlearn.serve.writes import NewItem, assign_ids, check_new_item, replay

__all__ = ["SearchService"]


class SearchService:
    """Search, add, delete and look up items of a served index.

    Parameters
    ----------
    encoder : QueryEncoder
        The model's query encoder.
    index : BinaryIndex
        The base index, as loaded (the service replays ``store`` onto it).
    store : ItemStore
        The durable record of writes.
    method : str
        Name of the model's method (shown by :meth:`stats`).
    limits : ServeLimits or None
    base_labels : tuple of (ids, labels) arrays or None
        Class labels of base items.
    images_dir : path or None
        Folder of base item images, named ``ID.png``, ``ID.jpg`` or ``ID.jpeg``.
    image_names : dict of int to str, or None
        The image file of each base item id, relative to ``images_dir`` (from
        :func:`hashlearn.encoding.read_image_names`): looked up instead of ``ID.png`` names,
        and shown as the item's metadata ``{"path": ...}``.
    thumbnail_dir : path or None
        Cache folder of the items' thumbnails (see :mod:`hashlearn.serve.thumbnails`); default
        ``thumbnails`` inside the store's folder.

    Raises
    ------
    InvalidInputError
        The index's code width differs from the model's.
    FileFormatError
        The store holds codes of another width.
    """

    def __init__(
        self,
        encoder: QueryEncoder,
        index: BinaryIndex,
        store: ItemStore,
        *,
        method: str,
        limits: ServeLimits | None = None,
        base_labels: tuple[np.ndarray, np.ndarray] | None = None,
        images_dir: str | os.PathLike[str] | None = None,
        image_names: dict[int, str] | None = None,
        thumbnail_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if index.n_bits != encoder.n_bits:
            raise InvalidInputError(
                f"the index holds {index.n_bits}-bit codes but the model makes {encoder.n_bits}-bit codes"
            )
        self.encoder = encoder
        self.index = index
        self.store = store
        self.method = method
        self.limits = limits or ServeLimits()
        # image decodes of every request (uploads, thumbnails) share one memory budget
        self.decode_budget = DecodeBudget(self.limits.max_decode_bytes, self.limits.decode_wait)
        self.catalog = ItemCatalog(
            index.ids,
            store,
            base_labels=base_labels,
            images_dir=images_dir,
            image_names=image_names,
        )
        self.thumbnails = ThumbnailCache(
            thumbnail_dir if thumbnail_dir is not None else store.directory / "thumbnails",
            max_image_bytes=self.limits.max_image_bytes,
            max_image_pixels=self.limits.max_image_pixels,
            budget=self.decode_budget,
        )
        self._lock = ReadWriteLock()
        self._write_mutex = threading.Lock()
        self._sorted_ids: np.ndarray | None = None
        self._next_id = replay(store, index, self.catalog)
        # Load the compiled search kernels now (from numba's disk cache, hundreds of ms for MIH),
        # so that the first request does not wait for them.
        probe = np.zeros((1, index.code_size), dtype=np.uint8)
        index.search(probe, 1)
        index.range_search(probe, 0)

    @property
    def images_dir(self) -> Path | None:
        """Folder of the base items' images (None without one)."""
        return self.catalog.images_dir

    @property
    def image_names(self) -> dict[int, str]:
        """The image file of each base item id, relative to :attr:`images_dir` (maybe empty)."""
        return self.catalog.image_names

    def close(self) -> None:
        """Close the store (every acknowledged write is already on disk)."""
        with self._write_mutex:
            self.store.close()

    # ------------------------------------------------------------------ reading
    def search(
        self, code: np.ndarray, *, k: int | None = None, radius: int | None = None
    ) -> dict[str, Any]:
        """Nearest items of one code: the ``k`` nearest, or all within ``radius``.

        Parameters
        ----------
        code : numpy.ndarray of uint8, shape (1, code_size)
        k : int or None
            1 .. ``limits.max_k``; default 10 when ``radius`` is None too.
        radius : int or None
            0 .. ``limits.max_radius``; at most ``limits.max_results`` hits are returned.

        Returns
        -------
        dict
            ``query_code`` (hex), ``n_bits``, ``k`` or ``radius``, ``hits`` (each ``id``,
            ``distance``, ``label``, ``metadata``, ``has_image``; by distance, ties by id),
            ``n_found`` (hits before any cut) and ``truncated``.

        Raises
        ------
        InvalidInputError
            Both or neither of ``k`` and ``radius`` given, or one out of its range.
        """
        if k is not None and radius is not None:
            raise InvalidInputError("give k or radius, not both")
        result: dict[str, Any] = {
            "query_code": codes_to_hex(code)[0],
            "n_bits": self.encoder.n_bits,
        }
        with self._lock.read():
            if radius is None:
                k = self.limits.check_k(10 if k is None else k)
                distances, ids = self.index.search(code, k)
                keep = ids[0] >= 0
                distances, ids = distances[0][keep], ids[0][keep]
                result.update(k=k, n_found=len(ids), truncated=False)
            else:
                radius = self.limits.check_radius(radius)
                lims, distances, ids = self.index.range_search(code, radius)
                found = int(lims[1])
                cut = min(found, self.limits.max_results)
                distances, ids = distances[:cut], ids[:cut]
                result.update(radius=radius, n_found=found, truncated=found > cut)
            hits = self.catalog.describe(ids)
        for hit, distance in zip(hits, distances.tolist()):
            hit["distance"] = int(distance)
        result["hits"] = hits
        return result

    def code_of(self, item_id: int) -> np.ndarray:
        """The stored code ``uint8 (1, code_size)`` of an item.

        Raises
        ------
        ItemNotFoundError
            No item has this id.
        """
        with self._lock.read():
            try:
                return self.index.get_codes(np.array([item_id], dtype=np.int64))
            except UnknownIdError:
                raise ItemNotFoundError(f"item {item_id} is not in the index") from None

    def get_item(self, item_id: int) -> dict[str, Any]:
        """``id``, ``code`` (hex), ``label``, ``metadata``, ``has_image`` and ``source``
        (``"base"`` or ``"added"``) of an item.

        Raises
        ------
        ItemNotFoundError
            No item has this id.
        """
        with self._lock.read():
            if not self.catalog.is_present(item_id):
                raise ItemNotFoundError(f"item {item_id} is not in the index")
            code = self.index.get_codes(np.array([item_id], dtype=np.int64))
            (item,) = self.catalog.describe(np.array([item_id], dtype=np.int64))
            item["source"] = "added" if item_id in self.catalog.added else "base"
        item["code"] = codes_to_hex(code)[0]
        return item

    def image_of(self, item_id: int) -> tuple[Path, str]:
        """Path and media type of an item's image file.

        Raises
        ------
        ItemNotFoundError
            No item has this id, or it has no image.
        """
        with self._lock.read():
            if not self.catalog.is_present(item_id):
                raise ItemNotFoundError(f"item {item_id} is not in the index")
            found = self.catalog.image_of(item_id)
        if found is None:
            raise ItemNotFoundError(f"item {item_id} has no image")
        return found

    def thumbnail_etag(self, item_id: int) -> str:
        """The entity tag of an item's thumbnail, without making it (for ``If-None-Match``).

        Raises
        ------
        ItemNotFoundError
            No item has this id, or it has no image.
        """
        return self.thumbnails.etag(item_id, self.image_of(item_id)[0])

    def thumbnail_of(self, item_id: int) -> Thumbnail:
        """An item's thumbnail (made on first request, then read from the cache).

        Raises
        ------
        ItemNotFoundError
            No item has this id, or it has no image.
        ItemImageError
            Its image file is not a PNG or JPEG, does not decode or is over the limits.
        """
        return self.thumbnails.get(item_id, self.image_of(item_id)[0])

    def list_items(
        self, offset: int = 0, limit: int = 24, sample_seed: int | None = None
    ) -> dict[str, Any]:
        """A page of items in ascending id order, or a random sample of them.

        Parameters
        ----------
        offset : int
            Position of the page's first item in ascending id order.
        limit : int
            Items per page, ``1 .. limits.max_k``.
        sample_seed : int or None
            When given, ``limit`` items drawn at random (without replacement, with this seed)
            instead of the page at ``offset``; still in ascending id order.

        Returns
        -------
        dict
            ``total``, ``offset`` and ``items`` (each ``id``, ``label``, ``metadata``,
            ``has_image``).

        Raises
        ------
        InvalidInputError
            ``offset`` or ``sample_seed`` is negative, or ``limit`` is outside ``1 .. limits.max_k``.
        """
        offset = check_int(offset, "offset", minimum=0)
        limit = check_int(limit, "limit", minimum=1, maximum=self.limits.max_k)
        if sample_seed is not None:
            sample_seed = check_int(sample_seed, "sample_seed", minimum=0, maximum=2**63 - 1)
        with self._lock.read():
            if self._sorted_ids is None:
                self._sorted_ids = np.sort(self.index.ids)
            ids = self._sorted_ids
            if sample_seed is None:
                page = ids[offset : offset + limit]
            else:
                rng = np.random.default_rng(sample_seed)
                page = np.sort(ids[rng.choice(len(ids), size=min(limit, len(ids)), replace=False)])
            return {"total": len(ids), "offset": offset, "items": self.catalog.describe(page)}

    def stats(self) -> dict[str, Any]:
        """Counts, code width, method, index type, input kind, known labels (``has_labels``: whether
        there are any) and the limits."""
        with self._lock.read():
            catalog = self.catalog
            labels = catalog.known_labels()
            return {
                "items": int(self.index.ntotal),
                "base_items": catalog.base_count - len(catalog.deleted_base),
                "added_items": len(catalog.added),
                "deleted_base_items": len(catalog.deleted_base),
                "bits": self.encoder.n_bits,
                "method": self.method,
                "index_type": type(self.index).__name__,
                "input_kind": getattr(self.encoder.hasher, "input_kind", "features"),
                "image_shape": list(self.encoder.image_shape) if self.encoder.image_shape else None,
                "n_features": self.encoder.n_features,
                "labels": labels,
                "has_labels": bool(labels),
                "limits": self.limits.as_dict(),
            }

    # ------------------------------------------------------------------ writing
    def add(self, items: Sequence[NewItem]) -> list[dict[str, Any]]:
        """Add items; returns after they are durable. All or nothing.

        Parameters
        ----------
        items : sequence of NewItem

        Returns
        -------
        list of dict
            ``id`` and ``code`` (hex) of each added item, in the order given.

        Raises
        ------
        InvalidInputError
            No items, too many, a bad label or metadata, or an id repeated in the request.
        ItemExistsError
            An id is already in the index.
        """
        if not items:
            raise InvalidInputError("no items to add")
        if len(items) > self.limits.max_items_per_request:
            raise TooLargeError(
                f"{len(items)} items in one request; the limit is {self.limits.max_items_per_request}"
            )
        for item in items:
            check_new_item(item, self.encoder, self.limits)
        with self._write_mutex:
            with self._lock.read():
                records = assign_ids(items, self._next_id, self.catalog.is_present)
            next_id = max([self._next_id] + [record.id + 1 for record in records])
            self.store.add(records, next_id)  # durable from here on
            codes = np.concatenate([item.code for item in items])
            ids = np.array([record.id for record in records], dtype=np.int64)
            with self._lock.write():
                self.index.add_with_ids(codes, ids)
                self.catalog.record_added(records)
                self._sorted_ids = None
            self._next_id = next_id
        return [
            {"id": record.id, "code": code} for record, code in zip(records, codes_to_hex(codes))
        ]

    def delete(self, item_id: int) -> None:
        """Delete an item; returns after the deletion is durable.

        Raises
        ------
        ItemNotFoundError
            No item has this id.
        """
        with self._write_mutex:
            with self._lock.read():
                present = self.catalog.is_present(item_id)
            if not present:
                raise ItemNotFoundError(f"item {item_id} is not in the index")
            if item_id in self.catalog.added:
                self.store.delete_added(item_id)
            else:
                self.store.delete_base(item_id)
            with self._lock.write():
                self.index.remove_ids(np.array([item_id], dtype=np.int64))
                self.catalog.record_deleted(item_id)
                self._sorted_ids = None
            self.thumbnails.forget(item_id)
