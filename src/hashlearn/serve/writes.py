"""The service's writes before they reach the index: items checked, ids given, the store replayed.

A write is made durable in the :class:`~hashlearn.serve.store.ItemStore` before the index changes
(see :class:`~hashlearn.serve.service.SearchService`); at start, :func:`replay` applies the store's
deletions and additions to the freshly loaded base index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashlearn.encoding import DecodedImage
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.index import BinaryIndex
from hashlearn.serve.catalog import MAX_LABEL, NO_LABEL, ItemCatalog
from hashlearn.serve.errors import ItemExistsError, TooLargeError
from hashlearn.serve.limits import MAX_ID, ServeLimits
from hashlearn.serve.queries import QueryEncoder
from hashlearn.serve.store import MAX_METADATA_DEPTH, ItemStore, StoredItem, metadata_json

__all__ = ["MAX_METADATA_DEPTH", "NewItem", "assign_ids", "check_new_item", "replay"]

_LOG = logging.getLogger("hashlearn.serve")


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
    image : DecodedImage or None
        Stored and served at ``/items/{id}/image``.
    """

    code: np.ndarray
    id: int | None = None
    label: int | None = None
    metadata: dict[str, Any] | None = None
    image: DecodedImage | None = None


def check_new_item(item: NewItem, encoder: QueryEncoder, limits: ServeLimits) -> None:
    """Check one item to add: its code's width, id, label and metadata.

    Raises
    ------
    InvalidInputError
        The code is not one code of the model's width, the id or label is out of range, or the
        metadata is not a JSON object the store keeps (see
        :func:`~hashlearn.serve.store.metadata_json`: the store checks its rows the same way at
        start, so no accepted write keeps the service from starting).
    TooLargeError
        The metadata is longer than ``limits.max_metadata_bytes`` as JSON.
    """
    encoder.check_code(item.code)
    if item.id is not None and not 0 <= item.id <= MAX_ID:
        raise InvalidInputError(f"an item id must be between 0 and {MAX_ID}, got {item.id}")
    if item.label is not None and not NO_LABEL < item.label <= MAX_LABEL:
        raise InvalidInputError(
            f"label must be an integer between {NO_LABEL + 1} and {MAX_LABEL}, got {item.label}"
        )
    if item.metadata is not None:
        text = metadata_json(item.metadata)
        if len(text.encode()) > limits.max_metadata_bytes:
            raise TooLargeError(
                f"metadata is {len(text.encode())} bytes as JSON; the limit is "
                f"{limits.max_metadata_bytes}"
            )


def assign_ids(
    items: Sequence[NewItem], next_id: int, is_present: Callable[[int], bool]
) -> list[StoredItem]:
    """Stored records of ``items`` with their ids: given ones checked, missing ones assigned
    from ``next_id`` on (skipping the given ones).

    Raises
    ------
    InvalidInputError
        An id is given to more than one item, or no free ids are left.
    ItemExistsError
        A given id is present already.
    """
    given = [item.id for item in items if item.id is not None]
    if len(set(given)) != len(given):
        repeated = next(i for i in given if given.count(i) > 1)
        raise InvalidInputError(f"id {repeated} is given to more than one item")
    present = next((i for i in given if is_present(i)), None)
    if present is not None:
        raise ItemExistsError(f"item {present} is already in the index")
    taken = set(given)
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


def replay(store: ItemStore, index: BinaryIndex, catalog: ItemCatalog) -> int:
    """Apply the store's deletions and additions to the freshly loaded base ``index`` and record
    them in ``catalog``.

    Returns
    -------
    int
        The next id to hand out: above every base id, every stored id and the store's own count.

    Raises
    ------
    FileFormatError
        A row of the store is damaged (see :meth:`ItemStore.read`), e.g. holds codes of another
        width than the index, or an added item has the id of a base item that is not deleted.
    """
    contents = store.read(index.n_bits)
    base_ids = catalog.base_ids
    deleted = contents.deleted
    known = np.isin(deleted, base_ids)
    if not known.all():  # harmless: nothing to delete; a store never records such ids itself
        _LOG.warning(
            "the item store records %d deleted ids that are not base items (e.g. %d); ignored",
            int((~known).sum()),
            int(deleted[~known][0]),
        )
        deleted = deleted[known]
    index.remove_ids(deleted)
    catalog.deleted_base.update(int(i) for i in deleted)
    items = contents.items
    if items:
        ids = np.array([item.id for item in items], dtype=np.int64)
        clash = np.isin(ids, base_ids) & ~np.isin(ids, deleted)
        if clash.any():
            raise FileFormatError(
                f"the item store {store.path} is damaged: item {int(ids[clash][0])} is added, "
                "but the base index holds an item of that id (not deleted); the service does "
                "not start over it: restore the store from a backup, or delete that row"
            )
        codes = np.frombuffer(b"".join(item.code for item in items), dtype=np.uint8)
        index.add_with_ids(codes.reshape(len(items), index.code_size), ids)
    catalog.record_added(items)
    return max(
        [contents.next_id]
        + [int(base_ids[-1]) + 1 if len(base_ids) else 0]
        + [item.id + 1 for item in items[-1:]]
    )
