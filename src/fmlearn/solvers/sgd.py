"""Stochastic gradient descent for the second-order FM (Rendle 2010; AdaGrad: Duchi et al. 2011)."""
from dataclasses import dataclass, field

import numpy as np

from ..kernels.losses import BPR, LOGISTIC, SOFTMAX, SQUARED
from ..kernels.rows import column_counts
from ..kernels.sgd import ADAGRAD, CONSTANT, INVSCALING, SGDConfig, sgd_epoch
from .base import PointSolver
from .feature_order import FeatureOrder

LOSSES = {"squared": SQUARED, "logistic": LOGISTIC, "softmax": SOFTMAX, "bpr": BPR}
SCHEDULES = {"constant": CONSTANT, "invscaling": INVSCALING, "adagrad": ADAGRAD}
# Factors and AdaGrad sums above this size miss the caches. Epochs over them then run with
# the features renumbered by frequency and prefetch the rows ahead (bench/bandwidth_floor.py).
# Both together, one thread, 1e6 synthetic rows (bandwidth_floor.py --rule), two runs: 1.68x
# and 2.25x faster at 30.5 MiB, 1.17x and 1.41x at 12.2 MiB, 0.98x and 1.12x at 6.1 MiB;
# frappe's 2.8 MB 0.92x.
OUT_OF_CACHE_BYTES = 8 * 2**20
# Renumbering costs a count, a sort and two copies of the parameters (about 0.6 s for a
# million features at n_factors=64) and saves about 40 ns per non-zero visited: worth it
# from about 16 visits per feature.
RENUMBER_FROM_VISITS_PER_FEATURE = 16


def outgrows_cache(factor_bytes):
    """Whether factors of ``factor_bytes`` and their AdaGrad sums miss the caches."""
    return 2 * factor_bytes > OUT_OF_CACHE_BYTES


def shuffled_blocks(n_rows, block_size, n_threads, rng):
    """The first row of each block of ``block_size`` of ``n_rows`` rows, in a random order
    drawn from ``rng`` (storage order when None), and how many of ``n_threads`` threads
    share them (no more than there are blocks).

    Examples
    --------
    >>> shuffled_blocks(10, 4, 8, None)
    (array([0, 4, 8]), 3)
    """
    n_blocks = -(-n_rows // block_size)
    order = np.arange(n_blocks) if rng is None else rng.permutation(n_blocks)
    return order.astype(np.int64) * block_size, max(1, min(n_threads, n_blocks))


@dataclass
class SGDState:
    """What SGD carries between epochs and calls: AdaGrad's accumulators and the sample count.

    The accumulators start at 1, as in LIBFFM, which bounds the first steps by ``eta0``.
    """

    acc_intercept: np.ndarray
    acc_coef: np.ndarray
    acc_factors: np.ndarray
    step: np.ndarray

    @classmethod
    def initial(cls, model):
        """Fresh state for ``model``."""
        return cls(np.ones(np.size(model.intercept), dtype=model.dtype), np.ones_like(model.coef),
                   np.ones_like(model.factors), np.zeros(1, dtype=np.int64))


@dataclass
class SGDSolver(PointSolver):
    """Per-sample SGD epochs over CSR rows stored in the order they are visited.

    Rows are read in storage order, block by block; the caller shuffles the rows
    once per fit and ``epoch`` takes a fresh random order of the blocks, so an epoch
    reads memory almost sequentially yet no two epochs visit rows in the same order.
    With ``n_threads > 1`` the threads update shared parameters without locks.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32)); y = np.ones(4, np.float32)
    >>> model = FMModel.initial(4, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = SGDSolver("squared", "adagrad", 0.1, 0.25, 0.0, 0.0, 0.0, None)
    >>> state = SGDState.initial(model)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), state, np.random.default_rng(0))
    >>> loss > 0
    True
    """

    loss: str
    learning_rate: str
    eta0: float
    power_t: float
    reg_intercept: float
    reg_linear: float
    reg_factors: float
    clip_gradient: float | None
    n_threads: int = 1
    block_size: int = 256
    target_range: tuple | None = None
    fit_intercept: bool = True
    fit_linear: bool = True
    hot_share: float = 1 / 64
    max_hot: int = 1024
    _hot: tuple = field(default=None, init=False, repr=False)

    def initial_state(self, model, groups):
        """Fresh AdaGrad accumulators (``groups`` has no meaning here)."""
        return SGDState.initial(model)

    def config(self, dtype, prefetch=False):
        """The kernel's hyperparameters as scalars of ``dtype``."""
        tp = np.dtype(dtype).type
        clip = np.finfo(dtype).max if self.clip_gradient is None else self.clip_gradient
        big = np.finfo(dtype).max
        lower, upper = (-big, big) if self.target_range is None else self.target_range
        return SGDConfig(LOSSES[self.loss], SCHEDULES[self.learning_rate], tp(self.eta0),
                         tp(self.power_t), tp(self.reg_intercept), tp(self.reg_linear),
                         tp(self.reg_factors), tp(clip), tp(lower), tp(upper),
                         self.fit_intercept, self.fit_linear, prefetch)

    def feature_order(self, X, model, n_epochs):
        """Features by falling frequency when the factors and their sums outgrow the caches
        and ``n_epochs`` epochs visit ``RENUMBER_FROM_VISITS_PER_FEATURE`` non-zeros per
        feature; else None. Only for this class's epoch: the subclasses' kernels and models
        differ."""
        if type(self).epoch is not SGDSolver.epoch:
            return None
        if (n_epochs * X.nnz < RENUMBER_FROM_VISITS_PER_FEATURE * X.shape[1]
                or not outgrows_cache(model.factors.nbytes)):
            return None
        return FeatureOrder.by_frequency(X)

    @staticmethod
    def feature_arrays(model, state=None):
        """The arrays of ``model`` and ``state`` with one entry per feature."""
        arrays = [model.coef, model.factors]
        return arrays if state is None else arrays + [state.acc_coef, state.acc_factors]

    def hot_features(self, X):
        """Features in at least ``hot_share`` of the rows (the ``max_hot`` most frequent),
        which each thread updates in a copy of its own; none with one thread.

        Returns ``(hot_slot, hot_features)``: the position of each feature among the hot
        ones (-1 if not hot) and the hot feature ids. Computed once per matrix.
        """
        if self._hot is not None and self._hot[0] is X:
            return self._hot[1]
        slot = np.full(X.shape[1], -1, dtype=np.int32)
        hot = np.zeros(0, dtype=np.int64)
        if self.n_threads > 1:
            counts = column_counts(X.indices, X.shape[1])
            hot = np.argsort(-counts, kind="stable")[:self.max_hot]
            hot = np.sort(hot[counts[hot] >= self.hot_share * X.shape[0]]).astype(np.int64)
            slot[hot] = np.arange(hot.shape[0], dtype=np.int32)
        self._hot = (X, (slot, hot))
        return slot, hot

    def blocks(self, X, rng):
        """The first row of each block of ``block_size`` rows, in a random order drawn from
        ``rng`` (storage order when None), and the threads to share them."""
        return shuffled_blocks(X.shape[0], self.block_size, self.n_threads, rng)

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed loss.

        Blocks of rows are visited in a random order drawn from ``rng``, or in storage
        order when ``rng`` is None.
        """
        block_starts, n_threads = self.blocks(X, rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        hot_slot, hot = self.hot_features(X)
        prefetch = self.learning_rate == "adagrad" and outgrows_cache(model.factors.nbytes)
        total = sgd_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                          self.block_size, intercept, model.coef, model.factors,
                          state.acc_intercept, state.acc_coef, state.acc_factors,
                          hot_slot, hot, state.step, self.config(model.dtype, prefetch),
                          n_threads)
        model.intercept = float(intercept[0])
        return total
