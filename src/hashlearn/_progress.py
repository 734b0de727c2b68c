"""Progress: a tqdm bar on a terminal, plain lines everywhere else.

tqdm redraws its bar with carriage returns; written to a file or a pipe (a log, CI output,
``hashlearn encode ... 2> log``) that becomes one long line. :func:`progress` takes the tqdm
arguments hashlearn uses and returns a tqdm bar when the stream is a terminal (or a notebook's
output), and otherwise a :class:`LineProgress` that prints whole lines such as
``encode: 120/1000 img (12%), 3.1 s`` at each tenth of the way (at most one every
:attr:`LineProgress.min_interval` seconds, and one at least every
:attr:`LineProgress.max_interval` seconds), and a last line when it closes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, Protocol

__all__ = ["LineProgress", "ProgressBar", "progress"]


class ProgressBar(Protocol):
    """What hashlearn uses of a progress bar (tqdm's names)."""

    def __iter__(self) -> Iterator[Any]: ...

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, *exc: object) -> None: ...

    def update(self, n: float = 1) -> Any: ...

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    initial: float = 0,
    disable: bool = False,
    leave: bool = True,
    unit_scale: bool = False,
    unit_divisor: int = 1000,
    file: IO[str] | None = None,
) -> ProgressBar:
    """A progress bar over ``iterable`` (or counting ``update`` calls up to ``total``).

    Parameters
    ----------
    iterable : items to iterate, or None to count ``update(n)`` calls.
    total : number of steps expected; ``len(iterable)`` when None and the iterable has a length.
    desc, unit, initial, leave, unit_scale, unit_divisor : as for :class:`tqdm.tqdm`.
    disable : show nothing (callers pass ``not verbose``).
    file : where to write; ``sys.stderr`` (as it is at call time) when None.

    Returns
    -------
    A :class:`tqdm.tqdm` bar when ``file`` is a terminal (or in a Jupyter kernel writing to
    stderr), else a :class:`LineProgress`; both iterate, ``update``, ``set_postfix``, ``close``
    and work as context managers.
    """
    stream = sys.stderr if file is None else file
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    options = dict(total=total, desc=desc, unit=unit, initial=initial, disable=disable)
    if disable or _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, file=stream, leave=leave, unit_scale=unit_scale,
                    unit_divisor=unit_divisor, **options)  # fmt: skip
    if file is None and _in_notebook():
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(iterable, leave=leave, unit_scale=unit_scale,
                         unit_divisor=unit_divisor, **options)  # fmt: skip
    divisor = unit_divisor if unit_scale else None
    return LineProgress(iterable, stream=stream, divisor=divisor, **options)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where tqdm.auto draws a widget)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LineProgress:
    """Progress as whole lines on a stream that is not a terminal.

    Writes ``DESC: N/TOTAL UNIT (P%), S s[, postfix]`` when the count reaches a further tenth of
    ``total`` and at least :attr:`min_interval` seconds passed since the last line, or when
    :attr:`max_interval` seconds passed (without a total, every :attr:`max_interval` seconds),
    short of the total; :meth:`close` writes the last line (``done in S s``, or ``stopped after S s`` short of the
    total). Never writes a carriage return. ``disable=True`` writes nothing.
    """

    min_interval = 2.0
    max_interval = 30.0

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        stream: IO[str],
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        initial: float = 0,
        disable: bool = False,
        divisor: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.iterable = iterable
        self.stream = stream
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.disable = disable
        self.divisor = divisor
        self.clock = clock
        self.postfix = ""
        self.closed = False
        self.start = self.last_time = clock()
        self.last_tenth = self._tenth()

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress bar counts update() calls; it has nothing to iterate")
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def update(self, n: float = 1) -> None:
        """Count ``n`` more steps; write a line when one is due."""
        self.n += n
        if self.disable or (self.total is not None and self.n >= self.total):
            return  # the last line is close()'s
        now = self.clock()
        tenth = self._tenth()
        since = now - self.last_time
        if (tenth > self.last_tenth and since >= self.min_interval) or since >= self.max_interval:
            self._write(f"{now - self.start:.1f} s")
            self.last_time, self.last_tenth = now, tenth

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Values shown after the count on the following lines (``name=value, ...``)."""
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{name}={value}" for name, value in values.items())

    def close(self) -> None:
        """Write the last line (once)."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        elapsed = self.clock() - self.start
        short = self.total is not None and self.n < self.total
        self._write(f"{'stopped after' if short else 'done in'} {elapsed:.1f} s")

    def _tenth(self) -> int:
        if not self.total:
            return 0
        return int(10 * self.n // self.total)

    def _amount(self, value: float) -> str:
        if self.divisor is None:
            return f"{value:g}" if isinstance(value, float) else str(value)
        from tqdm import tqdm

        return tqdm.format_sizeof(value, divisor=self.divisor)

    def _write(self, timing: str) -> None:
        count = self._amount(self.n)
        space = "" if self.divisor else " "  # 1.20MB, as tqdm writes it; 120 img
        if self.total:
            count += (
                f"/{self._amount(self.total)}{space}{self.unit} ({100 * self.n / self.total:.0f}%)"
            )
        else:
            count += f"{space}{self.unit}"
        parts = [count, timing] + ([self.postfix] if self.postfix else [])
        prefix = f"{self.desc}: " if self.desc else ""
        self.stream.write(prefix + ", ".join(parts) + "\n")
        self.stream.flush()
