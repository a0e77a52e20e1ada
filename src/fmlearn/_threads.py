"""Threads for the kernels: how many a call may use, and running a kernel on that many.

The kernels are compiled with ``nogil=True`` and take the number of their share of the
work (thread ``c`` of ``n_threads``); :func:`run_threads` calls them from a pool of Python
threads, which run at once. numba's own parallel loops (``prange``) would do the same but
cost seconds of compilation per kernel on first use; only the ALS and MCMC sweeps, whose
parallel passes sit deep inside one compiled sweep, use them (:func:`numba_threads`).
"""
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numba
from threadpoolctl import ThreadpoolController

_pool = None
_pool_pid = None
_controller = None
_controller_key = None


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


def _thread_pools():
    """threadpoolctl's view of the native thread pools loaded (BLAS, OpenMP).

    Looking them up costs about a millisecond, so the view is kept and looked up again
    only in a forked child or after more modules were imported (which may load a pool).
    """
    global _controller, _controller_key
    key = (os.getpid(), len(sys.modules))
    if _controller is None or _controller_key != key:
        _controller = ThreadpoolController()
        _controller_key = key
    return _controller


@contextmanager
def thread_limits(n_threads):
    """Run the body with the BLAS and OpenMP pools limited to ``n_threads`` threads,
    restoring their sizes afterwards.

    A BLAS call made with its pool at the machine's size leaves threads spinning on the
    other cores after it returns; under the limit a fit with ``n_jobs=1`` takes one core.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> with thread_limits(1):
    ...     all(pool["num_threads"] == 1 for pool in threadpool_info())
    True
    """
    with _thread_pools().limit(limits=n_threads):
        yield


def within_n_jobs(method):
    """Decorate an estimator's method to run within the threads its ``n_jobs`` allows
    (:func:`thread_limits` of :func:`effective_n_jobs`).

    Examples
    --------
    >>> class Estimator:
    ...     n_jobs = 1
    ...     @within_n_jobs
    ...     def work(self):
    ...         from threadpoolctl import threadpool_info
    ...         return max(pool["num_threads"] for pool in threadpool_info())
    >>> Estimator().work()
    1
    """
    @functools.wraps(method)
    def limited(self, *args, **kwargs):
        with thread_limits(effective_n_jobs(getattr(self, "n_jobs", None))):
            return method(self, *args, **kwargs)
    return limited


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
