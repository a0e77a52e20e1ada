"""Top-N learning from an interaction matrix: SGD on positives with negatives sampled in the
kernel (BPR, WARP, logistic), or coordinate descent on implicit ALS's objective over every
pair (iCD)."""
from dataclasses import dataclass

import numpy as np

from .._threads import thread_limits
from ..kernels.sgd import ADAGRAD, SGDConfig
from ..kernels.topn import BPR, LOGISTIC, POPULARITY, UNIFORM, WARP, cd_side, topn_epoch
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


def _side(model, rows, intercept):
    """Each row's ``(bias, q)`` in float64: its linear part, self-interactions and
    ``intercept``, and its factor sums."""
    rows = rows.astype(np.float64)
    factors = model.factors.astype(np.float64)
    q = rows @ factors
    squares = rows.multiply(rows) @ (factors * factors).sum(axis=1)
    return intercept + rows @ model.coef.astype(np.float64) + 0.5 * (
        (q * q).sum(axis=1) - squares), q


def _gram(bias, q):
    """``sum_r psi_r psi_r^T`` over ``psi_r = (1, bias[r], q[r])``."""
    psi = np.column_stack([np.ones_like(bias), bias, q])
    return psi.T @ psi


def _csc(rows):
    """``rows`` by column, int64 indices."""
    csc = rows.tocsc()
    return csc.indptr.astype(np.int64), csc.indices.astype(np.int64), csc.data


@dataclass
class TopNCDSolver:
    """Coordinate descent (iCD: Bayer, He, Kanagal, Rendle, "A Generic Coordinate Descent
    Framework for Learning from Implicit Feedback", WWW 2017) on implicit ALS's objective
    over every user x item pair, for an FM over item and user features
    (:func:`fmlearn.kernels.topn.cd_side`): weight ``c`` and target 1 on a positive of
    confidence ``c``, weight 1 and target 0 on every other pair, plus
    ``reg_linear * w_j^2 + reg_factors * v_jf^2``. Each sweep steps the user side's
    columns with the items fixed, then the item side's; the sums over all pairs come
    from one ``(k + 2)^2`` Gram matrix per side, so a sweep costs O(k^2) per stored
    feature value plus O(k) per interaction of each feature's rows (O(k nnz(interactions))
    with identity columns only). One thread.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> liked = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32))
    >>> items = sp.csr_matrix(np.eye(3, 5, dtype=np.float32))          # columns 0-2
    >>> users = sp.csr_matrix(np.eye(2, 5, k=3, dtype=np.float32))     # columns 3-4
    >>> model = FMModel.initial(5, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = TopNCDSolver(0.1, 0.1)
    >>> first = solver.epoch(model, liked, np.ones(3), users, items)
    >>> solver.epoch(model, liked, np.ones(3), users, items) < first
    True
    """

    reg_linear: float
    reg_factors: float

    def epoch(self, model, liked, weights, user_rows, item_rows, user_columns=None):
        """One sweep over the positives of ``liked`` (a CSR of users x items with sorted
        indices, ``weights`` their confidences), ``user_rows`` and ``item_rows`` the
        feature CSRs in the model's column numbers; with ``user_columns``, only those
        columns step (the item side stays: a fold-in). Returns the objective per
        positive after the sweep. BLAS runs on one thread: its products here are small, and
        a pool of the machine's size spins on a busy machine."""
        with thread_limits(1):
            return self._epoch(model, liked, weights, user_rows, item_rows, user_columns)

    def _epoch(self, model, liked, weights, user_rows, item_rows, user_columns):
        liked_users = np.repeat(np.arange(liked.shape[0], dtype=np.int64),
                                np.diff(liked.indptr))
        liked_items = liked.indices.astype(np.int64)
        conf = np.asarray(weights, np.float64)
        user_bias, user_q = _side(model, user_rows, model.intercept)
        item_bias, item_q = _side(model, item_rows, 0.0)
        y_hat = user_bias[liked_users] + item_bias[liked_items] + np.einsum(
            "ef,ef->e", user_q[liked_users], item_q[liked_items])
        reg = (model.dtype.type(self.reg_linear), model.dtype.type(self.reg_factors))
        sides = [(user_rows, user_bias, user_q, item_bias, item_q, liked.indptr.astype(np.int64),
                  liked_items, np.arange(liked_items.shape[0]), user_columns)]
        if user_columns is None:
            by_item = np.argsort(liked_items, kind="stable")
            item_indptr = np.zeros(liked.shape[1] + 1, np.int64)
            np.cumsum(np.bincount(liked_items, minlength=liked.shape[1]), out=item_indptr[1:])
            sides.append((item_rows, item_bias, item_q, user_bias, user_q, item_indptr,
                          liked_users[by_item], by_item, None))
        for rows, bias, q, other_bias, other_q, indptr, other, entry, columns in sides:
            indptr_c, rows_c, data_c = _csc(rows)
            if columns is None:
                columns = np.flatnonzero(np.diff(indptr_c))
            cd_side(np.asarray(columns, np.int64), indptr_c, rows_c, data_c, bias, q, other_q,
                    _gram(other_bias, other_q), indptr, other, entry, y_hat, conf, model.coef,
                    model.factors, *reg)
        swap = [1, 0] + list(range(2, user_q.shape[1] + 2))  # phi_u = (bias, 1, q)
        everywhere = np.sum(_gram(user_bias, user_q)[np.ix_(swap, swap)]
                            * _gram(item_bias, item_q))
        positives = np.sum(conf * (y_hat - 1) ** 2 - y_hat ** 2)
        penalty = self.reg_linear * np.sum(model.coef.astype(np.float64) ** 2) + \
            self.reg_factors * np.sum(model.factors.astype(np.float64) ** 2)
        return float(positives + everywhere + penalty) / max(1, liked_items.shape[0])
