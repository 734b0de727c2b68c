"""The file under a memory-mapped index, watched so that a change to it is refused, not a crash.

A memory map reads the file's pages as they are touched. When the file is truncated, or copied
over in place (``cp new.hlindex served.hlindex`` truncates, then writes), a page past the new end
raises SIGBUS, which kills the process; a same-size overwrite changes the items under the index
without a word. So a mapped index holds its file open (:class:`MappedFile`) and, before every
use of the mapped arrays (each search, add, removal, save, or read of ids or codes), compares
the size and modification time of that open file with those it was loaded at; a difference
raises :class:`IndexFileChangedError` (HTTP 503 in the service) instead of touching a page.

A file *replaced* at its path, as hashlearn writes every file (a new file renamed over the old
one), does not change the mapped one: the index keeps serving the file it loaded, safely.
A change that lands during a search is not caught by the check before it; only writing the new
file beside the old one and renaming it over it is safe at any time.
"""

from __future__ import annotations

import os

from hashlearn.exceptions import FileFormatError
from hashlearn.index._format.layout import IndexFile
from hashlearn.index._format.reading import read_index_file

__all__ = ["IndexFileChangedError", "MappedFile", "read_mapped_index_file"]


class IndexFileChangedError(FileFormatError):
    """The file of a memory-mapped index was changed in place (truncated, overwritten) after it
    was loaded; the index refuses to read it (HTTP 503 in the service). Load it again."""

    status_code = 503


class MappedFile:
    """An index file held open while memory maps read it, with its size and modification time
    at load; :meth:`check` refuses the file once they change."""

    __slots__ = ("_fd", "_mtime_ns", "_size", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        status = os.fstat(self._fd)
        self._size, self._mtime_ns = status.st_size, status.st_mtime_ns

    def confirm_loaded(self) -> None:
        """Check, after the file was read and mapped through its path, that the path still names
        the file held open, unchanged (otherwise what was mapped may be another file)."""
        held = os.fstat(self._fd) if self._fd is not None else None
        try:
            named = os.stat(self.path)
        except OSError:
            named = None
        if (
            held is None
            or named is None
            or (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino)
        ):
            raise IndexFileChangedError(
                f"{self.path}: the index file was replaced while it was being loaded; load it again"
            )
        self.check()

    def check(self) -> None:
        """Raise :class:`IndexFileChangedError` if the file was truncated, extended or written
        since it was loaded (its size or modification time differ)."""
        if self._fd is None:
            return
        status = os.fstat(self._fd)
        if status.st_size == self._size and status.st_mtime_ns == self._mtime_ns:
            return
        change = (
            f"truncated from {self._size:,} to {status.st_size:,} bytes"
            if status.st_size < self._size
            else f"rewritten in place ({self._size:,} bytes when loaded, {status.st_size:,} now)"
        )
        raise IndexFileChangedError(
            f"{self.path}: the memory-mapped index file was {change} after it was loaded, so its "
            "items can no longer be read; load the index again (to update a served index, write "
            "the new file beside it and rename it over the old one)"
        )

    def close(self) -> None:
        """Stop holding the file (the memory maps keep their own reference)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def read_mapped_index_file(
    path: str | os.PathLike[str], *, mmap: bool, verify: bool
) -> tuple[IndexFile, MappedFile | None]:
    """:func:`read_index_file`, and with ``mmap`` the :class:`MappedFile` that watches the file
    the arrays are mapped from."""
    if not mmap:
        return read_index_file(path, mmap=False, verify=verify), None
    held = MappedFile(path)
    try:
        file = read_index_file(path, mmap=True, verify=verify)
        held.confirm_loaded()
    except BaseException:
        held.close()
        raise
    return file, held
