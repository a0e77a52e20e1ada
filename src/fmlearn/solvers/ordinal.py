"""Gibbs sampling of the ordered-probit FM (Albert & Chib 1993, 1997; myFM's ordered probit)."""
from dataclasses import dataclass

import numpy as np

from ..kernels.ordinal import draw_cutpoints, ordinal_targets
from ..ordinal_model import OrdinalFMSamples, class_probabilities
from .mcmc import MCMCSolver


@dataclass
class OrdinalMCMCSolver(MCMCSolver):
    """The Gibbs sampler of :class:`MCMCSolver` with the ordered-probit likelihood.

    Each iteration first draws the cut-points given the current scores (a
    Metropolis-Hastings step, :func:`~fmlearn.kernels.ordinal.draw_cutpoints`), then the
    latent targets in their class intervals, then sweeps the FM parameters on them with
    unit noise precision, as the binary probit does. With ``fit_intercept`` the first
    cut-point stays at 0 (the intercept sets the location). The model is an
    :class:`~fmlearn.ordinal_model.OrdinalFMModel` whose labels ``y`` are the class codes
    0..K-1; the averaged prediction is the class probabilities, and the training loss
    ``-log p_y``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.ordinal_model import OrdinalFMModel
    >>> X = sp.csr_matrix(np.eye(3)); y = np.arange(3.0)
    >>> model = OrdinalFMModel(0.0, np.zeros(3), np.zeros((3, 1)), np.array([0.0, 1.0]))
    >>> solver = OrdinalMCMCSolver("ordinal", 0.0, 0.0, 0.0)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(3), state, np.random.default_rng(0))
    >>> solver.result(model, state).predict_proba(np.eye(3)).shape
    (3, 3)
    """

    def latent_targets(self, model, scores, y, sample_weight, seed=None):
        """Draw the cut-points of ``model`` given ``scores``, then the latent targets (the
        first tries of the end classes from numpy's generator seeded by ``seed``)."""
        labels = y.astype(np.int64)
        weights = sample_weight.astype(np.float64)
        draw_cutpoints(model.cutpoints, scores, labels, weights, bool(np.any(weights != 1)),
                       self.fit_intercept)
        z = np.empty(scores.shape[0])
        ordinal_targets(scores, labels, model.cutpoints, z,
                        np.random.default_rng(seed).standard_normal(z.shape[0]))
        return z

    def _linked(self, sample, X, scores=None, labels=None):
        """The class probabilities (n_classes, n_rows) of ``sample`` (``labels`` unused: the
        ordinal loss reads the averaged probabilities)."""
        scores = self._scores(sample, X) if scores is None else scores
        return class_probabilities(scores, sample.cutpoints)

    def _averaged(self, model, state, X, fresh=None):
        """The class probabilities averaged over the kept samples (the current draw's in the
        burn-in)."""
        if not state.samples:
            return self._linked(model, X, fresh)
        return super()._averaged(model, state, X, fresh)

    def result(self, model, state):
        """The kept samples with their cut-points, or the current draw in the burn-in."""
        return OrdinalFMSamples.stack(state.samples or [model.copy()])
