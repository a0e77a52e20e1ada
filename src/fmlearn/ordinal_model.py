"""The ordered-probit FM: an FM score and cut-points that split it into ordered classes."""
from dataclasses import dataclass

import numpy as np

from ._validation import as_fm_csr
from .kernels.ordinal import class_probabilities as kernel_probabilities
from .model import FMModel, FMSamples, check_scores


def class_probabilities(scores, cutpoints):
    """``P(class k) = Phi(c_k - s) - Phi(c_{k-1} - s)`` for each score ``s``, shape
    (n_classes, n_rows), float64; each difference is taken in the tail that keeps its digits.

    Examples
    --------
    >>> import numpy as np
    >>> class_probabilities(np.array([0.0]), np.array([0.0])).ravel().tolist()
    [0.5, 0.5]
    """
    scores = np.asarray(scores, dtype=np.float64)
    out = np.empty((cutpoints.shape[0] + 1, scores.shape[0]))
    kernel_probabilities(scores, np.asarray(cutpoints, dtype=np.float64), out)
    return out


@dataclass
class OrdinalFMModel(FMModel):
    """One draw of the ordered-probit FM: the FM parameters and the increasing cut-points
    (float64, one fewer than the classes).

    Examples
    --------
    >>> import numpy as np
    >>> m = OrdinalFMModel(0.0, np.zeros(2), np.zeros((2, 1)), np.array([0.0, 1.0]))
    >>> m.copy().cutpoints
    array([0., 1.])
    """

    cutpoints: np.ndarray

    def copy(self):
        """A deep copy of the parameters."""
        return OrdinalFMModel(self.intercept, self.coef.copy(), self.factors.copy(),
                              self.cutpoints.copy())


@dataclass
class OrdinalFMSamples:
    """Posterior samples of the ordered-probit FM, predicting by their average.

    ``predict_proba`` averages each sample's class probabilities; ``predict`` (and
    ``predict_csr``) give the FM score averaged over the samples.

    Parameters
    ----------
    samples : FMSamples
        The FM parameters of each sample (identity link, no bounds).
    cutpoints : ndarray of shape (n_samples, n_classes - 1)
        Each sample's increasing cut-points, float64.

    Examples
    --------
    >>> import numpy as np
    >>> fm = FMSamples(np.zeros(2), np.ones((2, 1)), np.zeros((2, 1, 1)))
    >>> m = OrdinalFMSamples(fm, np.array([[0.0], [1.0]]))
    >>> m.predict_proba(np.array([[1.0]])).round(3)
    array([[0.329, 0.671]])
    """

    samples: FMSamples
    cutpoints: np.ndarray

    @classmethod
    def stack(cls, models):
        """Samples from a sequence of :class:`OrdinalFMModel`."""
        return cls(FMSamples.stack(models), np.stack([m.cutpoints for m in models]))

    @property
    def n_samples(self):
        """The number of samples."""
        return self.cutpoints.shape[0]

    @property
    def n_classes(self):
        """The number of ordered classes."""
        return self.cutpoints.shape[1] + 1

    dtype = property(lambda self: self.samples.dtype, doc="The parameters' floating dtype.")
    n_features = property(lambda self: self.samples.n_features, doc="The number of features.")
    intercept = property(lambda self: self.samples.intercept, doc="Posterior mean of w0.")
    coef = property(lambda self: self.samples.coef, doc="Posterior mean of w.")
    factors = property(lambda self: self.samples.factors, doc="Posterior mean of V.")

    def copy(self):
        """A deep copy of the samples."""
        return OrdinalFMSamples(self.samples.copy(), self.cutpoints.copy())

    def predict(self, X, n_jobs=None):
        """The FM score averaged over the samples (see :meth:`FMModel.predict`)."""
        return self.samples.predict(X, n_jobs)

    def predict_csr(self, X, n_jobs=None, *, check=True):
        """The FM score averaged over the samples (see :meth:`FMModel.predict_csr`)."""
        return self.samples.predict_csr(X, n_jobs, check=check)

    def predict_proba(self, X, n_jobs=None):
        """Class probabilities of the rows of ``X`` averaged over the samples, shape
        (n_rows, n_classes)."""
        return self.proba_csr(as_fm_csr(X, self.dtype, n_features=self.n_features), n_jobs)

    def proba_csr(self, X, n_jobs=None):
        """``predict_proba`` of a CSR matrix already in the form ``as_fm_csr`` returns."""
        total = 0.0
        for s in range(self.n_samples):
            scores = check_scores(self.samples.sample(s).predict_csr(X, n_jobs, check=False),
                                  self.dtype)
            total = total + class_probabilities(scores, self.cutpoints[s])
        return (total / self.n_samples).T
