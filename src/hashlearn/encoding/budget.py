"""Image decoding under a memory budget: what decoding a picture will hold is known from its
header (:meth:`~hashlearn.encoding.ImageHeader.conversion_bytes`), and decodes run at once only
while their sum stays within the budget.

A small PNG can stand for a large picture (a 94 KiB file of 5000 x 5000 RGBA pixels holds about
half a gigabyte while it is decoded and converted), and pictures are decoded on several threads
at once: a folder on up to 8 (:func:`~hashlearn.encoding.encode_file_list`), uploads to the search
service on up to 40. :class:`DecodeBudget` admits each decode with its cost: one that alone
costs more than the budget is refused (:class:`~hashlearn.encoding.TooLargeError`), one that does
not fit now waits for others to finish (for ever, or ``wait`` seconds).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator
from typing import Any

from hashlearn._validation import check_float, check_int
from hashlearn.encoding.errors import TooLargeError
from hashlearn.exceptions import HashlearnError

__all__ = ["DecodeBudget"]

_MB = 1e6
_TRIM_FROM = 16 * 2**20  # smaller decodes leave too little in the C heap to hand back


class DecodeBudget:
    """Bytes that image decodes may hold at once, shared by the threads that decode.

    Parameters
    ----------
    max_bytes : int
        The budget.
    wait : float or None
        Seconds a decode that does not fit now waits for others to finish before it is refused;
        None: it waits until it fits.

    Raises
    ------
    InvalidInputError
        ``max_bytes`` is not positive or ``wait`` is negative.
    """

    def __init__(self, max_bytes: int, wait: float | None = None) -> None:
        self.max_bytes = check_int(max_bytes, "max_decode_bytes", minimum=1)
        self.wait = None if wait is None else check_float(wait, "decode_wait", minimum=0.0)
        self._held = 0
        self._peak = 0
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        """Bytes admitted and not yet given back."""
        return self._held

    @property
    def peak(self) -> int:
        """Most bytes admitted at once so far."""
        return self._peak

    @contextlib.contextmanager
    def hold(self, nbytes: int, what: str) -> Iterator[None]:
        """Hold ``nbytes`` of the budget for the ``with`` block (``what`` names the decode in
        messages).

        Raises
        ------
        TooLargeError
            ``nbytes`` alone is over the budget.
        HashlearnError
            It did not fit within ``wait`` seconds (see :meth:`busy_error`).
        """
        if nbytes > self.max_bytes:
            raise self.too_large_error(nbytes, what)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        with self._changed:
            while self._held + nbytes > self.max_bytes:
                if deadline is None:
                    self._changed.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    if self._held + nbytes <= self.max_bytes:
                        break
                    raise self.busy_error(nbytes, what)
            self._held += nbytes
            self._peak = max(self._peak, self._held)
        try:
            yield
        finally:
            if nbytes >= _TRIM_FROM:  # before the room is given to the next decode
                _return_free_memory()
            with self._changed:
                self._held -= nbytes
                self._changed.notify_all()

    setting = "max_decode_bytes"
    """The name of the budget's setting, as the messages say it."""

    def too_large_error(self, nbytes: int, what: str) -> Exception:
        """The error of a decode that alone costs more than the budget."""
        return TooLargeError(
            f"decoding {what} takes about {nbytes / _MB:,.0f} MB; at most "
            f"{self.max_bytes / _MB:,.0f} MB are decoded at once ({self.setting})"
        )

    def busy_error(self, nbytes: int, what: str) -> Exception:
        """The error of a decode that did not fit within ``wait`` seconds."""
        return HashlearnError(
            f"other images are being decoded ({self._held / _MB:,.0f} of "
            f"{self.max_bytes / _MB:,.0f} MB in use) and {what} needs {nbytes / _MB:,.0f} MB"
        )


def _load_malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (another C library, or not Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _return_free_memory() -> None:
    """Hand the heap's free memory back to the system. A decoded picture is allocated in blocks
    small enough for the C heap of the thread that decoded it, which keeps them once freed; with
    many threads, each would keep the pixels of its last decode beside the next one's."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
