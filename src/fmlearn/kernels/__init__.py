"""Numba kernels: plain functions over arrays, one module per concern.

The Python layer validates shapes, dtypes and finiteness before calling a
kernel, so kernels never check their input. Modules here import only numpy
and numba (``prefetch`` also numba's code generator, llvmlite), and
``fmlearn._numba_cache.CACHE``, whether numba may cache what it compiles.
"""
