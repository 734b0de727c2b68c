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
    DATA_DIR/store.json         the identity record: the id of the store created in this folder
    DATA_DIR/store.lock         locked (flock) by the one service using the folder; holds its pid
    DATA_DIR/images/ID.EXT      image file of added item ID (EXT: png or jpg), written atomically
    DATA_DIR/thumbnails/        the items' thumbnails, a cache the service fills (not the store's:
                                see :mod:`hashlearn.serve.thumbnails`)

The ``meta`` table records the code width and SHA-256 digests of the model and of the base index
the writes were made over; opening the store over another model or index is an error, since its
codes or deletions would not mean the same thing there.

What opening a store checks, so that no write it acknowledged is lost or misread unseen:

- **One service per folder**: the folder's lock is taken first (:class:`FolderLock`); a second
  service on the same folder is refused, naming the holder's pid.
- **Writable**: a folder or database it cannot write is refused at start (rather than starting and
  failing every write). A disk that fills up, or a folder that turns read-only, while it runs
  makes writes answer 507 or 503 (:class:`StorageFullError`, :class:`StorageReadOnlyError`); a
  failed write leaves nothing behind: its image files are removed and its transaction rolled back.
- **The same store**: the database is created complete under a temporary name and renamed into
  place, then the identity record ``store.json`` is written with the store's id, which the
  database's ``meta`` table records too. A folder whose record says a store was created there,
  but whose database is missing, empty (0 bytes), unreadable, without its tables or of another
  store, is refused: starting an empty store there would silently drop its writes. A folder
  with neither is a new store; a database without a record (a store of an earlier version, or
  a lost record) gets one.
- **Well-formed rows**: SQLite's ``quick_check``, the tables and their columns, no triggers or
  views, and every row (:meth:`ItemStore.read`): ids, codes of the index's width, labels,
  metadata that every answer can carry (:func:`metadata_json`), image extensions and image files
  that are plain files. A damaged row is refused, naming it: skipping it would drop a write the
  service acknowledged. Only what is already lost is passed over with a warning: an item whose
  image file is missing is served without an image, and one whose metadata an earlier version
  stored nested deeper than :data:`MAX_STORED_METADATA_DEPTH` (which made every answer holding
  it fail) is served without its metadata, the row kept as it is.
- **Leftovers of a crash** are removed: temporary files of interrupted writes (under the lock no
  other process writes here). Image files no row refers to (written before a commit that never
  came, or left by a deletion whose commit did) are left alone: the folder given may hold other
  pictures of such names, and an add of that id writes over them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write, create_temporary, remove_stale_temporaries
from hashlearn._json import check_json_value, nested_deeper_than, parse_json
from hashlearn._locking import STORE_LOCK_NAME
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.serve.errors import ServiceError
from hashlearn.serve.limits import MAX_ID
from hashlearn.serve.locking import FolderInUseError, FolderLock

__all__ = [
    "MAX_METADATA_DEPTH",
    "MEDIA_TYPES",
    "STORE_FORMAT",
    "FolderInUseError",
    "ItemStore",
    "StorageFullError",
    "StorageReadOnlyError",
    "StoreContents",
    "StoredItem",
    "check_folder_free",
    "metadata_json",
]

_LOG = logging.getLogger("hashlearn.serve")

STORE_FORMAT = "hashlearn.serve-store"
STORE_VERSION = 1
DATABASE_NAME = "items.sqlite3"
IDENTITY_NAME = "store.json"
LOCK_NAME = STORE_LOCK_NAME
_IMAGE_EXTENSIONS = ("png", "jpg")
_STORE_ID = re.compile(r"[0-9a-f]{32}")
_IDENTITY_MAX_BYTES = 4096

MAX_METADATA_DEPTH = 32
"""Deepest nesting of arrays and objects in an item's metadata (``{}`` is 1 deep), checked on
every write and on every row at start: answers nest it a few levels deeper, and JSON request
bodies are read at most :data:`hashlearn._json.MAX_DEPTH` deep."""

MAX_STORED_METADATA_DEPTH = 128
"""Deepest metadata a row may hold to be answered: older versions accepted deeper metadata than
:data:`MAX_METADATA_DEPTH`, and answers carry up to this (the JSON serializer of the answers
stops at 254)."""

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
"""Content type of each stored image extension."""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    code BLOB NOT NULL,
    label INTEGER,
    metadata TEXT,
    image TEXT
);
CREATE TABLE deleted (id INTEGER PRIMARY KEY);
"""
_COLUMNS = {
    "meta": ("key", "value"),
    "items": ("id", "code", "label", "metadata", "image"),
    "deleted": ("id",),
}


class StorageFullError(ServiceError):
    """The store's disk or quota is full: the write was not made (HTTP 507)."""

    status_code = 507


class StorageReadOnlyError(ServiceError):
    """The store's folder or database cannot be written: the write was not made (HTTP 503)."""

    status_code = 503


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


@dataclass(frozen=True)
class StoreContents:
    """What a store holds, checked (:meth:`ItemStore.read`).

    Attributes
    ----------
    items : list of StoredItem
        The added items, by ascending id.
    deleted : numpy.ndarray of int64
        Ids of the deleted base items, ascending.
    next_id : int
        The smallest id never handed out by the service (0 before its first add).
    """

    items: list[StoredItem]
    deleted: np.ndarray
    next_id: int


def metadata_json(metadata: Any) -> str:
    """``metadata`` as JSON text, after checking that it is a JSON object every answer can carry.

    The writes check new items with it and the store checks its rows with it at start, so a
    write it accepts never stops the service from starting.

    Raises
    ------
    InvalidInputError
        ``metadata`` is not a dict, is nested deeper than :data:`MAX_METADATA_DEPTH`, holds a
        value JSON has no word for (NaN, infinity, a set...) or a lone surrogate (``"\\ud800"``,
        which UTF-8 cannot carry).
    """
    if not isinstance(metadata, dict):
        raise InvalidInputError("metadata must be a JSON object")
    check_json_value(metadata, "metadata", max_depth=MAX_METADATA_DEPTH)
    text = json.dumps(metadata, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text


class ItemStore:
    """Durable log of the items added to, and the base items deleted from, a served index.

    Not thread-safe: the service calls its writing methods one at a time. Holds the folder's lock
    (:class:`~hashlearn.serve.locking.FolderLock`) until :meth:`close`.

    Parameters
    ----------
    directory : path
        Folder of the store; created when missing.
    identity : dict of str to str
        What the writes are made over (code width, model and base index digests); stored on
        first use and compared on every later open.

    Raises
    ------
    FolderInUseError
        Another service (another process, or another open store) uses the folder.
    StorageReadOnlyError, StorageFullError
        The folder or its database cannot be written.
    FileFormatError
        The folder holds a store of another format, one made over another model or index, or a
        store whose database is missing, empty, damaged or another store's (see the module
        docstring).
    InvalidInputError
        ``directory`` cannot be a folder (e.g. it is a file).
    """

    def __init__(self, directory: str | os.PathLike[str], identity: dict[str, str]) -> None:
        self.directory = Path(directory)
        self.images_dir = self.directory / "images"
        self.path = self.directory / DATABASE_NAME
        self.identity_path = self.directory / IDENTITY_NAME
        self.store_id = ""
        self._db: sqlite3.Connection  # set by _open
        self._lock: FolderLock | None = None
        try:
            with self._storage_errors("the service keeps its writes there: give a folder it can "
                                      "write (--store)", opening=True):  # fmt: skip
                self.images_dir.mkdir(parents=True, exist_ok=True)
                self._lock = FolderLock(self.directory / LOCK_NAME, "another hashlearn service")
                self._check_writable()
                for folder in [self.directory, *self._subfolders()]:
                    remove_stale_temporaries(folder, every=True)  # no one else writes here
                self._open({"format": STORE_FORMAT, "version": str(STORE_VERSION), **identity})
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening
    def _subfolders(self) -> list[str]:
        with os.scandir(self.directory) as entries:
            return [entry.path for entry in entries if entry.is_dir(follow_symlinks=False)]

    def _check_writable(self) -> None:
        """Refuse a folder or database the process cannot write (os.access knows read-only
        mounts, and that root writes where the mode says not)."""
        candidates = [self.directory, self.images_dir]
        candidates += [Path(f"{self.path}{suffix}") for suffix in ("", "-wal", "-shm")]
        for path in candidates:
            if path.exists() and not os.access(path, os.W_OK):
                raise StorageReadOnlyError(
                    f"{path}: read-only, but the service keeps its writes in {self.directory}: "
                    "make it writable, or give another folder (--store)"
                )

    def _open(self, identity: dict[str, str]) -> None:
        record = self._read_record()
        if not os.path.lexists(self.path):
            if record is not None:
                raise FileFormatError(self._refusal(record, "is missing"))
            wal = Path(f"{self.path}-wal")
            if wal.exists():
                raise FileFormatError(
                    f"{wal}: a write-ahead log without its database {self.path}: restore the "
                    f"database from a backup, or delete {wal} to start an empty store"
                )
            self._create(identity)
            record = self._read_record()
        elif self.path.is_file() and self.path.stat().st_size == 0:
            raise FileFormatError(self._refusal(record, "is empty (0 bytes)"))
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA trusted_schema=OFF")  # run nothing a crafted schema names
            self._check_schema(record)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if record is None and not stored:
                stored = self._complete_early_store(identity)
            self._check_identity(stored, identity)
            self.store_id = self._check_store_id(record, stored)
        except sqlite3.Error as exc:
            if _storage_fault(exc) is not None:
                raise
            raise FileFormatError(self._refusal(record, f"cannot be read ({_line(exc)})")) from None

    def _refusal(self, record: str | None, problem: str) -> str:
        """The one-line refusal of a database that is not the store the folder should hold."""
        if record is not None:
            return (
                f"{self.path} {problem}; {self.identity_path} records that store {record} was "
                "created in this folder, so the service does not start an empty store over its "
                f"writes: restore the database from a backup (to start an empty store here, "
                f"delete {self.path} and {self.identity_path})"
            )
        return (
            f"{self.path} {problem}: not an item store this service can open; restore it from "
            "a backup, or delete it to start an empty store here, or give another folder (--store)"
        )

    def _read_record(self) -> str | None:
        """The store id of the identity record, None without one."""
        path = self.identity_path
        if not os.path.lexists(path):
            return None
        with open(path, "rb") as handle:  # OSError: answered by _storage_errors
            data = handle.read(_IDENTITY_MAX_BYTES + 1)
        value: Any = None
        if len(data) <= _IDENTITY_MAX_BYTES:
            with contextlib.suppress(ValueError, RecursionError):  # UnicodeDecodeError too
                value = json.loads(data.decode("utf-8"))
        store_id = value.get("store_id") if isinstance(value, dict) else None
        if (
            not isinstance(store_id, str)
            or not _STORE_ID.fullmatch(store_id)
            or value.get("format") != STORE_FORMAT
        ):
            raise FileFormatError(
                f"{path} is not a hashlearn store identity record (it names the store this "
                f"folder holds): if {self.path} is this folder's store, delete {path} and it is "
                "written again from the database"
            )
        if value.get("version") != STORE_VERSION:
            raise FileFormatError(
                f"{path} is of store version {value.get('version')!r}; this hashlearn reads "
                f"version {STORE_VERSION}"
            )
        return store_id

    def _write_record(self, store_id: str) -> None:
        record = {"format": STORE_FORMAT, "version": STORE_VERSION, "store_id": store_id}
        with atomic_write(self.identity_path, clean=False) as handle:
            handle.write((json.dumps(record) + "\n").encode())
        _fsync_directory(self.directory)

    def _create(self, identity: dict[str, str]) -> None:
        """A new store: its database made complete under a temporary name, renamed into place,
        then its identity record (a crash in between leaves a temporary file, or a database the
        next start writes the record of)."""
        store_id = secrets.token_hex(16)
        fd, temporary = create_temporary(self.directory, DATABASE_NAME)
        os.close(fd)
        try:
            db = sqlite3.connect(temporary, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=MEMORY")  # no journal file beside the temporary
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                db.execute("BEGIN")
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    sorted({**identity, "store_id": store_id}.items()),
                )
                db.execute("COMMIT")
            finally:
                db.close()
            fd = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _fsync_directory(self.directory)
        self._write_record(store_id)

    def _check_schema(self, record: str | None) -> None:
        kinds: dict[Any, Any] = {}
        for kind, name in self._db.execute("SELECT type, name FROM sqlite_master").fetchall():
            if kind in ("trigger", "view"):
                raise FileFormatError(
                    self._refusal(record, f"holds a {kind} {name!r}, which no item store has")
                )
            kinds[name] = kind
        for table, columns in _COLUMNS.items():
            if kinds.get(table) != "table":
                raise FileFormatError(self._refusal(record, f"has no table {table!r}"))
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = [column for column in columns if column not in have]
            if missing:
                raise FileFormatError(
                    self._refusal(record, f"has no column {missing[0]!r} in table {table!r}")
                )
        (check,) = self._db.execute("PRAGMA quick_check(1)").fetchone()
        if check != "ok":
            raise FileFormatError(
                self._refusal(record, f"is damaged (quick_check: {_line(check)})")
            )

    def _complete_early_store(self, identity: dict[str, str]) -> dict[Any, Any]:
        """The meta data of a store an earlier version was creating when it stopped (tables,
        no meta data, no rows): written now, as that version did."""
        with self._transaction():
            if self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM items) OR EXISTS (SELECT 1 FROM deleted)"
            ).fetchone()[0]:
                raise FileFormatError(self._refusal(None, "holds items but no meta data"))
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)", sorted(identity.items())
            )
        return dict(identity)

    def _check_store_id(self, record: str | None, stored: dict[Any, Any]) -> str:
        """The store's id, after checking that the database is the one the record names; a
        store without a record (an earlier version's, or a lost record) gets one."""
        store_id = stored.get("store_id")
        if record is not None:
            if store_id != record:
                shown = "no store id" if store_id is None else f"store {_shown(store_id)}"
                raise FileFormatError(self._refusal(record, f"holds {shown}"))
            return record
        if store_id is None:
            store_id = secrets.token_hex(16)
            with self._transaction():
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('store_id', ?)", (store_id,)
                )
        elif not (isinstance(store_id, str) and _STORE_ID.fullmatch(store_id)):
            raise FileFormatError(self._refusal(None, f"holds the store id {_shown(store_id)}"))
        self._write_record(store_id)
        return str(store_id)

    def _check_identity(self, stored: dict[Any, Any], identity: dict[str, str]) -> None:
        if stored.get("format") != STORE_FORMAT:
            raise FileFormatError(f"{str(self.path)!r} is not a hashlearn item store")
        for key, value in identity.items():
            if stored.get(key) != value:
                raise FileFormatError(
                    f"the item store {str(self.directory)!r} was written for {key} "
                    f"{_shown(stored.get(key))}, but the service now has {value!r}: its writes "
                    "do not apply here; give another data folder (--store)"
                )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One durable transaction: committed (and synced) on success, rolled back on error
        (also when the commit itself fails, e.g. on a full disk)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _storage_errors(self, consequence: str, opening: bool = False) -> Iterator[None]:
        """Answer a full disk with :class:`StorageFullError` and a read-only folder or database
        with :class:`StorageReadOnlyError` (their messages end with ``consequence``); while
        ``opening``, any other OSError is an :class:`InvalidInputError` naming the folder."""
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            fault = _storage_fault(exc)
            detail = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
            if fault == "full":
                raise StorageFullError(
                    f"no space left for the item store in {self.directory} ({detail}): "
                    f"{consequence}"
                ) from None
            if fault == "read-only":
                raise StorageReadOnlyError(
                    f"the item store in {self.directory} is read-only ({detail}): {consequence}"
                ) from None
            if opening:
                raise InvalidInputError(
                    f"{self.directory}: cannot hold the item store ({detail})"
                ) from None
            raise

    # ------------------------------------------------------------------ reading
    def read(self, n_bits: int | None = None) -> StoreContents:
        """Every row of the store, checked.

        Parameters
        ----------
        n_bits : int or None
            The code width: every stored code must be one code of it (None: not checked).

        Returns
        -------
        StoreContents
            Items whose image file is missing come without one (a warning is logged).

        Raises
        ------
        FileFormatError
            A row is damaged: the message names its item and the problem (see the module
            docstring); the service does not start over such a store.
        """
        try:
            items = self._read_items(n_bits)
            deleted = self._read_deleted()
            next_id = self._read_next_id()
        except sqlite3.Error as exc:
            raise self._damaged(f"cannot be read ({_line(exc)})") from None
        return StoreContents(self._check_images(items), deleted, next_id)

    def _damaged(self, problem: str) -> FileFormatError:
        return FileFormatError(
            f"the item store {self.path} is damaged: {problem}; the service does not start over "
            "it: restore it from a backup, or repair or delete that row (e.g. with sqlite3)"
        )

    def _read_items(self, n_bits: int | None) -> list[StoredItem]:
        code_size = None if n_bits is None else (n_bits + 7) // 8
        spare = 0 if n_bits is None else 8 * (code_size or 0) - n_bits
        rows = self._db.execute(
            "SELECT " + ", ".join(f"{_raw(c)}, typeof({c})" for c in _COLUMNS["items"])
            + " FROM items ORDER BY id"
        )  # fmt: skip
        items: list[StoredItem] = []
        for item_id, id_type, code, code_type, label, label_type, *rest in rows:
            metadata, metadata_type, image, image_type = rest
            if id_type != "integer":
                raise self._damaged(f"a row has the id {_shown(item_id, id_type)}")
            where = f"item {item_id}"
            if item_id < 0:
                raise self._damaged(f"{where}: a negative id")
            if items and items[-1].id == item_id:
                raise self._damaged(f"{where}: two rows have this id")
            if code_type != "blob":
                raise self._damaged(f"{where}: its code is {_shown(code, code_type)}, not bytes")
            if code_size is not None and len(code) != code_size:
                raise self._damaged(
                    f"{where}: its code is {len(code)} bytes, but {n_bits}-bit codes are "
                    f"{code_size} bytes"
                )
            if spare and code[-1] >> (8 - spare):
                raise self._damaged(f"{where}: its code has bits set beyond bit {n_bits}")
            if label_type not in ("null", "integer") or label == -(2**63):
                raise self._damaged(f"{where}: its label is {_shown(label, label_type)}")
            items.append(
                StoredItem(
                    id=item_id,
                    code=code,
                    label=label,
                    metadata=self._row_metadata(where, metadata, metadata_type),
                    image=self._row_image(where, image, image_type),
                )
            )
        return items

    def _row_metadata(self, where: str, value: Any, kind: str) -> dict[str, Any] | None:
        if kind == "null":
            return None
        if kind != "text":
            raise self._damaged(f"{where}: its metadata is {_shown(value, kind)}, not JSON text")
        try:
            metadata = parse_json(
                value, "its metadata", max_bytes=len(value), max_depth=MAX_STORED_METADATA_DEPTH
            )
            if not isinstance(metadata, dict):  # parse_json refused what answers cannot carry
                raise InvalidInputError("its metadata is not a JSON object")
        except InvalidInputError as exc:
            if nested_deeper_than(value, MAX_STORED_METADATA_DEPTH):
                # written by a version that did not check; every answer holding it failed then
                _LOG.warning(
                    "%s of the store %r is served without its metadata: it is nested deeper "
                    "than %d levels (kept in the database as it is)",
                    where,
                    str(self.path),
                    MAX_STORED_METADATA_DEPTH,
                )
                return None
            raise self._damaged(f"{where}: its metadata is not a JSON object answers can carry "
                                f"({str(exc)[:200]})") from None  # fmt: skip
        return metadata  # type: ignore[no-any-return]

    def _row_image(self, where: str, value: Any, kind: str) -> str | None:
        if kind == "null":
            return None
        if kind == "text":
            with contextlib.suppress(UnicodeDecodeError):
                if value.decode("utf-8") in _IMAGE_EXTENSIONS:
                    return str(value.decode("utf-8"))
        raise self._damaged(
            f"{where}: its image is {_shown(value, kind)}, not one of {', '.join(_IMAGE_EXTENSIONS)}"
        )

    def _read_deleted(self) -> np.ndarray:
        ids = []
        for item_id, kind in self._db.execute(f"SELECT {_raw('id')}, typeof(id) FROM deleted"):
            if kind != "integer" or item_id < 0:
                raise self._damaged(f"a deleted base id is {_shown(item_id, kind)}")
            ids.append(item_id)
        return np.unique(np.array(ids, dtype=np.int64))

    def _read_next_id(self) -> int:
        row = self._db.execute(
            f"SELECT {_raw('value')}, typeof(value) FROM meta WHERE key = 'next_id'"
        ).fetchone()
        if row is None:
            return 0
        value, kind = row
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else ""
        if kind != "text" or not text.isdigit() or len(text) > 19 or int(text) > MAX_ID + 1:
            raise self._damaged(f"its next id is {_shown(value, kind)}")
        return int(text)

    def _check_images(self, items: list[StoredItem]) -> list[StoredItem]:
        """The items, those whose image file is missing without one; refuses image files that
        are not plain files (a link could show any file)."""
        checked = []
        for item in items:
            if item.image is not None:
                path = self.image_path(item.id, item.image)
                try:
                    mode = os.lstat(path).st_mode
                except FileNotFoundError:
                    _LOG.warning(
                        "item %d: its image file %s is missing; it is served without one",
                        item.id,
                        path,
                    )
                    item = replace(item, image=None)
                else:
                    if not stat.S_ISREG(mode):
                        raise self._damaged(
                            f"item {item.id}: its image {path} is not a plain file (a link or "
                            "a folder); the store writes only files"
                        )
            checked.append(item)
        return checked

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
        All or nothing: when it fails, the image files it wrote are removed.

        Parameters
        ----------
        items : sequence of StoredItem
            Ids absent from the store; ``image_data`` is written to ``image_path`` when given.
        next_id : int
            The new value of :attr:`StoreContents.next_id`.

        Raises
        ------
        StorageFullError, StorageReadOnlyError
            The disk is full, or the folder or database read-only: nothing was recorded.
        """
        written: list[Path] = []
        try:
            with self._storage_errors("the items were not added"):
                for item in items:
                    if item.image_data is not None and item.image is not None:
                        path = self.image_path(item.id, item.image)
                        written.append(path)
                        with atomic_write(path, clean=False) as handle:
                            handle.write(item.image_data)
                if written:
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
                        "INSERT INTO items (id, code, label, metadata, image) VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)",
                        (str(next_id),),
                    )
        except BaseException:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise

    def delete_added(self, item_id: int) -> None:
        """Durably forget an added item, then remove its image file (one that cannot be removed
        now stays, unused).

        Raises
        ------
        StorageFullError, StorageReadOnlyError
            As :meth:`add`; the item is kept.
        """
        with self._storage_errors("the item was not deleted"), self._transaction():
            self._db.execute("DELETE FROM items WHERE id = ?", (int(item_id),))
        self._remove_images(item_id)

    def delete_base(self, item_id: int) -> None:
        """Durably record that a base item is deleted.

        Raises
        ------
        StorageFullError, StorageReadOnlyError
            As :meth:`add`; the item is kept.
        """
        with self._storage_errors("the item was not deleted"), self._transaction():
            self._db.execute("INSERT OR IGNORE INTO deleted (id) VALUES (?)", (int(item_id),))

    def _remove_images(self, item_id: int) -> None:
        for extension in _IMAGE_EXTENSIONS:
            with contextlib.suppress(OSError):
                self.image_path(item_id, extension).unlink()

    def close(self) -> None:
        """Close the database (every commit is already on disk) and let go of the folder."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def check_folder_free(directory: str | os.PathLike[str]) -> None:
    """Refuse, before any long work, a store folder that another service uses (the store takes
    the folder's lock for good when it opens; a folder without a lock file is free).

    Raises
    ------
    FolderInUseError
        Another service holds the folder's lock.
    """
    path = Path(directory) / LOCK_NAME
    if path.is_file():
        FolderLock(path, "another hashlearn service").release()


def _raw(column: str) -> str:
    """SQL reading ``column`` as stored: integers as they are, anything else as bytes (text is
    not decoded, so text that is not UTF-8 cannot stop the read)."""
    return f"CASE typeof({column}) WHEN 'integer' THEN {column} ELSE CAST({column} AS BLOB) END"


def _shown(value: Any, kind: str | None = None) -> str:
    """A short description of a stored value for a message."""
    if kind == "null" or value is None:
        return "NULL"
    if isinstance(value, bytes) and kind in ("text", "real"):
        value = value.decode("utf-8", "replace")
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({kind})" if kind in ("real", "blob") else text


def _line(message: Any) -> str:
    """SQLite's words on one line (quick_check lists one problem per line)."""
    return " ".join(str(message).split())


def _storage_fault(exc: BaseException) -> str | None:
    """``"full"`` for a full disk or quota, ``"read-only"`` for a read-only folder or database,
    else None."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return "full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "read-only"
        return None
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(exc).lower()
    if primary == 13 or "database or disk is full" in message:  # SQLITE_FULL
        return "full"
    if primary == 8 or "readonly database" in message:  # SQLITE_READONLY
        return "read-only"
    return None


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
