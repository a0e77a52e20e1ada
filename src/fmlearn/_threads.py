"""Thread count for numba's parallel kernels, set for one call and always restored."""
from contextlib import contextmanager

import numba


def effective_n_jobs(n_jobs):
    """Map scikit-learn's ``n_jobs`` (None, -1, positive) to a thread count numba can run.

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


@contextmanager
def numba_threads(n_threads):
    """Run the body with ``n_threads`` numba threads, restoring the previous count afterwards.

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
