"""The durable record of what the search service added and deleted.

The index file the service starts from is its read-only *base*. Every write goes to an
:class:`ItemStore` first: a folder holding an SQLite database (write-ahead log, ``synchronous =
FULL``: a transaction is on disk when its commit returns, see https://sqlite.org/pragma.html#pragma_synchronous)
and the image files of added items. At start the service loads the base and replays the store:
base items recorded as deleted are removed, added items are added. A write is acknowledged only
after its commit, so killing the process at any moment loses no acknowledged write.

Folder layout::

    DATA_DIR/items.sqlite3      tables meta (key, value), items (id, code, label, metadata, image)
                                and deleted (id): base ids deleted
    DATA_DIR/images/ID.EXT      image file of added item ID (EXT: png or jpg), written atomically
    DATA_DIR/thumbnails/        the items' thumbnails, a cache the service fills (not the store's:
                                see :mod:`hashlearn.serve.thumbnails`)

The ``meta`` table records the code width and SHA-256 digests of the model and of the base index
the writes were made over; opening the store over another model or index is an error, since its
codes or deletions would not mean the same thing there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._json import parse_json
from hashlearn.exceptions import FileFormatError, InvalidInputError

__all__ = ["MEDIA_TYPES", "STORE_FORMAT", "ItemStore", "StoredItem"]

_LOG = logging.getLogger("hashlearn.serve")

STORE_FORMAT = "hashlearn.serve-store"
STORE_VERSION = 1
_IMAGE_EXTENSIONS = ("png", "jpg")

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
"""Content type of each stored image extension."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    code BLOB NOT NULL,
    label INTEGER,
    metadata TEXT,
    image TEXT
);
CREATE TABLE IF NOT EXISTS deleted (id INTEGER PRIMARY KEY);
"""


@dataclass(frozen=True)
class StoredItem:
    """An item added through the service.

    Attributes
    ----------
    id : int
    code : bytes
        The packed code, ``code_size`` bytes.
    label : int or None
    metadata : dict or None
        A JSON object.
    image : str or None
        Extension of its stored image file (``"png"`` or ``"jpg"``), None without one.
    image_data : bytes or None
        The image file to store (only on items being added; None when read back).
    """

    id: int
    code: bytes
    label: int | None = None
    metadata: dict[str, Any] | None = None
    image: str | None = None
    image_data: bytes | None = None


class ItemStore:
    """Durable log of the items added to, and the base items deleted from, a served index.

    Not thread-safe: the service calls its writing methods one at a time.

    Parameters
    ----------
    directory : path
        Folder of the store; created when missing.
    identity : dict of str to str
        What the writes are made over (code width, model and base index digests); stored on
        first use and compared on every later open.

    Raises
    ------
    FileFormatError
        The folder holds a store of another format, or one made over another model or index.
    """

    def __init__(self, directory: str | os.PathLike[str], identity: dict[str, str]) -> None:
        self.directory = Path(directory)
        self.images_dir = self.directory / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "items.sqlite3"
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.journal_mode = str(self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise FileFormatError(
                f"{str(self.path)!r} is not a hashlearn item store: {exc}"
            ) from None
        self._check_identity({"format": STORE_FORMAT, "version": str(STORE_VERSION), **identity})

    # ------------------------------------------------------------------ opening
    def _check_identity(self, identity: dict[str, str]) -> None:
        stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not stored:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", sorted(identity.items())
                )
            return
        if stored.get("format") != STORE_FORMAT:
            raise FileFormatError(f"{str(self.path)!r} is not a hashlearn item store")
        for key, value in identity.items():
            if stored.get(key) != value:
                raise FileFormatError(
                    f"the item store {str(self.directory)!r} was written for {key} "
                    f"{stored.get(key)!r}, but the service now has {value!r}: its writes do not "
                    "apply here; give another data folder (--store)"
                )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One durable transaction: committed (and synced) on success, rolled back on error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ reading
    def items(self) -> list[StoredItem]:
        """The added items, by ascending id."""
        rows = self._db.execute(
            "SELECT id, code, label, metadata, image FROM items ORDER BY id"
        ).fetchall()
        return [
            StoredItem(
                id=int(row[0]),
                code=bytes(row[1]),
                label=None if row[2] is None else int(row[2]),
                metadata=self._metadata(int(row[0]), row[3]),
                image=row[4],
            )
            for row in rows
        ]

    def _metadata(self, item_id: int, stored: Any) -> dict[str, Any] | None:
        """The metadata of a row, read by the bounded JSON reader. Metadata that cannot be
        read back as a JSON object (nested deeper than :data:`~hashlearn._json.MAX_DEPTH`, as
        hashlearn accepted before it checked; or damaged) are logged and left out of the item,
        which is served without them: one such row does not stop the service, nor make every
        answer that holds the item fail."""
        if stored is None:
            return None
        what = "its stored metadata"
        try:
            if not isinstance(stored, (str, bytes)):
                raise InvalidInputError(f"{what} are a {type(stored).__name__}, not JSON text")
            # its length was bounded when it was written; 4 UTF-8 bytes at most per character
            metadata = parse_json(stored, what, max_bytes=4 * len(stored))
            if not isinstance(metadata, dict):
                raise InvalidInputError(
                    f"{what} are a JSON {type(metadata).__name__}, not an object"
                )
        except InvalidInputError as exc:
            _LOG.warning(
                "item %d of the store %r is served without metadata: %s",
                item_id,
                str(self.path),
                exc,
            )
            return None
        return metadata

    def deleted_ids(self) -> np.ndarray:
        """Ids of the deleted base items, ascending ``int64``."""
        rows = self._db.execute("SELECT id FROM deleted ORDER BY id").fetchall()
        return np.array([row[0] for row in rows], dtype=np.int64)

    def next_id(self) -> int:
        """The smallest id never handed out by the service (0 before its first add)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
        return int(row[0]) if row else 0

    def image_path(self, item_id: int, extension: str) -> Path:
        """Where the image file of an added item is stored.

        Raises
        ------
        InvalidInputError
            ``extension`` is not one the store writes.
        """
        if extension not in _IMAGE_EXTENSIONS:
            raise InvalidInputError(f"unknown image extension {extension!r}")
        return self.images_dir / f"{int(item_id)}.{extension}"

    # ------------------------------------------------------------------ writing
    def add(self, items: Sequence[StoredItem], next_id: int) -> None:
        """Record added items durably, their image files first; returns after the commit.

        Parameters
        ----------
        items : sequence of StoredItem
            Ids absent from the store; ``image_data`` is written to ``image_path`` when given.
        next_id : int
            The new value of :meth:`next_id`.
        """
        for item in items:
            if item.image_data is not None and item.image is not None:
                with atomic_write(self.image_path(item.id, item.image)) as handle:
                    handle.write(item.image_data)
        if any(item.image_data is not None for item in items):
            _fsync_directory(self.images_dir)  # the renames are durable before the commit
        rows = [
            (
                item.id,
                item.code,
                item.label,
                None if item.metadata is None else json.dumps(item.metadata),
                item.image,
            )
            for item in items
        ]
        with self._transaction():
            self._db.executemany(
                "INSERT INTO items (id, code, label, metadata, image) VALUES (?, ?, ?, ?, ?)", rows
            )
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)", (str(next_id),)
            )

    def delete_added(self, item_id: int) -> None:
        """Durably forget an added item, then remove its image file."""
        with self._transaction():
            self._db.execute("DELETE FROM items WHERE id = ?", (int(item_id),))
        self._remove_images(item_id)

    def delete_base(self, item_id: int) -> None:
        """Durably record that a base item is deleted."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO deleted (id) VALUES (?)", (int(item_id),))

    def _remove_images(self, item_id: int) -> None:
        for extension in _IMAGE_EXTENSIONS:
            with contextlib.suppress(FileNotFoundError):
                self.image_path(item_id, extension).unlink()

    def close(self) -> None:
        """Close the database (every commit is already on disk)."""
        self._db.close()


def _fsync_directory(directory: Path) -> None:
    """Make renames inside ``directory`` durable (where the platform can open folders)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: renames there are durable through the file's own sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
