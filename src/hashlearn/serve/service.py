"""The search service without HTTP: a hasher, an index, and a durable store of writes.

:class:`SearchService` answers the requests of the web application (:mod:`hashlearn.serve.app`)
as plain Python calls, so it can be used and tested without a server. Searches run on a
consistent view of the index while writes go on: a write is first made durable in the
:class:`~hashlearn.serve.store.ItemStore` (searches continue meanwhile), then applied to the index
under a short exclusive lock. :func:`open_service` builds one from files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import read_arrays
from hashlearn._validation import check_int
from hashlearn.codes import codes_to_hex
from hashlearn.exceptions import InvalidInputError
from hashlearn.index import BinaryIndex, UnknownIdError
from hashlearn.serve.errors import ItemExistsError, ItemNotFoundError, TooLargeError
from hashlearn.serve.images import MEDIA_TYPES, QueryEncoder, UploadedImage
from hashlearn.serve.limits import MAX_ID, ServeLimits
from hashlearn.serve.store import ItemStore, StoredItem

__all__ = ["NewItem", "SearchService", "load_labels", "open_service"]

_BASE_IMAGE_EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers (no starvation)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._condition:
            while self._writing or self._waiting_writers:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                if not self._readers:
                    self._condition.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._condition:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._condition.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._condition.notify_all()


@dataclass(frozen=True)
class NewItem:
    """An item to add: its code, and optionally an id, a label, metadata and an image file.

    Attributes
    ----------
    code : numpy.ndarray of uint8, shape (1, code_size)
    id : int or None
        None: the service assigns the next free id.
    label : int or None
    metadata : dict or None
        A JSON object.
    image : UploadedImage or None
        Stored and served at ``/items/{id}/image``.
    """

    code: np.ndarray
    id: int | None = None
    label: int | None = None
    metadata: dict[str, Any] | None = None
    image: UploadedImage | None = None


@dataclass(frozen=True)
class _AddedRecord:
    label: int | None
    metadata: dict[str, Any] | None
    image: str | None


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
        :func:`hashlearn.imagefiles.read_image_names`): looked up instead of ``ID.png`` names,
        and shown as the item's metadata ``{"path": ...}``.

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
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.image_names = image_names or {}
        self._lock = _ReadWriteLock()
        self._write_mutex = threading.Lock()
        self._sorted_ids: np.ndarray | None = None
        self._base_ids = np.sort(index.ids)
        self._base_labels = _align_labels(self._base_ids, base_labels)
        self._base_count = len(self._base_ids)
        self._deleted_base: set[int] = set()
        self._added: dict[int, _AddedRecord] = {}
        self._next_id = 0
        self._replay()

    # ------------------------------------------------------------------ start
    def _replay(self) -> None:
        """Apply the store's deletions and additions to the freshly loaded base index."""
        deleted = self.store.deleted_ids()
        self.index.remove_ids(deleted)
        self._deleted_base = {int(i) for i in deleted}
        items = self.store.items()
        if items:
            width = self.index.code_size
            bad = next((item for item in items if len(item.code) != width), None)
            if bad is not None:
                raise InvalidInputError(
                    f"the item store holds a {len(bad.code)}-byte code (item {bad.id}), but codes "
                    f"here are {width} bytes"
                )
            codes = np.frombuffer(b"".join(item.code for item in items), dtype=np.uint8)
            self.index.add_with_ids(
                codes.reshape(len(items), width), np.array([item.id for item in items])
            )
        self._added = {
            item.id: _AddedRecord(item.label, item.metadata, item.image) for item in items
        }
        top = max(
            [self.store.next_id()]
            + [int(self._base_ids[-1]) + 1 if len(self._base_ids) else 0]
            + [item.id + 1 for item in items[-1:]]
        )
        self._next_id = top

    def close(self) -> None:
        """Close the store (every acknowledged write is already on disk)."""
        with self._write_mutex:
            self.store.close()

    # ------------------------------------------------------------------ lookups (under a lock)
    def _is_present(self, item_id: int) -> bool:
        return item_id in self._added or (
            item_id not in self._deleted_base and self._in_base(item_id)
        )

    def _in_base(self, item_id: int) -> bool:
        where = int(np.searchsorted(self._base_ids, item_id))
        return where < self._base_count and int(self._base_ids[where]) == item_id

    def _labels_of(self, ids: np.ndarray) -> list[int | None]:
        labels: list[int | None] = []
        for item_id in ids.tolist():
            record = self._added.get(item_id)
            if record is not None:
                labels.append(record.label)
            elif self._base_labels is not None:
                where = int(np.searchsorted(self._base_ids, item_id))
                value = int(self._base_labels[where])
                labels.append(None if value == _NO_LABEL else value)
            else:
                labels.append(None)
        return labels

    def _describe(self, ids: np.ndarray) -> list[dict[str, Any]]:
        """``id``, ``label``, ``metadata`` and ``has_image`` of present items."""
        labels = self._labels_of(ids)
        out = []
        for item_id, label in zip(ids.tolist(), labels):
            record = self._added.get(item_id)
            out.append(
                {
                    "id": item_id,
                    "label": label,
                    "metadata": record.metadata if record else self._base_metadata(item_id),
                    "has_image": self._image_of(item_id) is not None,
                }
            )
        return out

    def _base_metadata(self, item_id: int) -> dict[str, Any] | None:
        """``{"path": file name}`` of a base item encoded from a folder, else None."""
        name = self.image_names.get(item_id)
        return None if name is None else {"path": name}

    def _image_of(self, item_id: int) -> tuple[Path, str] | None:
        """Path and media type of a present item's image, or None."""
        record = self._added.get(item_id)
        if record is not None:
            if record.image is None:
                return None
            return self.store.image_path(item_id, record.image), MEDIA_TYPES[record.image]
        if self.images_dir is None:
            return None
        name = self.image_names.get(item_id)
        if name is not None:
            path = self.images_dir / name
            extension = path.suffix.lower().lstrip(".")
            if path.is_file() and extension in _BASE_IMAGE_EXTENSIONS:
                return path, _BASE_IMAGE_EXTENSIONS[extension]
            return None
        for extension, media_type in _BASE_IMAGE_EXTENSIONS.items():
            path = self.images_dir / f"{item_id}.{extension}"
            if path.is_file():
                return path, media_type
        return None

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
            hits = self._describe(ids)
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
            if not self._is_present(item_id):
                raise ItemNotFoundError(f"item {item_id} is not in the index")
            code = self.index.get_codes(np.array([item_id], dtype=np.int64))
            (item,) = self._describe(np.array([item_id], dtype=np.int64))
            item["source"] = "added" if item_id in self._added else "base"
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
            if not self._is_present(item_id):
                raise ItemNotFoundError(f"item {item_id} is not in the index")
            found = self._image_of(item_id)
        if found is None:
            raise ItemNotFoundError(f"item {item_id} has no image")
        return found

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
            return {"total": len(ids), "offset": offset, "items": self._describe(page)}

    def stats(self) -> dict[str, Any]:
        """Counts, code width, method, index type, input kind, known labels and the limits."""
        with self._lock.read():
            labels = {record.label for record in self._added.values()} - {None}
            if self._base_labels is not None:
                labels |= set(np.unique(self._base_labels).tolist()) - {_NO_LABEL}
            return {
                "items": int(self.index.ntotal),
                "base_items": self._base_count - len(self._deleted_base),
                "added_items": len(self._added),
                "deleted_base_items": len(self._deleted_base),
                "bits": self.encoder.n_bits,
                "method": self.method,
                "index_type": type(self.index).__name__,
                "input_kind": getattr(self.encoder.hasher, "input_kind", "features"),
                "image_shape": list(self.encoder.image_shape) if self.encoder.image_shape else None,
                "n_features": self.encoder.n_features,
                "labels": sorted(labels),
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
            self._check_item(item)
        with self._write_mutex:
            records = self._assign_ids(items)
            next_id = max([self._next_id] + [record.id + 1 for record in records])
            self.store.add(records, next_id)  # durable from here on
            codes = np.concatenate([item.code for item in items])
            ids = np.array([record.id for record in records], dtype=np.int64)
            with self._lock.write():
                self.index.add_with_ids(codes, ids)
                for record in records:
                    self._added[record.id] = _AddedRecord(
                        record.label, record.metadata, record.image
                    )
                self._sorted_ids = None
            self._next_id = next_id
        return [
            {"id": record.id, "code": code} for record, code in zip(records, codes_to_hex(codes))
        ]

    def _check_item(self, item: NewItem) -> None:
        self.encoder.check_code(item.code)
        if item.id is not None and not 0 <= item.id <= MAX_ID:
            raise InvalidInputError(f"an item id must be between 0 and {MAX_ID}, got {item.id}")
        if item.label is not None and not _NO_LABEL < item.label <= _MAX_LABEL:
            raise InvalidInputError(
                f"label must be an integer between {_NO_LABEL + 1} and {_MAX_LABEL}, got {item.label}"
            )
        if item.metadata is not None:
            if not isinstance(item.metadata, dict):
                raise InvalidInputError("metadata must be a JSON object")
            try:
                text = json.dumps(item.metadata, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"metadata cannot be stored as JSON: {exc}") from None
            if len(text.encode()) > self.limits.max_metadata_bytes:
                raise TooLargeError(
                    f"metadata is {len(text.encode())} bytes as JSON; the limit is "
                    f"{self.limits.max_metadata_bytes}"
                )

    def _assign_ids(self, items: Sequence[NewItem]) -> list[StoredItem]:
        """Stored records of ``items`` with their ids: given ones checked, missing ones assigned."""
        given = [item.id for item in items if item.id is not None]
        if len(set(given)) != len(given):
            repeated = next(i for i in given if given.count(i) > 1)
            raise InvalidInputError(f"id {repeated} is given to more than one item")
        with self._lock.read():
            present = next((i for i in given if self._is_present(i)), None)
        if present is not None:
            raise ItemExistsError(f"item {present} is already in the index")
        taken = set(given)
        next_id = self._next_id
        records = []
        for item in items:
            item_id = item.id
            if item_id is None:
                while next_id in taken:
                    next_id += 1
                item_id = next_id
                next_id += 1
            if item_id > MAX_ID:
                raise InvalidInputError("no free item ids are left")
            records.append(
                StoredItem(
                    id=item_id,
                    code=np.asarray(item.code, dtype=np.uint8).tobytes(),
                    label=item.label,
                    metadata=item.metadata,
                    image=item.image.extension if item.image else None,
                    image_data=item.image.data if item.image else None,
                )
            )
        return records

    def delete(self, item_id: int) -> None:
        """Delete an item; returns after the deletion is durable.

        Raises
        ------
        ItemNotFoundError
            No item has this id.
        """
        with self._write_mutex:
            with self._lock.read():
                present = self._is_present(item_id)
            if not present:
                raise ItemNotFoundError(f"item {item_id} is not in the index")
            added = item_id in self._added
            if added:
                self.store.delete_added(item_id)
            else:
                self.store.delete_base(item_id)
            with self._lock.write():
                self.index.remove_ids(np.array([item_id], dtype=np.int64))
                if added:
                    del self._added[item_id]
                else:
                    self._deleted_base.add(item_id)
                self._sorted_ids = None


_NO_LABEL = int(np.iinfo(np.int64).min)
"""Marks base items without a label (so not a label an item may have)."""
_MAX_LABEL = int(np.iinfo(np.int64).max)


def _align_labels(
    base_ids: np.ndarray, labels: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray | None:
    """Labels of the (sorted) base ids; ``_NO_LABEL`` where none is given."""
    if labels is None:
        return None
    ids, values = (np.asarray(a) for a in labels)
    if ids.shape != values.shape or ids.ndim != 1:
        raise InvalidInputError(
            f"labels must be 1-D and as long as their ids, got shapes {values.shape} and {ids.shape}"
        )
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise InvalidInputError(f"labels must be integer class labels, got dtype {values.dtype}")
    out = np.full(len(base_ids), _NO_LABEL, dtype=np.int64)
    where = np.searchsorted(base_ids, ids)
    known = (where < len(base_ids)) & (base_ids[np.minimum(where, len(base_ids) - 1)] == ids)
    if len(base_ids):
        out[where[known]] = values[known]
    return out


def _file_digest(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_labels(
    path: str | os.PathLike[str], index_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of base items from a file: ``.npy`` of labels in the index's storage order, or
    ``.npz`` with ``y`` (labels) and optionally ``ids`` (without, the index's storage order).

    Raises
    ------
    InvalidInputError
        The file is missing, unreadable without pickle, or its length does not match.
    """
    path = os.fspath(path)
    arrays = read_arrays(path, ("y", "ids"), require="y")
    values, ids = (arrays[""], None) if "" in arrays else (arrays["y"], arrays.get("ids"))
    if ids is None:
        if len(values) != len(index_ids):
            raise InvalidInputError(
                f"{path!r} holds {len(values)} labels but the index holds {len(index_ids)} items"
            )
        ids = index_ids
    return np.asarray(ids), np.asarray(values)


def open_service(
    model: str | os.PathLike[str],
    index: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    image_shape: tuple[int, ...] | None = None,
    limits: ServeLimits | None = None,
    mmap: bool = False,
) -> SearchService:
    """Load a model and a base index, open (or create) the store of writes, and replay it.

    Parameters
    ----------
    model : path
        Model file written by ``Hasher.save``.
    index : path
        Index file (any type); read only.
    data_dir : path or None
        Folder of the store; default: ``INDEX.data`` next to the index file.
    images_dir : path or None
        Folder of base item images, named by id (``ID.png``, ``ID.jpg``, ``ID.jpeg``), or the
        ``.npz`` of ``hashlearn encode --images`` (the image file of each id).
    labels : path or None
        Class labels of base items (see :func:`load_labels`).
    image_shape : tuple or None
        Input image shape of a ``"features"`` model fitted on raw pixels (see
        :class:`~hashlearn.serve.images.QueryEncoder`).
    limits : ServeLimits or None
    mmap : bool
        Memory-map the index file.

    Returns
    -------
    SearchService

    Raises
    ------
    FileFormatError
        A file is not what it should be, or the store belongs to another model or index.
    InvalidInputError
        The model and index disagree on the code width, or an option is malformed.
    """
    from hashlearn.hashers import load_hasher
    from hashlearn.hashers.base import read_model_file
    from hashlearn.index import load_index

    for name, path in (("model", model), ("index", index)):
        if not os.path.isfile(path):
            raise InvalidInputError(f"{name} file not found: {os.fspath(path)!r}")
    image_names = None
    if images_dir is not None and os.fspath(images_dir).endswith(".npz"):
        from hashlearn.imagefiles import read_image_names

        images_dir, image_names = read_image_names(images_dir)
    elif images_dir is not None and not os.path.isdir(images_dir):
        raise InvalidInputError(f"images folder not found: {os.fspath(images_dir)!r}")
    hasher = load_hasher(model)
    encoder = QueryEncoder(hasher, image_shape)
    base = load_index(index, mmap=mmap)
    base_labels = load_labels(labels, base.ids) if labels is not None else None
    identity = {
        "n_bits": str(hasher.n_bits),
        "model_sha256": read_model_file(model)[0].get("sha256", ""),
        "index_sha256": _file_digest(index),
    }
    store = ItemStore(data_dir if data_dir is not None else f"{os.fspath(index)}.data", identity)
    try:
        return SearchService(
            encoder,
            base,
            store,
            method=hasher.name,
            limits=limits,
            base_labels=base_labels,
            images_dir=images_dir,
            image_names=image_names,
        )
    except BaseException:
        store.close()
        raise
