"""The factorization machine's parameters and its prediction; no learning here."""
from dataclasses import dataclass

import numpy as np

from ._threads import effective_n_jobs, numba_threads
from ._validation import as_fm_csr
from .kernels.predict import predict_csr


@dataclass
class FMModel:
    """A second-order factorization machine.

    ``score(x) = intercept + coef @ x + sum_{i<j} <factors[i], factors[j]> x_i x_j``,
    evaluated in O(n_factors * nnz(x)) per row (Rendle 2010, Lemma 3.1).

    Parameters
    ----------
    intercept : float
        The global bias w0.
    coef : ndarray of shape (n_features,)
        The linear weights w.
    factors : ndarray of shape (n_features, n_factors)
        The latent vectors V, one row per feature; same dtype as ``coef``.

    Examples
    --------
    >>> import numpy as np
    >>> m = FMModel(0.5, np.array([1.0, 2.0]), np.array([[1.0], [3.0]]))
    >>> m.predict(np.array([[1.0, 1.0]]))
    array([6.5])
    """

    intercept: float
    coef: np.ndarray
    factors: np.ndarray

    @classmethod
    def initial(cls, n_features, n_factors, init_std, dtype, rng):
        """A model with zero bias and weights and factors drawn from N(0, init_std**2).

        Examples
        --------
        >>> import numpy as np
        >>> FMModel.initial(3, 2, 0.1, np.float32, np.random.default_rng(0)).factors.shape
        (3, 2)
        """
        factors = rng.normal(0.0, init_std, size=(n_features, n_factors)).astype(dtype)
        return cls(0.0, np.zeros(n_features, dtype=dtype), factors)

    @property
    def dtype(self):
        """The floating dtype of the parameters."""
        return self.coef.dtype

    @property
    def n_features(self):
        """The number of input features."""
        return self.coef.shape[0]

    def copy(self):
        """A deep copy of the parameters."""
        return FMModel(self.intercept, self.coef.copy(), self.factors.copy())

    def predict(self, X, n_jobs=None):
        """Raw scores of the rows of ``X`` (any matrix with ``n_features`` columns).

        Rows are scored in parallel on ``n_jobs`` threads.
        """
        X = as_fm_csr(X, self.dtype)
        return self.predict_csr(X, n_jobs)

    def predict_csr(self, X, n_jobs=None):
        """Raw scores of a CSR matrix already in the form ``as_fm_csr`` returns."""
        out = np.empty(X.shape[0], dtype=self.dtype)
        n_threads = effective_n_jobs(n_jobs)
        with numba_threads(n_threads):
            predict_csr(X.indptr, X.indices, X.data, self.dtype.type(self.intercept),
                        self.coef, self.factors, out, max(1, 4 * n_threads))
        return out
