"""The field-weighted factorization machine's parameters and its prediction; no learning here."""
from dataclasses import dataclass

import numpy as np

from .kernels.fwfm import predict_chunk
from .model import FMModel, normalize_rows, run_predict


@dataclass
class FwFMModel:
    """A field-weighted factorization machine (Pan et al., WWW 2018).

    ``score(x) = intercept + coef @ x + sum_{i<j} field_weights[fields[i], fields[j]]
    <factors[i], factors[j]> x_i x_j``: one latent vector per feature, as the FM's, and a
    symmetric weight per pair of fields (same-field pairs use the diagonal). Costs
    O(n_factors * (nnz(x) + F**2)) per row, F the number of fields the row holds
    (:mod:`fmlearn.kernels.fwfm`). With all weights 1 it is the FM; with ``normalize``
    every row is scaled to unit L2 norm first, as :class:`~fmlearn.model.FFMModel` does.

    Parameters
    ----------
    intercept : float
    coef : ndarray of shape (n_features,)
    factors : ndarray of shape (n_features, n_factors)
    fields : ndarray of int32 of shape (n_features,)
        The field of each feature, 0 .. n_fields - 1.
    field_weights : ndarray of shape (n_fields, n_fields)
        The symmetric weights r of the pairs of fields; same dtype as ``coef``.
    normalize : bool, default=False
    feature_ids : ndarray of int32 of shape (n_features,), optional
        The file's feature id of each column when the columns are (field, feature id)
        tokens (:func:`fmlearn.io.load_ffm`); kept with the model, unused by it.

    Examples
    --------
    >>> import numpy as np
    >>> V = np.array([[1.0], [2.0], [3.0]])  # features 0, 1 in field 0, feature 2 in field 1
    >>> r = np.array([[0.5, 2.0], [2.0, 1.0]])
    >>> m = FwFMModel(0.0, np.zeros(3), V, np.array([0, 0, 1], dtype=np.int32), r)
    >>> m.predict(np.array([[1.0, 1.0, 1.0]]))  # 0.5 * 1 * 2 + 2 * (1 * 3 + 2 * 3)
    array([19.])
    """

    intercept: float
    coef: np.ndarray
    factors: np.ndarray
    fields: np.ndarray
    field_weights: np.ndarray
    normalize: bool = False
    feature_ids: np.ndarray | None = None

    @classmethod
    def initial(cls, fields, n_factors, init_std, dtype, rng, normalize=False, feature_ids=None):
        """Zero bias and weights, factors drawn from N(0, init_std**2) and every field weight 1
        (the FM), for features in ``fields``.

        Examples
        --------
        >>> import numpy as np
        >>> fields = np.array([0, 0, 1], dtype=np.int32)
        >>> FwFMModel.initial(fields, 4, 0.1, np.float32, np.random.default_rng(0)).field_weights
        array([[1., 1.],
               [1., 1.]], dtype=float32)
        """
        n_fields = int(fields.max()) + 1 if fields.size else 1
        factors = rng.normal(0.0, init_std, size=(fields.shape[0], n_factors)).astype(dtype)
        return cls(0.0, np.zeros(fields.shape[0], dtype=dtype), factors, fields,
                   np.ones((n_fields, n_fields), dtype=dtype), normalize, feature_ids)

    dtype = FMModel.dtype
    n_features = FMModel.n_features

    @property
    def n_fields(self):
        """The number of fields."""
        return self.field_weights.shape[0]

    def copy(self):
        """A deep copy of the parameters."""
        return FwFMModel(self.intercept, self.coef.copy(), self.factors.copy(), self.fields,
                         self.field_weights.copy(), self.normalize, self.feature_ids)

    predict = FMModel.predict
    predict_csr = FMModel.predict_csr

    def _scores(self, X, n_jobs):
        if self.normalize:
            X = normalize_rows(X)
        return run_predict(predict_chunk, X, X.shape[0], n_jobs, self.fields,
                           self.dtype.type(self.intercept), self.coef, self.factors,
                           self.field_weights)
