"""BPR for the FM: SGD over pairs of rows sampled afresh every epoch (Rendle et al., UAI 2009)."""
from dataclasses import dataclass, field

import numpy as np

from ..kernels.bpr import bpr_epoch
from .sgd import SGDSolver


def lower_ranked(y, groups):
    """For every row, the rows of its group with a lower relevance, as ranges of a sorting.

    Returns ``(order, start, count)``: ``order`` sorts the rows by group, then relevance,
    and the rows ranked below row ``order[p]`` are ``order[start[p]:start[p] + count[p]]``.

    Examples
    --------
    >>> import numpy as np
    >>> order, start, count = lower_ranked(np.array([1, 0, 2, 0]), np.array([0, 0, 0, 1]))
    >>> order.tolist(), count.tolist()
    ([1, 0, 2, 3], [0, 1, 2, 0])
    """
    levels = np.unique(y, return_inverse=True)[1].reshape(-1).astype(np.int64)
    key = groups.astype(np.int64) * (int(levels.max()) + 1 if levels.size else 1) + levels
    order = np.argsort(key, kind="stable")
    key = key[order]
    group_start = np.searchsorted(key, key - levels[order], side="left")
    return order, group_start, np.searchsorted(key, key, side="left") - group_start


@dataclass
class BPRSolver(SGDSolver):
    """Per-pair SGD epochs of an :class:`~fmlearn.model.FMModel` on the BPR loss.

    Every epoch pairs each row with a random row of the same group (``groups``) and
    lower relevance (``y``), drawn afresh; rows with none lower are not paired. Pairs
    are visited in the order drawn, split over ``n_threads`` without locks. The other
    parameters are :class:`~fmlearn.solvers.sgd.SGDSolver`'s (``loss`` and the
    intercept's are not read); the state is its :class:`~fmlearn.solvers.sgd.SGDState`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> from fmlearn.solvers.sgd import SGDState
    >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32)); y = np.array([1, 0, 1, 0], np.float32)
    >>> model = FMModel.initial(4, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = BPRSolver("bpr", "adagrad", 0.5, 0.25, 0.0, 0.0, 0.0, None)
    >>> for _ in range(10):
    ...     loss = solver.epoch(model, X, y, np.ones(4, np.float32), SGDState.initial(model),
    ...                         np.random.default_rng(0))
    >>> (model.predict(X) > 0).tolist()
    [True, False, True, False]
    """

    groups: np.ndarray | None = None
    _ranges: tuple = field(default=None, init=False, repr=False)

    def pairs(self, y, rng):
        """This epoch's ``(preferred, other)`` rows, shape (n_pairs, 2), in a random order."""
        if self._ranges is None or self._ranges[0] is not y:
            groups = np.zeros(y.shape[0], dtype=np.int64) if self.groups is None else self.groups
            self._ranges = (y, lower_ranked(y, groups))
        order, start, count = self._ranges[1]
        paired = np.flatnonzero(count)
        below = start[paired] + (rng.random(paired.shape[0]) * count[paired]).astype(np.int64)
        pairs = np.column_stack([order[paired], order[below]])
        return pairs[rng.permutation(pairs.shape[0])]

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """One pass over freshly drawn pairs; returns the mean pair loss times the summed row
        weights (so that the epoch loop's division reports the mean pair loss)."""
        pairs = self.pairs(y, np.random.default_rng() if rng is None else rng)
        weights = sample_weight[pairs[:, 0]]
        n_threads = max(1, min(self.n_threads, pairs.shape[0] // 1024 + 1))
        total = bpr_epoch(X.indptr, X.indices, X.data, pairs, weights, model.coef,
                          model.factors, state.acc_coef, state.acc_factors, state.step,
                          self.config(model.dtype), n_threads)
        return total / max(float(weights.sum()), 1e-300) * float(sample_weight.sum())
