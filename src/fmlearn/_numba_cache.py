"""Where numba keeps fmlearn's compiled kernels, chosen before any kernel is defined.

numba caches a compiled kernel beside its source (``__pycache__``), else under the
user's cache directory (``~/.cache/numba``), else in ``NUMBA_CACHE_DIR`` when set; it
refuses to define a ``cache=True`` function when none is writable, which made
``import fmlearn`` fail in hardened containers (read-only site-packages, no home).
:func:`configure` keeps numba's choice when it works and otherwise falls back to a
private directory under the system's temporary directory, then to no cache at all,
saying once why.
"""
import os
import stat
import tempfile
import warnings

import numba

#: Whether kernels are defined with ``cache=True``; false only when no directory is writable.
CACHE = True
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# The folders that hold jitted functions: numba caches each beside its source.
_SOURCE_DIRS = ("kernels", "io")


def writable_dir(path):
    """Whether ``path`` exists or can be made, and a file can be written in it.

    Examples
    --------
    >>> import tempfile
    >>> writable_dir(tempfile.gettempdir())
    True
    """
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def private_dir(path):
    """Make ``path`` a directory only this user can write (mode 0700), or return False.

    A shared temporary directory is world-writable: a cache there must belong to
    this user alone, or another user could plant compiled code in it.

    Examples
    --------
    >>> import os, tempfile
    >>> private_dir(os.path.join(tempfile.mkdtemp(), "cache"))
    True
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    owned = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    return owned and not info.st_mode & 0o077 and writable_dir(path)


def _user_wide_dir():
    from numba.misc.appdirs import AppDirs
    return AppDirs(appname="numba", appauthor=False).user_cache_dir


def _temporary_dir():
    try:
        return os.path.join(tempfile.gettempdir(), f"fmlearn-numba-cache-{os.getuid()}")
    except FileNotFoundError:  # gettempdir found no writable directory
        return None


def configure():
    """Choose the kernel cache before the kernels are defined; return the directory used.

    ``NUMBA_CACHE_DIR`` wins when it is writable. Otherwise numba's own places
    (beside the sources, then the user's cache directory) are used when writable;
    then ``<tmp>/fmlearn-numba-cache-<uid>``; then no cache (every process compiles
    again). A fallback is announced once with a ``RuntimeWarning``.

    Returns
    -------
    str or None
        The cache directory numba was pointed at, ``""`` for numba's default places,
        or None when nothing is cached.

    Examples
    --------
    >>> configure() is not None
    True
    """
    global CACHE
    CACHE = True
    chosen = numba.config.CACHE_DIR
    if chosen:
        if writable_dir(chosen):
            return chosen
        why = f"NUMBA_CACHE_DIR={chosen!r} is not writable"
    else:
        beside = all(writable_dir(os.path.join(_PACKAGE, name, "__pycache__"))
                     for name in _SOURCE_DIRS)
        if beside or writable_dir(_user_wide_dir()):
            return ""
        why = f"neither {_PACKAGE} nor {_user_wide_dir()!r} is writable"
    fallback = _temporary_dir()
    if fallback is not None and private_dir(fallback):
        numba.config.CACHE_DIR = fallback
        warnings.warn(f"fmlearn: {why}; compiled kernels are cached in {fallback!r}. Set "
                      "NUMBA_CACHE_DIR to a writable directory to choose the place.",
                      RuntimeWarning, stacklevel=3)
        return fallback
    CACHE = False
    warnings.warn(f"fmlearn: {why}, nor is a temporary directory; compiled kernels are not "
                  "cached, so every process compiles them again. Set NUMBA_CACHE_DIR to a "
                  "writable directory.", RuntimeWarning, stacklevel=3)
    return None
