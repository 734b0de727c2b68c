"""A search service from files: the model, the index, the labels and images of its items, and the
store of writes made over them."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from hashlearn._io import read_arrays
from hashlearn.distributed import ShardedIndex, is_manifest
from hashlearn.encoding import read_image_names
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import load_hasher, read_model_file
from hashlearn.index import load_index
from hashlearn.serve.limits import ServeLimits
from hashlearn.serve.queries import QueryEncoder
from hashlearn.serve.service import SearchService
from hashlearn.serve.store import ItemStore

__all__ = ["default_data_dir", "load_labels", "open_service"]


def _file_digest(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_data_dir(index: str | os.PathLike[str]) -> str:
    """The store folder of an index when none is given: ``INDEX.data``, next to it."""
    return f"{os.fspath(index)}.data"


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
    resize: bool | None = None,
    limits: ServeLimits | None = None,
    mmap: bool = False,
    ray_address: str | None = None,
) -> SearchService:
    """Load a model and a base index, open (or create) the store of writes, and replay it.

    Parameters
    ----------
    model : path
        Model file written by ``Hasher.save``.
    index : path
        Index file (any type); read only. Or the JSON manifest of a sharded index
        (``hashlearn index --shards``): its shards are held by Ray actors
        (:class:`~hashlearn.distributed.ShardedIndex`), memory-mapped.
    data_dir : path or None
        Folder of the store; default: ``INDEX.data`` next to the index file.
    images_dir : path or None
        Folder of base item images, named by id (``ID.png``, ``ID.jpg``, ``ID.jpeg``), or the
        ``.npz`` of ``hashlearn encode --images`` (the image file of each id).
    labels : path or None
        Class labels of base items (see :func:`load_labels`).
    image_shape : tuple or None
        Input image shape of a ``"features"`` model fitted on raw pixels (see
        :class:`~hashlearn.encoding.ImageEncoder`).
    resize : bool or None
        Resize uploaded pictures of another size, and make colour grey for a grey model; False
        refuses them (HTTP 400); None: as the model was fitted (see
        :class:`~hashlearn.encoding.ImageEncoder`).
    limits : ServeLimits or None
    mmap : bool
        Memory-map the index file.
    ray_address : str or None
        With a shard manifest: the Ray cluster (``HOST:PORT``, ``auto``; default ``local``).

    Returns
    -------
    SearchService

    Raises
    ------
    FileFormatError
        A file is not what it should be, or the store belongs to another model or index, or
        its database is missing, empty or damaged (see :mod:`hashlearn.serve.store`).
    FolderInUseError
        Another service uses the store's folder.
    StorageReadOnlyError, StorageFullError
        The store's folder cannot be written.
    InvalidInputError
        The model and index disagree on the code width, or an option is malformed.
    """
    for name, path in (("model", model), ("index", index)):
        if not os.path.isfile(path):
            raise InvalidInputError(f"{name} file not found: {os.fspath(path)!r}")
    image_names = None
    if images_dir is not None and os.fspath(images_dir).endswith(".npz"):
        images_dir, image_names = read_image_names(images_dir)
    elif images_dir is not None and not os.path.isdir(images_dir):
        raise InvalidInputError(f"images folder not found: {os.fspath(images_dir)!r}")
    hasher = load_hasher(model)
    encoder = QueryEncoder(hasher, image_shape, resize=resize)
    if is_manifest(index):
        base: Any = ShardedIndex(index, address=ray_address or "local")
    elif ray_address is not None:
        raise InvalidInputError(
            f"a Ray cluster holds a sharded index: give its .json manifest, not {os.fspath(index)!r}"
        )
    else:
        base = load_index(index, mmap=mmap)
    base_labels = load_labels(labels, base.ids) if labels is not None else None
    identity = {
        "n_bits": str(hasher.n_bits),
        "model_sha256": read_model_file(model)[0].get("sha256", ""),
        "index_sha256": _file_digest(index),
    }
    store = ItemStore(data_dir if data_dir is not None else default_data_dir(index), identity)
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
