"""Top-N learning from an interaction matrix: SGD on positives with negatives sampled in the
kernel (BPR, WARP, logistic)."""
from dataclasses import dataclass

import numpy as np

from ..kernels.sgd import ADAGRAD, SGDConfig
from ..kernels.topn import BPR, LOGISTIC, POPULARITY, UNIFORM, WARP, topn_epoch
from .sgd import SCHEDULES

LOSSES = {"bpr": BPR, "warp": WARP, "logistic": LOGISTIC}
SAMPLINGS = {"uniform": UNIFORM, "popularity": POPULARITY}


@dataclass
class TopNSolver:
    """Epochs over the positives of an interaction matrix (:mod:`fmlearn.kernels.topn`).

    The model's columns are the item features, then the user features (``item_rows``
    and ``user_rows`` hold them in those column numbers); the state is an
    :class:`~fmlearn.solvers.sgd.SGDState` whose ``acc_intercept`` has one element.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> from fmlearn.solvers.sgd import SGDState
    >>> liked = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32))
    >>> items = sp.csr_matrix(np.eye(3, 5, dtype=np.float32))          # columns 0-2
    >>> users = sp.csr_matrix(np.eye(2, 5, k=3, dtype=np.float32))     # columns 3-4
    >>> model = FMModel.initial(5, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = TopNSolver("bpr", "uniform", "adagrad", 0.1, 0.25, 0.0, 0.0, 0.0, 1, 10, 1)
    >>> loss = solver.epoch(model, liked, np.ones(3, np.float32), users, items,
    ...                     SGDState.initial(model), np.random.default_rng(0))
    >>> loss > 0
    True
    """

    loss: str
    sampling: str
    learning_rate: str
    eta0: float
    power_t: float
    reg_intercept: float
    reg_linear: float
    reg_factors: float
    n_negatives: int
    max_sampled: int
    n_threads: int

    def config(self, dtype, schedule=None):
        """The kernel's hyperparameters as scalars of ``dtype``."""
        tp = np.dtype(dtype).type
        big = tp(np.finfo(dtype).max)
        return SGDConfig(0, SCHEDULES[self.learning_rate] if schedule is None else schedule,
                         tp(self.eta0), tp(self.power_t), tp(self.reg_intercept),
                         tp(self.reg_linear), tp(self.reg_factors), big, -big, big,
                         self.loss == "logistic", True)

    def epoch(self, model, liked, weights, user_rows, item_rows, state, rng, users=None,
              adagrad=False, per_entry=False):
        """One pass over the stored entries of ``liked`` (a CSR of users x items with sorted
        indices; ``weights`` one per entry) in a random order, or over the rows ``users``
        only; AdaGrad whatever the schedule when ``adagrad``. ``user_rows`` has a row per
        user, or with ``per_entry`` a row per stored entry (the user's features with the
        entry's context). Returns the mean loss per positive."""
        coo_users = np.repeat(np.arange(liked.shape[0], dtype=np.int64), np.diff(liked.indptr))
        items = liked.indices.astype(np.int64)
        if users is None:
            order = rng.permutation(items.shape[0])
        else:
            entries = np.flatnonzero(np.isin(coo_users, users))
            order = entries[rng.permutation(entries.shape[0])]
        state_rng = rng.integers(0, 2**63, size=(self.n_threads, 8)).astype(np.uint64)
        n_threads = max(1, min(self.n_threads, order.shape[0] // 1024 + 1))
        intercept = np.array([model.intercept], dtype=model.dtype)
        rows = np.arange(items.shape[0]) if per_entry else coo_users
        total = topn_epoch(order, coo_users, rows, items, weights, liked, items, user_rows,
                           item_rows, intercept, model.coef, model.factors, state.acc_intercept,
                           state.acc_coef, state.acc_factors, state.step,
                           self.config(model.dtype, ADAGRAD if adagrad else None),
                           LOSSES[self.loss], SAMPLINGS[self.sampling], self.n_negatives,
                           self.max_sampled, state_rng, n_threads)
        model.intercept = float(intercept[0])
        return total / max(1, order.shape[0])
