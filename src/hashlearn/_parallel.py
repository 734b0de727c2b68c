"""Threads for numerical work: one setting for every compiled kernel, and BLAS kept to one.

Compiled kernels (index searches, the evaluation engine, near-duplicate joins) are
single-threaded ``numba.njit(nogil=True)`` functions; parallelism comes from running independent
work units on a pool of Python threads (:func:`parallel_map`), which the released GIL lets run
side by side. This keeps numba's threading layers (OpenMP, TBB, or "workqueue", which aborts when
two Python threads enter it at once, as a web service's do) out of the picture, keeps
compilation short, and makes the thread count one ordinary setting: :func:`set_num_threads`
(also ``hashlearn.set_num_threads``), which governs searches and evaluation alike.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hashlearn._validation import check_int

__all__ = ["get_num_threads", "parallel_map", "set_num_threads", "single_threaded_blas"]

_THREAD_PREFIX = "hashlearn-worker"
_num_threads = max(1, os.cpu_count() or 1)
_pools: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def set_num_threads(n_threads: int) -> None:
    """Run hashlearn's compiled kernels on ``n_threads`` threads.

    One setting for index searches (every index type, every calling thread), the evaluation
    engine and near-duplicate joins.

    Parameters
    ----------
    n_threads : int
        1 to 1024. The default is the number of CPU cores (``os.cpu_count()``).
    """
    global _num_threads
    _num_threads = check_int(n_threads, "n_threads", minimum=1, maximum=1024)


def get_num_threads() -> int:
    """Number of threads hashlearn's compiled kernels run on."""
    return _num_threads


def parallel_map(function: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``[function(*task) for task in tasks]``, run on up to :func:`get_num_threads` threads.

    ``function`` should release the GIL (a ``nogil`` kernel). With one thread or one task the
    tasks run in the calling thread, in order.
    """
    # Inline also inside a pool thread: waiting there for tasks queued behind it would deadlock.
    inside_pool = threading.current_thread().name.startswith(_THREAD_PREFIX)
    n_threads = _num_threads
    if n_threads == 1 or len(tasks) <= 1 or inside_pool:
        return [function(*task) for task in tasks]
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = _pools[n_threads] = concurrent.futures.ThreadPoolExecutor(
                max_workers=n_threads, thread_name_prefix=f"{_THREAD_PREFIX}-{n_threads}"
            )
    return list(pool.map(lambda task: function(*task), tasks))


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
