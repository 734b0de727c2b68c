"""An exclusive lock on a folder, for one process at a time: the search service's data folder
(:mod:`hashlearn.serve.store`), and the work folder of a folder of pictures while it is prepared
and while its earlier writes are moved aside (:func:`hashlearn.encoding.prepare_folder`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hashlearn.exceptions import HashlearnError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["STORE_LOCK_NAME", "FolderInUseError", "FolderLock"]

STORE_LOCK_NAME = "store.lock"
"""The lock file of a service's data folder, held by the one service using it."""


class FolderInUseError(HashlearnError):
    """Another process holds the lock of a data folder (see :class:`FolderLock`)."""


class FolderLock:
    """An exclusive lock on a folder, held from construction until :meth:`release`.

    ``fcntl.flock`` on the file ``path`` (created when missing), which records the holder's
    process id. The kernel drops the lock when its holder ends, however it ends (``kill -9``
    too), so a lock never outlives its process; the file stays. Two locks of one file exclude
    each other within one process too. Without ``fcntl`` (Windows) nothing is locked.

    Parameters
    ----------
    path : path
        The lock file, inside the folder it guards.
    what : str
        What holds such locks, for the message (``"a hashlearn service"``).

    Raises
    ------
    FolderInUseError
        Another holder has the lock: the message names the folder and, where it can be read,
        the holder's process id.
    OSError
        The lock file cannot be created or opened (e.g. a read-only folder).
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "another process") -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            self.release()
            raise FolderInUseError(
                f"{self.path.parent}: in use by {what}"
                + (f" (pid {holder})" if holder is not None else "")
                + f": one folder serves one process at a time (lock file {self.path})"
            ) from None
        except BaseException:
            self.release()
            raise
        with contextlib.suppress(OSError):  # the pid is only for the message of the next one
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> int | None:
        """The process id the holder wrote in the lock file, None when it cannot be read."""
        try:
            text = os.pread(self._fd, 32, 0) if self._fd is not None else b""
        except OSError:
            return None
        text = text.strip()
        return int(text) if text.isdigit() and len(text) <= 10 else None

    def release(self) -> None:
        """Let go of the lock (a second call does nothing)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
