"""Software prefetch: ask the memory system for a parameter row before the code needs it.

An SGD step reads a feature's weight and factors to score the row, then their AdaGrad sums
to update it; the long arithmetic of each feature keeps the processor from running ahead to
the next features' rows. On data whose parameters do not fit in cache the SGD kernel
prefetches the weights, factors and sums of the feature a few non-zeros ahead, so that their
misses overlap the arithmetic (measured in ``bench/bandwidth_floor.py``).
"""
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from .._numba_cache import CACHE

CACHE_LINE_BYTES = 64


@intrinsic
def _prefetch_item(typingctx, array, i, j):
    """``llvm.prefetch`` of the address of ``array[i, j]`` (``array[i]`` if 1-D), for writing,
    into all cache levels."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        index = [context.cast(builder, value, kind, types.intp)
                 for value, kind in zip(args[1:], signature.args[1:])][:array_type.ndim]
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, index)
        byte_pointer = ir.PointerType(ir.IntType(8))
        int32 = ir.IntType(32)
        # The typed-pointer name: LLVM with opaque pointers (15 on) reads it as llvm.prefetch.p0.
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
            "llvm.prefetch.p0i8")
        # (address, 1 = for a write, 3 = keep in every cache level, 1 = data)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), int32(1), int32(3),
                                int32(1)])
        return context.get_dummy_value()

    return types.void(array, i, j), codegen


@njit(cache=CACHE, inline="always")
def prefetch_row(array, i):
    """Prefetch every cache line of row ``i`` of the C-contiguous 2-D ``array``.

    A hint only: it changes no value.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def first_of(a, i):
    ...     prefetch_row(a, i)
    ...     return a[i, 0]
    >>> float(first_of(np.ones((4, 32), dtype=np.float32), 2))
    1.0
    """
    step = max(1, CACHE_LINE_BYTES // array.itemsize)
    for f in range(0, array.shape[1], step):
        _prefetch_item(array, i, f)


@njit(cache=CACHE, inline="always")
def prefetch_entry(array, i):
    """Prefetch the cache line of entry ``i`` of the 1-D ``array``. A hint only.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def entry(a, i):
    ...     prefetch_entry(a, i)
    ...     return a[i]
    >>> float(entry(np.arange(4, dtype=np.float32), 3))
    3.0
    """
    _prefetch_item(array, i, 0)
