"""What the service knows of its items beyond their codes: which are present, labels, metadata,
images.

The base items (those of the index file) are known from their sorted ids, their labels (given at
start) and their image files; items added through the service from their stored records. The
:class:`ItemCatalog` answers "is it here, and what is it" for both; the service holds its lock
around every call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn.exceptions import InvalidInputError
from hashlearn.serve.store import MEDIA_TYPES, ItemStore, StoredItem

__all__ = ["MAX_LABEL", "NO_LABEL", "AddedRecord", "ItemCatalog", "align_labels"]

NO_LABEL = int(np.iinfo(np.int64).min)
"""Marks base items without a label (so not a label an item may have)."""
MAX_LABEL = int(np.iinfo(np.int64).max)
"""Largest label an item may have."""

_BASE_IMAGE_EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


@dataclass(frozen=True)
class AddedRecord:
    """What is recorded of an item added through the service (its code is in the index)."""

    label: int | None
    metadata: dict[str, Any] | None
    image: str | None  # extension of its stored image file, None without one


def align_labels(
    base_ids: np.ndarray, labels: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray | None:
    """Labels of the (sorted) base ids; :data:`NO_LABEL` where none is given.

    Parameters
    ----------
    base_ids : numpy.ndarray of int64, shape (n,), ascending
    labels : (ids, labels) pair of 1-D arrays of one length, or None

    Returns
    -------
    numpy.ndarray of int64, shape (n,), or None when ``labels`` is None

    Raises
    ------
    InvalidInputError
        The arrays are not 1-D and of one length, or the labels are not integers.
    """
    if labels is None:
        return None
    ids, values = (np.asarray(a) for a in labels)
    if ids.shape != values.shape or ids.ndim != 1:
        raise InvalidInputError(
            f"labels must be 1-D and as long as their ids, got shapes {values.shape} and {ids.shape}"
        )
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise InvalidInputError(f"labels must be integer class labels, got dtype {values.dtype}")
    out = np.full(len(base_ids), NO_LABEL, dtype=np.int64)
    where = np.searchsorted(base_ids, ids)
    known = (where < len(base_ids)) & (base_ids[np.minimum(where, len(base_ids) - 1)] == ids)
    if len(base_ids):
        out[where[known]] = values[known]
    return out


class ItemCatalog:
    """Presence, labels, metadata and images of the base items and of the added ones.

    Not thread-safe: the service calls it under its lock.

    Parameters
    ----------
    base_ids : numpy.ndarray of int64
        Ids of the index file's items (any order).
    store : ItemStore
        Where the images of added items are kept.
    base_labels : tuple of (ids, labels) arrays or None
        Class labels of base items.
    images_dir : path or None
        Folder of base item images, named ``ID.png``, ``ID.jpg`` or ``ID.jpeg``.
    image_names : dict of int to str, or None
        The image file of each base item id, relative to ``images_dir``: looked up instead of
        ``ID.png`` names, and shown as the item's metadata ``{"path": ...}``.

    Raises
    ------
    InvalidInputError
        ``base_labels`` is malformed (see :func:`align_labels`).
    """

    def __init__(
        self,
        base_ids: np.ndarray,
        store: ItemStore,
        *,
        base_labels: tuple[np.ndarray, np.ndarray] | None = None,
        images_dir: str | os.PathLike[str] | None = None,
        image_names: dict[int, str] | None = None,
    ) -> None:
        self.base_ids = np.sort(base_ids)
        self.base_labels = align_labels(self.base_ids, base_labels)
        self.base_count = len(self.base_ids)
        self.store = store
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.image_names = image_names or {}
        self.deleted_base: set[int] = set()
        self.added: dict[int, AddedRecord] = {}

    # ------------------------------------------------------------------ changes
    def record_added(self, items: list[StoredItem]) -> None:
        """Know ``items`` as added."""
        for item in items:
            self.added[item.id] = AddedRecord(item.label, item.metadata, item.image)

    def record_deleted(self, item_id: int) -> None:
        """Know ``item_id`` (present) as deleted."""
        if item_id in self.added:
            del self.added[item_id]
        else:
            self.deleted_base.add(item_id)

    # ------------------------------------------------------------------ questions
    def is_present(self, item_id: int) -> bool:
        """Whether an item of this id is in the index now."""
        return item_id in self.added or (
            item_id not in self.deleted_base and self._in_base(item_id)
        )

    def _in_base(self, item_id: int) -> bool:
        where = int(np.searchsorted(self.base_ids, item_id))
        return where < self.base_count and int(self.base_ids[where]) == item_id

    def labels_of(self, ids: np.ndarray) -> list[int | None]:
        """The label of each present item of ``ids``, None for those without one."""
        labels: list[int | None] = []
        for item_id in ids.tolist():
            record = self.added.get(item_id)
            if record is not None:
                labels.append(record.label)
            elif self.base_labels is not None:
                where = int(np.searchsorted(self.base_ids, item_id))
                value = int(self.base_labels[where])
                labels.append(None if value == NO_LABEL else value)
            else:
                labels.append(None)
        return labels

    def known_labels(self) -> list[int]:
        """Every label an item has or had, ascending."""
        labels = {record.label for record in self.added.values()} - {None}
        if self.base_labels is not None:
            labels |= set(np.unique(self.base_labels).tolist()) - {NO_LABEL}
        return sorted(labels)

    def describe(self, ids: np.ndarray) -> list[dict[str, Any]]:
        """``id``, ``label``, ``metadata`` and ``has_image`` of present items."""
        labels = self.labels_of(ids)
        out = []
        for item_id, label in zip(ids.tolist(), labels):
            record = self.added.get(item_id)
            out.append(
                {
                    "id": item_id,
                    "label": label,
                    "metadata": record.metadata if record else self._base_metadata(item_id),
                    "has_image": self.image_of(item_id) is not None,
                }
            )
        return out

    def _base_metadata(self, item_id: int) -> dict[str, Any] | None:
        """``{"path": file name}`` of a base item encoded from a folder, else None."""
        name = self.image_names.get(item_id)
        return None if name is None else {"path": name}

    def image_of(self, item_id: int) -> tuple[Path, str] | None:
        """Path and media type of a present item's image, or None."""
        record = self.added.get(item_id)
        if record is not None:
            if record.image is None:
                return None
            return self.store.image_path(item_id, record.image), MEDIA_TYPES[record.image]
        if self.images_dir is None:
            return None
        name = self.image_names.get(item_id)
        if name is not None:
            if os.path.isabs(name) or ".." in Path(name).parts:  # only files under images_dir
                return None
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
