"""A field-aware pair's factor vectors scored and stepped 4 or 8 entries at a time.

An FFM pair reads two short vectors, ``V[i, field(j)]`` and ``V[j, field(i)]`` (k = 4 or 8
entries, LIBFFM's usual sizes), and steps both with AdaGrad. numba leaves LLVM's
straight-line (SLP) vectoriser off, and its loop vectoriser, not knowing k, takes steps of 8
entries or more, so a loop over 4 entries, and in places one over 8, ran one entry at a
time. The intrinsics here emit LLVM's vector operations on 4 or 8 consecutive entries of a
C-contiguous 3-D array; :func:`pair_dot` and :func:`adagrad_pair` use them when k is a
multiple of 4 and an entry-by-entry loop otherwise. Both vectors of a pair are read before
either is written, as in the entry-by-entry step.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .sgd import _clip
from .._numba_cache import CACHE

_FAST = ("fast",)


def _vector_pointer(context, builder, array_type, array, index, index_types, lanes):
    """A pointer to ``lanes`` entries of ``array`` from ``array[index]`` on, as an LLVM
    vector."""
    view = context.make_array(array_type)(context, builder, array)
    index = [context.cast(builder, value, kind, types.intp)
             for value, kind in zip(index, index_types)]
    pointer = cgutils.get_item_pointer(context, builder, array_type, view, index)
    vector = ir.VectorType(context.get_data_type(array_type.dtype), lanes)
    return builder.bitcast(pointer, vector.as_pointer()), vector


def _llvm_function(builder, name, vector, arguments, result):
    """LLVM's intrinsic ``name`` for ``vector`` (``llvm.sqrt.v4f32`` and the like)."""
    width = f"v{vector.count}f{64 if isinstance(vector.element, ir.DoubleType) else 32}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(result, arguments),
                                          f"llvm.{name}.{width}")


def _typed_3d(*arrays):
    """Whether every argument is a C-contiguous 3-D float array of one dtype."""
    return all(isinstance(a, types.Array) and a.ndim == 3 and a.layout == "C"
               and isinstance(a.dtype, types.Float) and a.dtype == arrays[0].dtype
               for a in arrays)


def _make_intrinsics(lanes):
    """The dot product and the AdaGrad pair step over ``lanes`` entries."""

    @intrinsic
    def dot(typingctx, A, i, f, B, j, g, c):
        """``sum(A[i, f, c:c + lanes] * B[j, g, c:c + lanes])`` in the arrays' dtype."""
        if not _typed_3d(A, B):
            return None

        def codegen(context, builder, signature, args):
            kinds = signature.args
            pa, vector = _vector_pointer(context, builder, kinds[0], args[0],
                                         (args[1], args[2], args[6]),
                                         (kinds[1], kinds[2], kinds[6]), lanes)
            pb, _ = _vector_pointer(context, builder, kinds[3], args[3],
                                    (args[4], args[5], args[6]),
                                    (kinds[4], kinds[5], kinds[6]), lanes)
            align = kinds[0].dtype.bitwidth // 8
            product = builder.fmul(builder.load(pa, align=align), builder.load(pb, align=align),
                                   flags=_FAST)
            add = _llvm_function(builder, "vector.reduce.fadd", vector,
                                 [vector.element, vector], vector.element)
            return builder.call(add, [ir.Constant(vector.element, 0.0), product],
                                fastmath=_FAST)

        return A.dtype(A, i, f, B, j, g, c), codegen

    @intrinsic
    def adagrad(typingctx, Vi, acc_i, i, fb, Vj, acc_j, j, fa, c, gxx, reg, eta, clip):
        """Step ``Vi[i, fb, c:c + lanes]`` and ``Vj[j, fa, c:c + lanes]`` with AdaGrad for
        the pair's derivative scale ``gxx``, as :func:`adagrad_pair` does entry by entry."""
        if not _typed_3d(Vi, acc_i, Vj, acc_j):
            return None

        def codegen(context, builder, signature, args):
            kinds = signature.args
            dtype = kinds[0].dtype
            align = dtype.bitwidth // 8
            at_i = ((args[2], args[3], args[8]), (kinds[2], kinds[3], kinds[8]))
            at_j = ((args[6], args[7], args[8]), (kinds[6], kinds[7], kinds[8]))
            p_vi, vector = _vector_pointer(context, builder, kinds[0], args[0], *at_i, lanes)
            p_ai, _ = _vector_pointer(context, builder, kinds[1], args[1], *at_i, lanes)
            p_vj, _ = _vector_pointer(context, builder, kinds[4], args[4], *at_j, lanes)
            p_aj, _ = _vector_pointer(context, builder, kinds[5], args[5], *at_j, lanes)

            def splat(position):
                value = context.cast(builder, args[position], kinds[position], dtype)
                one = builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                             ir.Constant(ir.IntType(32), 0))
                return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined),
                                              ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                          [0] * lanes))

            scale, penalty, rate, bound = splat(9), splat(10), splat(11), splat(12)
            low = builder.fneg(bound, flags=_FAST)
            smallest = _llvm_function(builder, "minnum", vector, [vector] * 2, vector)
            largest = _llvm_function(builder, "maxnum", vector, [vector] * 2, vector)
            sqrt = _llvm_function(builder, "sqrt", vector, [vector], vector)
            vi, vj = builder.load(p_vi, align=align), builder.load(p_vj, align=align)
            ai, aj = builder.load(p_ai, align=align), builder.load(p_aj, align=align)

            def gradient(own, other):
                g = builder.fadd(builder.fmul(scale, other, flags=_FAST),
                                 builder.fmul(penalty, own, flags=_FAST), flags=_FAST)
                g = builder.call(largest, [g, low], fastmath=_FAST)
                return builder.call(smallest, [g, bound], fastmath=_FAST)

            def step(pointer, acc_pointer, own, acc, g):
                acc = builder.fadd(acc, builder.fmul(g, g, flags=_FAST), flags=_FAST)
                builder.store(acc, acc_pointer, align=align)
                change = builder.fdiv(builder.fmul(rate, g, flags=_FAST),
                                      builder.call(sqrt, [acc], fastmath=_FAST), flags=_FAST)
                builder.store(builder.fsub(own, change, flags=_FAST), pointer, align=align)

            gi, gj = gradient(vi, vj), gradient(vj, vi)
            step(p_vi, p_ai, vi, ai, gi)
            step(p_vj, p_aj, vj, aj, gj)
            return context.get_dummy_value()

        return types.void(Vi, acc_i, i, fb, Vj, acc_j, j, fa, c, gxx, reg, eta, clip), codegen

    return dot, adagrad


_dot4, _adagrad4 = _make_intrinsics(4)
_dot8, _adagrad8 = _make_intrinsics(8)


@njit(cache=CACHE, fastmath=True, inline="always")
def pair_dot(A, i, f, B, j, g):
    """``<A[i, f], B[j, g]>`` over the last axis of the C-contiguous 3-D arrays, summed in
    their dtype, 8 or 4 entries at a time where their length allows.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> V = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
    >>> dot = njit(lambda V: pair_dot(V, 0, 2, V, 1, 0))
    >>> float(dot(V)) == float(V[0, 2] @ V[1, 0])
    True
    """
    k = A.shape[2]
    total = A.dtype.type(0)
    if k % 8 == 0:
        for c in range(0, k, 8):
            total += _dot8(A, i, f, B, j, g, c)
    elif k % 4 == 0:
        for c in range(0, k, 4):
            total += _dot4(A, i, f, B, j, g, c)
    else:
        for c in range(k):
            total += A[i, f, c] * B[j, g, c]
    return total


@njit(cache=CACHE, fastmath=True, inline="always")
def adagrad_pair(Vi, acc_i, i, fb, Vj, acc_j, j, fa, gxx, reg, eta, clip):
    """Step ``Vi[i, fb]`` and ``Vj[j, fa]`` with AdaGrad (their sums ``acc_i``, ``acc_j``)
    for a pair whose score derivative scale is ``gxx``: ``g_i = clip(gxx Vj[j, fa] + reg
    Vi[i, fb])``, ``acc += g_i**2``, ``Vi[i, fb] -= eta g_i / sqrt(acc)`` and its mirror,
    both from the values before the step.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> V, acc = np.ones((2, 2, 4), np.float32), np.ones((2, 2, 4), np.float32)
    >>> step = njit(lambda V, acc: adagrad_pair(V, acc, 0, 1, V, acc, 1, 0,
    ...                                         np.float32(3.0), np.float32(0.0),
    ...                                         np.float32(0.1), np.float32(np.inf)))
    >>> step(V, acc)
    >>> acc[0, 1].tolist(), [round(float(v), 4) for v in V[0, 1]]
    ([10.0, 10.0, 10.0, 10.0], [0.9051, 0.9051, 0.9051, 0.9051])
    """
    k = Vi.shape[2]
    if k % 8 == 0:
        for c in range(0, k, 8):
            _adagrad8(Vi, acc_i, i, fb, Vj, acc_j, j, fa, c, gxx, reg, eta, clip)
    elif k % 4 == 0:
        for c in range(0, k, 4):
            _adagrad4(Vi, acc_i, i, fb, Vj, acc_j, j, fa, c, gxx, reg, eta, clip)
    else:
        for f in range(k):
            vi = Vi[i, fb, f]
            vj = Vj[j, fa, f]
            gi = _clip(gxx * vj + reg * vi, clip)
            gj = _clip(gxx * vi + reg * vj, clip)
            ai = acc_i[i, fb, f] + gi * gi
            aj = acc_j[j, fa, f] + gj * gj
            acc_i[i, fb, f] = ai
            acc_j[j, fa, f] = aj
            Vi[i, fb, f] = vi - eta * gi / np.sqrt(ai)
            Vj[j, fa, f] = vj - eta * gj / np.sqrt(aj)
