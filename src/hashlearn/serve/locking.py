"""Locks of the service: a readers-writer lock (searches share the index, a write has it alone
for a moment) and an exclusive lock on its data folder (one service per folder; the lock itself
is :class:`hashlearn._locking.FolderLock`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from hashlearn._locking import FolderInUseError, FolderLock

__all__ = ["FolderInUseError", "FolderLock", "ReadWriteLock"]


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers (no starvation).

    >>> lock = ReadWriteLock()
    >>> with lock.read():
    ...     pass
    >>> with lock.write():
    ...     pass
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared, for the ``with`` block."""
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
        """Hold the lock alone, for the ``with`` block."""
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
