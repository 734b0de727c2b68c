"""Thread control for numerical loops."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread.

    The fitting loops of the shallow hashers (ITQ's alternation, eigensolvers, KSH's greedy bits,
    SDH's coordinate descent, GRH's per-bit solvers) make thousands of small BLAS calls for which
    threads add mostly synchronisation; on a busy 2-core machine that cost exceeded the work by an
    order of magnitude (KSH: 89-99 s multi-threaded against 3-7 s single-threaded).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
