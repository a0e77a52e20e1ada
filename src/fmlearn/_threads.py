"""Threads for the kernels: how many a call may use, and running a kernel on that many.

The kernels are compiled with ``nogil=True`` and take the number of their share of the
work (thread ``c`` of ``n_threads``); :func:`run_threads` calls them from a pool of Python
threads, which run at once. numba's own parallel loops (``prange``) would do the same but
cost seconds of compilation per kernel on first use; only the ALS and MCMC sweeps, whose
parallel passes sit deep inside one compiled sweep, use them (:func:`numba_threads`).
"""
import os
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numba

_pool = None
_pool_pid = None


def effective_n_jobs(n_jobs):
    """Map scikit-learn's ``n_jobs`` (None, -1, positive) to a thread count.

    Examples
    --------
    >>> effective_n_jobs(1)
    1
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return 1
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None or 1 for one thread, -1 for all.")
    if n_jobs < 0:
        return max(1, limit + 1 + n_jobs)
    return min(n_jobs, limit)


def _pool_of_threads():
    """The process's pool of worker threads (made again in a forked child)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                   thread_name_prefix="fmlearn")
        _pool_pid = os.getpid()
    return _pool


def run_threads(kernel, n_threads, *args):
    """``[kernel(c, *args) for c in range(n_threads)]``, the calls running at once: call 0 on
    this thread, the others on the pool's threads.

    ``kernel`` must release the GIL (``nogil=True``) for the calls to overlap. An error in
    any call is raised after every call has ended, so no thread still writes to the
    arrays when this returns.

    Examples
    --------
    >>> run_threads(lambda c, base: base + c, 3, 10)
    [10, 11, 12]
    """
    if n_threads == 1:
        return [kernel(0, *args)]
    futures = [_pool_of_threads().submit(kernel, c, *args) for c in range(1, n_threads)]
    try:
        first = kernel(0, *args)
    finally:
        wait(futures)
    return [first] + [future.result() for future in futures]


@contextmanager
def numba_threads(n_threads):
    """Run the body with ``n_threads`` threads in numba's parallel loops, restoring the
    previous count afterwards.

    Examples
    --------
    >>> with numba_threads(1):
    ...     pass
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
