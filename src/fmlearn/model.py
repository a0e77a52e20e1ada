"""The factorization machine's parameters and its prediction; no learning here."""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import log_ndtr, ndtr, ndtri_exp
from sklearn.preprocessing import normalize

from ._threads import effective_n_jobs, run_threads
from ._validation import as_fm_csr, check_fm_csr, with_fm_indices
from .kernels.anova import predict_chunk as anova_predict_chunk
from .kernels.ffm import predict_chunk as ffm_predict_chunk
from .kernels.predict import PREFETCH_FROM_BYTES, predict_chunk, predict_chunk_ahead
from .kernels.softmax import predict_chunk as softmax_predict_chunk
from .relations import RelationalRows

# Rows per thread below which scoring stays on fewer threads: waking one costs more.
ROWS_PER_THREAD = 512


def run_predict(kernel, X, shape, n_jobs, *params):
    """Run a scoring kernel ``kernel(c, n_chunks, indptr, indices, data, *params, out)`` over
    the CSR ``X``, chunk ``c`` of the rows on thread ``c`` of up to ``n_jobs`` threads; return
    ``out``, of ``shape`` and the dtype of the last parameter (the factors).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.kernels.predict import predict_chunk
    >>> from fmlearn._validation import as_fm_csr
    >>> X = as_fm_csr(sp.csr_matrix(np.eye(2)), np.float64)
    >>> run_predict(predict_chunk, X, 2, None, 1.0, np.array([2.0, 3.0]), np.zeros((2, 1)))
    array([3., 4.])
    """
    out = np.empty(shape, dtype=params[-1].dtype)
    n_threads = max(1, min(effective_n_jobs(n_jobs), X.shape[0] // ROWS_PER_THREAD))
    run_threads(kernel, n_threads, n_threads, X.indptr, X.indices, X.data, *params, out)
    return out


def check_scores(scores, dtype):
    """``scores``, unless one is not finite: then ``ValueError`` naming its row.

    Finite values too large for the model dtype (near 1e38 in float32) overflow its
    arithmetic, and the kernels compute inf or NaN. The models' ``predict`` and the
    estimators raise this error; the server answers such a request with 400 in the same
    words.

    Examples
    --------
    >>> import numpy as np
    >>> check_scores(np.array([1.0, np.nan]), np.float64)
    Traceback (most recent call last):
    ...
    ValueError: X row 1: the prediction is nan; the input values overflow the model's float64 arithmetic. Scale the features.
    """
    finite = np.isfinite(scores)
    if not finite.all():
        first = tuple(np.argwhere(~finite)[0])
        dtype = np.dtype(dtype)
        remedy = " or use dtype='float64'" if dtype == np.float32 else ""
        raise ValueError(f"X row {first[0]}: the prediction is {float(scores[first])!r}; the "
                         f"input values overflow the model's {dtype.name} arithmetic. Scale "
                         f"the features{remedy}.")
    return scores


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
        factors = np.empty((n_features, n_factors), dtype=dtype)
        for first in range(0, n_features, 2**16):  # rng's values without a float64 copy of all
            rows = factors[first:first + 2**16]
            rows[...] = rng.normal(0.0, init_std, size=rows.shape)
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

        ``X`` is checked and converted by ``as_fm_csr``; rows are scored in parallel on
        ``n_jobs`` threads. A score that is not finite raises ``ValueError``
        (``check_scores``).
        """
        X = as_fm_csr(X, self.dtype, n_features=self.n_features)
        return check_scores(self._scores(X, n_jobs), self.dtype)

    def predict_csr(self, X, n_jobs=None, *, check=True):
        """Raw scores of a CSR matrix already in the form ``as_fm_csr`` returns.

        With ``check``, ``X``'s dtypes, width and index arrays are checked first
        (``check_fm_csr``); ``check=False`` is for rows that fmlearn built or checked
        itself. The scores are returned as computed, finite or not.
        """
        if check:
            check_fm_csr(X, self.n_features, self.dtype)
        return self._scores(X, n_jobs)

    def _scores(self, X, n_jobs):
        if isinstance(X, RelationalRows):  # rows with blocks, scored through block caches
            return X.scores(self.intercept, self.coef, self.factors).astype(self.dtype)
        large = self.coef.nbytes + self.factors.nbytes > PREFETCH_FROM_BYTES
        return run_predict(predict_chunk_ahead if large else predict_chunk, X, X.shape[0], n_jobs,
                           self.dtype.type(self.intercept), self.coef, self.factors)


@dataclass
class FFMModel:
    """A field-aware factorization machine (Juan et al., RecSys 2016).

    ``score(x) = intercept + coef @ x + sum_{i<j} <factors[i, fields[j]],
    factors[j, fields[i]]> x_i x_j``: each feature has one latent vector per field,
    and a pair uses the vector of each side meant for the other's field. Costs
    O(n_factors * nnz(x)**2) per row. With ``normalize`` every row is scaled to unit
    L2 norm first (LIBFFM's instance-wise normalisation).

    Parameters
    ----------
    intercept : float
    coef : ndarray of shape (n_features,)
    factors : ndarray of shape (n_features, n_fields, n_factors)
    fields : ndarray of int32 of shape (n_features,)
        The field of each feature, 0 .. n_fields - 1.
    normalize : bool, default=False
    feature_ids : ndarray of int32 of shape (n_features,), optional
        The file's feature id of each column when the columns are (field, feature id)
        tokens (:func:`fmlearn.io.load_ffm`); kept with the model, unused by it.

    Examples
    --------
    >>> import numpy as np
    >>> V = np.array([[[0.0], [2.0]], [[3.0], [0.0]]])  # feature 0 in field 0, 1 in field 1
    >>> m = FFMModel(0.0, np.zeros(2), V, np.array([0, 1], dtype=np.int32))
    >>> m.predict(np.array([[1.0, 1.0]]))  # <V[0, field 1], V[1, field 0]> = 2 * 3
    array([6.])
    """

    intercept: float
    coef: np.ndarray
    factors: np.ndarray
    fields: np.ndarray
    normalize: bool = False
    feature_ids: np.ndarray | None = None

    @classmethod
    def initial(cls, fields, n_factors, init_std, dtype, rng, normalize=False, feature_ids=None):
        """Zero bias and weights, factors drawn from N(0, init_std**2), for features in ``fields``.

        Examples
        --------
        >>> import numpy as np
        >>> fields = np.array([0, 0, 1], dtype=np.int32)
        >>> FFMModel.initial(fields, 4, 0.1, np.float32, np.random.default_rng(0)).factors.shape
        (3, 2, 4)
        """
        n_fields = int(fields.max()) + 1 if fields.size else 1
        factors = rng.normal(0.0, init_std, size=(fields.shape[0], n_fields, n_factors))
        return cls(0.0, np.zeros(fields.shape[0], dtype=dtype), factors.astype(dtype), fields,
                   normalize, feature_ids)

    dtype = FMModel.dtype
    n_features = FMModel.n_features

    @property
    def n_fields(self):
        """The number of fields."""
        return self.factors.shape[1]

    def copy(self):
        """A deep copy of the parameters."""
        return FFMModel(self.intercept, self.coef.copy(), self.factors.copy(), self.fields,
                        self.normalize, self.feature_ids)

    predict = FMModel.predict
    predict_csr = FMModel.predict_csr

    def _scores(self, X, n_jobs):
        if self.normalize:
            X = normalize_rows(X)
        return run_predict(ffm_predict_chunk, X, X.shape[0], n_jobs, self.fields,
                           self.dtype.type(self.intercept), self.coef, self.factors)


@dataclass
class HOFMModel:
    """A higher-order factorization machine (Blondel et al., NIPS 2016).

    ``score(x) = intercept + coef @ x + sum_{t=2..order} sum_f A^t(factors[t - 2][:, f], x)``
    with the ANOVA kernel ``A^t(p, x) = sum_{i_1<...<i_t} prod_s p_{i_s} x_{i_s}``: every
    order has factors of its own. Costs O(order**2 * n_factors * nnz(x)) per row; order 2 is
    the FM.

    Parameters
    ----------
    intercept : float
    coef : ndarray of shape (n_features,)
    factors : ndarray of shape (order - 1, n_features, n_factors)

    Examples
    --------
    >>> import numpy as np
    >>> P = np.ones((2, 3, 1))  # orders 2 and 3, all ones: A^2 = 3 pairs, A^3 = 1 triple
    >>> HOFMModel(0.0, np.zeros(3), P).predict(np.ones((1, 3)))
    array([4.])
    """

    intercept: float
    coef: np.ndarray
    factors: np.ndarray

    @classmethod
    def initial(cls, n_features, order, n_factors, init_std, dtype, rng):
        """Zero bias and weights, factors of every order drawn from N(0, init_std**2).

        Examples
        --------
        >>> import numpy as np
        >>> HOFMModel.initial(5, 3, 4, 0.1, np.float32, np.random.default_rng(0)).factors.shape
        (2, 5, 4)
        """
        factors = rng.normal(0.0, init_std, size=(order - 1, n_features, n_factors))
        return cls(0.0, np.zeros(n_features, dtype=dtype), factors.astype(dtype))

    dtype = FMModel.dtype
    n_features = FMModel.n_features
    predict = FMModel.predict
    predict_csr = FMModel.predict_csr

    @property
    def order(self):
        """The highest order of interactions."""
        return self.factors.shape[0] + 1

    def copy(self):
        """A deep copy of the parameters."""
        return HOFMModel(self.intercept, self.coef.copy(), self.factors.copy())

    def _scores(self, X, n_jobs):
        return run_predict(anova_predict_chunk, X, X.shape[0], n_jobs,
                           self.dtype.type(self.intercept), self.coef, self.factors)


@dataclass
class MulticlassFMModel:
    """One second-order FM per class, whose scores a softmax turns into probabilities.

    ``scores(x)[c] = intercept[c] + coef[c] @ x + sum_{i<j} <factors[c, i], factors[c, j]>
    x_i x_j``. Every class has factors of its own: with shared factors the pairwise
    term would be the same for every class, and the softmax, which only sees differences
    between scores, would cancel it.

    Parameters
    ----------
    intercept : ndarray of shape (n_classes,)
    coef : ndarray of shape (n_classes, n_features)
    factors : ndarray of shape (n_classes, n_features, n_factors)

    Examples
    --------
    >>> import numpy as np
    >>> m = MulticlassFMModel(np.zeros(3), np.eye(3), np.zeros((3, 3, 1)))
    >>> m.predict(np.array([[0.0, 2.0, 0.0]]))
    array([[0., 2., 0.]])
    """

    intercept: np.ndarray
    coef: np.ndarray
    factors: np.ndarray

    @classmethod
    def initial(cls, n_classes, n_features, n_factors, init_std, dtype, rng):
        """Zero biases and weights, factors drawn from N(0, init_std**2).

        Examples
        --------
        >>> import numpy as np
        >>> MulticlassFMModel.initial(3, 5, 2, 0.1, np.float32, np.random.default_rng(0)).coef.shape
        (3, 5)
        """
        factors = rng.normal(0.0, init_std, size=(n_classes, n_features, n_factors))
        return cls(np.zeros(n_classes, dtype=dtype), np.zeros((n_classes, n_features), dtype=dtype),
                   factors.astype(dtype))

    dtype = FMModel.dtype
    predict = FMModel.predict
    predict_csr = FMModel.predict_csr

    @property
    def n_features(self):
        """The number of input features."""
        return self.coef.shape[1]

    def copy(self):
        """A deep copy of the parameters."""
        return MulticlassFMModel(self.intercept.copy(), self.coef.copy(), self.factors.copy())

    def _scores(self, X, n_jobs):
        """The class scores, shape (n_rows, n_classes)."""
        return run_predict(softmax_predict_chunk, X, (X.shape[0], self.intercept.shape[0]),
                           n_jobs, self.intercept, self.coef, self.factors)


def normalize_rows(X):
    """``X`` with every row scaled to unit L2 norm (empty rows stay empty), same dtype.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> normalize_rows(sp.csr_matrix(np.array([[3.0, 4.0]]))).toarray()
    array([[0.6, 0.8]])
    """
    if not sp.issparse(X):  # the server's rows (fmlearn.serve.codecs.Rows)
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape)
    return with_fm_indices(normalize(X, norm="l2", copy=True))


@dataclass
class FMSamples:
    """Posterior samples of an FM (from Gibbs sampling), predicting by their average.

    A regression prediction is the mean of the samples' scores, each clipped to
    ``bounds`` first when given, as libFM's MCMC clips every sample's prediction to
    the training targets' range before averaging. With the probit ``link`` the
    predicted probability is the mean of ``Phi(score)`` over the samples, and the
    returned decision score is ``Phi^-1`` of that mean, so that a positive score means
    a probability above 1/2; the mean of ``Phi(-score)`` is kept too (both in logs,
    :func:`apply_link`), so that a probability near 0 or 1 keeps all its digits and a
    confident score comes back as it was. Memory is ``n_samples * n_features *
    (n_factors + 1)`` parameters of the model dtype.

    Parameters
    ----------
    intercepts : ndarray of shape (n_samples,)
    coefs : ndarray of shape (n_samples, n_features)
    factors : ndarray of shape (n_samples, n_features, n_factors)
    link : {"identity", "probit"}, default="identity"
    bounds : tuple of float or None, default=None
        ``(low, high)`` each sample's regression score is clipped to before averaging.

    Examples
    --------
    >>> import numpy as np
    >>> m = FMSamples(np.array([0.0, 1.0]), np.ones((2, 2)), np.zeros((2, 2, 1)))
    >>> m.predict(np.array([[1.0, 0.0]]))
    array([1.5])
    >>> FMSamples(m.intercepts, m.coefs, m.factors_samples, bounds=(0.0, 1.5)).predict(
    ...     np.array([[1.0, 1.0]]))
    array([1.5])
    >>> m.coef
    array([1., 1.])
    """

    intercepts: np.ndarray
    coefs: np.ndarray
    factors_samples: np.ndarray
    link: str = "identity"
    bounds: tuple | None = None

    @classmethod
    def stack(cls, models, link="identity", bounds=None):
        """Samples from a sequence of :class:`FMModel`.

        Examples
        --------
        >>> import numpy as np
        >>> m = FMModel(0.0, np.ones(2), np.zeros((2, 1)))
        >>> FMSamples.stack([m, m]).n_samples
        2
        """
        return cls(np.array([m.intercept for m in models], dtype=np.float64),
                   np.stack([m.coef for m in models]),
                   np.stack([m.factors for m in models]), link, bounds)

    @property
    def n_samples(self):
        """The number of samples."""
        return self.intercepts.shape[0]

    @property
    def dtype(self):
        """The floating dtype of the parameters."""
        return self.coefs.dtype

    @property
    def n_features(self):
        """The number of input features."""
        return self.coefs.shape[1]

    @property
    def intercept(self):
        """Posterior mean of w0."""
        return float(self.intercepts.mean())

    @property
    def coef(self):
        """Posterior mean of the linear weights."""
        return self.coefs.mean(axis=0)

    @property
    def factors(self):
        """Posterior mean of the factors (not what predictions use: they average scores)."""
        return self.factors_samples.mean(axis=0)

    def sample(self, s):
        """Sample ``s`` as an :class:`FMModel`."""
        return FMModel(float(self.intercepts[s]), self.coefs[s], self.factors_samples[s])

    def copy(self):
        """A deep copy of the samples."""
        return FMSamples(self.intercepts.copy(), self.coefs.copy(), self.factors_samples.copy(),
                         self.link, self.bounds)

    def linked_sum(self, X, n_jobs=None):
        """The sum over the samples of :func:`apply_link` of their scores, for a CSR ``X``
        in the form ``as_fm_csr`` returns (not checked)."""
        total = None
        for s in range(self.n_samples):
            scores = self.sample(s).predict_csr(X, n_jobs, check=False)
            total = add_linked(total, apply_link(scores, self.link, self.bounds), self.link)
        return total

    predict = FMModel.predict
    predict_csr = FMModel.predict_csr

    def _scores(self, X, n_jobs):
        """Scores averaged over the samples (see the class notes)."""
        total = self.linked_sum(X, n_jobs)
        return inverse_link(total, self.n_samples, self.link).astype(self.dtype)


def apply_link(scores, link, bounds=None):
    """What the samples' average is taken of, in float64: the scores, clipped to ``bounds``
    when given (identity), or ``log Phi(s)`` and ``log Phi(-s)`` stacked on a first axis of
    length 2 (probit): both tails, so that neither ``p`` near 1 nor near 0 loses digits.

    Examples
    --------
    >>> import numpy as np
    >>> apply_link(np.array([-40.0, 40.0]), "probit").round(1)
    array([[-804.6,   -0. ],
           [  -0. , -804.6]])
    """
    scores = scores.astype(np.float64)
    if link == "probit":
        return _log_tails(scores)
    return scores if bounds is None else np.clip(scores, *bounds)


def log_phi(scores):
    """``log Phi(s)`` in float64, as :func:`apply_link` reads each tail: one tail of the
    two (the label's, in a training loss).

    Examples
    --------
    >>> import numpy as np
    >>> log_phi(np.array([-40.0, 0.0, 40.0])).round(3).tolist()
    [-804.608, -0.693, -0.0]
    """
    scores = np.asarray(scores, dtype=np.float64)
    small = ndtr(-np.abs(scores))
    with np.errstate(divide="ignore"):
        tail = np.where(scores > 0, np.log1p(-small), np.log(small))
    under = small == 0
    if under.any():
        tail[under] = log_ndtr(scores[under])
    return tail


def _log_tails(scores):
    """``log Phi(s)`` and ``log Phi(-s)`` stacked: one ``ndtr`` pass gives the smaller tail
    exactly, its ``log`` and ``log1p(-tail)`` the two logs (a third of the time of two
    ``log_ndtr`` passes); ``log_ndtr`` only where the smaller tail underflows."""
    small = ndtr(-np.abs(scores))
    with np.errstate(divide="ignore"):
        log_small, log_large = np.log(small), np.log1p(-small)
    positive = scores > 0
    tails = np.empty((2,) + scores.shape)
    tails[0] = np.where(positive, log_large, log_small)
    tails[1] = np.where(positive, log_small, log_large)
    under = small == 0
    if under.any():
        tails[0, under] = log_ndtr(scores[under])
        tails[1, under] = log_ndtr(-scores[under])
    return tails


def add_linked(total, terms, link):
    """The sum of two results of :func:`apply_link` (``total`` None: ``terms``), as the link
    sums them: plainly, or by ``logaddexp``.

    Examples
    --------
    >>> import numpy as np
    >>> add_linked(np.log([[0.5], [0.5]]), np.log([[0.25], [0.75]]), "probit").round(3)
    array([[-0.288],
           [ 0.223]])
    """
    if total is None:
        return terms
    return _log_add(total, terms) if link == "probit" else total + terms


def _log_add(a, b):
    """``np.logaddexp(a, b)`` as ``max + log1p(exp(-|a - b|))`` in whole-array passes: the
    ufunc calls ``exp`` and ``log1p`` one element at a time, 4x as long (a9a's MCMC: a
    twentieth of an iteration). Where both are ``-inf`` so is the sum."""
    with np.errstate(invalid="ignore"):
        gap = np.subtract(a, b)
    np.abs(gap, out=gap)
    gap[np.isnan(gap)] = np.inf  # -inf on both sides (or NaN: it stays in the maximum)
    np.negative(gap, out=gap)
    np.exp(gap, out=gap)
    np.log1p(gap, out=gap)
    return np.maximum(a, b) + gap


def remove_linked(total, terms, link):
    """``total`` less ``terms`` (of :func:`apply_link`), and where the difference lost more
    than 20 bits to cancellation (a probit tail dominated by the removed sample).

    Examples
    --------
    >>> import numpy as np
    >>> rest, lost = remove_linked(np.log([[1.0, 1.0]]), np.log([[0.5, 1.0 - 1e-9]]), "probit")
    >>> rest.round(3), lost
    (array([[ -0.693, -20.723]]), array([[False,  True]]))
    """
    if link != "probit":
        return total - terms, np.zeros(total.shape, dtype=bool)
    share = np.exp(np.minimum(terms - total, 0.0))
    with np.errstate(divide="ignore"):  # all of it removed: log(0)
        return total + np.log1p(-share), share > 1.0 - 2.0**-20


def inverse_link(total, n, link):
    """The score of ``n`` samples whose :func:`apply_link` terms sum to ``total``: their
    mean (identity), or ``Phi^-1`` of their mean probability ``p`` (probit), read from the
    tail that holds its digits: ``Phi^-1(p)`` for ``p <= 1/2``, ``-Phi^-1(1 - p)`` above.
    Scores stay finite.

    Examples
    --------
    >>> import numpy as np
    >>> inverse_link(apply_link(np.array([-40.0, 10.0]), "probit"), 1, "probit")
    array([-40.,  10.])
    """
    if link != "probit":
        return total / n
    log_mean = np.maximum(total - np.log(n), -np.finfo(np.float64).max)
    upper = log_mean[1] < log_mean[0]  # p > 1/2: 1 - p holds the digits
    return np.where(upper, -1.0, 1.0) * ndtri_exp(np.minimum(log_mean[0], log_mean[1]))
