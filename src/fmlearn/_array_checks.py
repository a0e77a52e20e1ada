"""Checking arrays read from a model file against shapes written with named dimensions.

:class:`Checker` records the dimensions a model file fixes (``n_features``, ``n_factors``,
...) as it meets them and refuses an array whose shape, dtype or values disagree, raising
:class:`~fmlearn._model_archive.FileProblem` with the member's name.
"""
import math

import numpy as np

from ._model_archive import FileProblem, Raw

_CHUNK = 2**22  # elements per slice when scanning large arrays, bounding temporary memory


def is_real(value):
    """Whether a header value is an int or a float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value):
    """Whether a header value is a finite real number."""
    try:
        return is_real(value) and math.isfinite(value)
    except OverflowError:  # an integer beyond float's range
        return False


def is_count(value):
    """Whether a header value is an int >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _first(array, bad):
    """The index and value of the first entry of ``array`` where ``bad`` holds, or None;
    scanned in slices so a large array needs no full-size temporary."""
    flat = array.reshape(-1)
    for start in range(0, flat.shape[0], _CHUNK):
        hits = np.flatnonzero(bad(flat[start:start + _CHUNK]))
        if hits.size:
            at = np.unravel_index(start + int(hits[0]), array.shape)
            where = int(at[0]) if len(at) == 1 else tuple(int(i) for i in at)
            return where, flat[start + hits[0]].item()
    return None


class Checker:
    """Checks arrays against shapes written with named dimensions (``"n_features"``, ...).

    A dimension the header fixes is bound up front; one it does not (the number of fields,
    samples, groups) is bound by the first array that has it and must agree everywhere after.

    Examples
    --------
    >>> import numpy as np
    >>> c = Checker(lambda array: "coef", {"n_features": 3})
    >>> c.array(np.zeros(2), "the model's coef", ("n_features",), np.float64, "")
    Traceback (most recent call last):
    ...
    fmlearn._model_archive.FileProblem: array 'coef' has shape [2]; expected [n_features=3]
    """

    def __init__(self, name_of, dims):
        self.name_of, self.dims = name_of, dims

    def fields(self, value, kind, names, where):
        """The fields of a ``Raw`` of ``kind`` that has exactly ``names``."""
        if not isinstance(value, Raw) or value.kind != kind:
            got = value.kind if isinstance(value, Raw) else type(value).__name__
            raise FileProblem(f"{where} is a {got}; expected a {kind}")
        if set(value.fields) != set(names):
            raise FileProblem(f"{where} ({kind}) has the fields {sorted(value.fields)}; expected "
                              f"{sorted(names)}")
        return value.fields

    def array(self, value, where, shape, dtype, why, check=None):
        """Refuse ``value`` unless it is an array of ``shape`` and exactly ``dtype``.

        ``check`` is ``(bad, problem)``: a vectorised test of entries that must not occur
        and how to say what is wrong with one (``problem(value)``)."""
        if not isinstance(value, np.ndarray):
            raise FileProblem(f"{where} is a {type(value).__name__}; expected an array")
        name = f"array {self.name_of(value)!r}"
        if value.dtype != dtype:
            raise FileProblem(f"{name} has dtype {value.dtype.str}; expected "
                              f"{np.dtype(dtype).str} ({why})")
        if value.ndim != len(shape):
            raise FileProblem(f"{name} has shape {list(value.shape)}; expected "
                              f"[{self._named(shape)}]")
        for size, dim in zip(value.shape, shape):
            if isinstance(dim, str) and dim not in self.dims:
                if size < 1:
                    raise FileProblem(f"{name} has shape {list(value.shape)}: {dim} must be at "
                                      "least 1")
                self.dims[dim] = size
        expected = [self.dims[d] if isinstance(d, str) else d for d in shape]
        if list(value.shape) != expected:
            raise FileProblem(f"{name} has shape {list(value.shape)}; expected "
                              f"[{self._named(shape)}]")
        if check is not None:
            found = _first(value, check[0])
            if found is not None:
                raise FileProblem(f"{name} holds {found[1]!r} at index {found[0]}; "
                                  f"{check[1](value)}")
        return value

    def _named(self, shape):
        """``shape`` for a message: ``n_features=51, n_factors=3``."""
        return ", ".join(str(d) if not isinstance(d, str) else
                         f"{d}={self.dims[d]}" if d in self.dims else d for d in shape)

    def floats(self, value, where, shape, dtype, why, low=None):
        """A float array of finite entries (above 0 with ``low="positive"``, at least 0
        with ``"non-negative"``)."""
        if low == "positive":
            check = (lambda a: ~(np.isfinite(a) & (a > 0)), lambda a: "it must be finite and > 0")
        elif low == "non-negative":
            check = (lambda a: ~(np.isfinite(a) & (a >= 0)),
                     lambda a: "it must be finite and >= 0")
        else:
            check = (lambda a: ~np.isfinite(a), lambda a: "parameters must be finite")
        return self.array(value, where, shape, dtype, why, check)

    def ids(self, value, where, shape, dtype, dim, what):
        """An integer array of ids ``0 .. dims[dim] - 1``."""
        n = self.dims[dim]
        return self.array(value, where, shape, dtype, f"{what} ids",
                          (lambda a: (a < 0) | (a >= n), lambda a: f"the model has {n} {what}"))

    @staticmethod
    def scalar(value, where, test, expected):
        if not test(value):
            raise FileProblem(f"{where} is {value!r}; expected {expected}")
        return value

    def real(self, value, where):
        return self.scalar(value, where, is_finite, "a finite number")

    def count(self, value, where):
        return self.scalar(value, where, is_count, "an integer >= 0")
