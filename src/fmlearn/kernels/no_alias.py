"""Compile a kernel with its array arguments declared not to overlap.

numba compiles the body of a parallel loop with every pointer argument marked ``noalias``
when no two of its arrays can overlap; an ordinary function gets no such promise, so LLVM
either checks at run time that a row of ``V`` and the sums ``q`` do not overlap before it
vectorizes a loop over the factors, or does not vectorize it. The thread passes of the SGD
epochs were compiled as loop bodies until they became plain functions; :func:`no_alias`
gives them the promise back (frappe at k=64: 10-15 % of an epoch). numba exposes the flag
only through its compiler's options, so this sets it there and leaves the kernel as it is
where a numba version lacks that hook.
"""


def no_alias(kernel):
    """Mark every array argument of the numba dispatcher ``kernel`` as not overlapping any
    other (LLVM's ``noalias``); the caller promises that no two arrays it passes share memory
    that the kernel writes. Returns ``kernel``.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> @no_alias
    ... @njit
    ... def add(out, a, b):
    ...     for i in range(out.shape[0]):
    ...         out[i] = a[i] + b[i]
    >>> out = np.zeros(3); add(out, np.ones(3), np.arange(3.0)); out.tolist()
    [1.0, 2.0, 3.0]
    """
    compiler = getattr(kernel, "_compiler", None)
    customize = getattr(compiler, "_customize_flags", None)
    if customize is not None:
        def with_no_alias(flags):
            flags = customize(flags)
            flags.noalias = True
            return flags
        compiler._customize_flags = with_no_alias
    return kernel
