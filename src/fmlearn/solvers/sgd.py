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
# A fit trains on a copy of the rows in their shuffled order and renumbered features when the
# copy takes at most this share of the memory available, and reads them in place through the
# order and the renumbering otherwise: the same steps without the copy (the data's size),
# but each row is fetched from anywhere in memory and each feature through the renumbering:
# 1.36x (1.24-1.44x) the epoch over a copy, 2e6 synthetic rows at k=16, one thread.
COPY_ROWS_SHARE = 0.5


def available_memory():
    """Bytes of memory available to the process without swapping (Linux's ``MemAvailable``),
    or None where not known.

    Examples
    --------
    >>> available = available_memory()
    >>> available is None or available > 0
    True
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def outgrows_cache(factor_bytes):
    """Whether factors of ``factor_bytes`` and their AdaGrad sums miss the caches."""
    return 2 * factor_bytes > OUT_OF_CACHE_BYTES


def row_order(n_rows, rng=None):
    """Rows ``0 .. n_rows - 1`` in 4 bytes each where they suffice (else 8), in
    ``rng.permutation``'s order when ``rng`` is given.

    Examples
    --------
    >>> row_order(3), row_order(3, np.random.default_rng(0)).tolist()
    (array([0, 1, 2], dtype=int32), [2, 0, 1])
    """
    order = np.arange(n_rows, dtype=np.int32 if n_rows < 2**31 else np.int64)
    if rng is not None:
        rng.shuffle(order)
    return order


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
    """Per-sample SGD epochs over CSR rows, visited block by block.

    Rows are visited block by block: in storage order (the epoch loop passes a copy of
    them shuffled once per fit), or in the loop's shuffled order without a copy when
    memory is short (:meth:`visit_through`, the same steps); ``epoch`` takes a fresh
    random order of the blocks, so an epoch over a copy reads memory almost sequentially
    yet no two epochs visit rows in the same order. With ``n_threads > 1`` the threads
    update shared parameters without locks.

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
    _rows: np.ndarray = field(default=None, init=False, repr=False)
    _features: FeatureOrder = field(default=None, init=False, repr=False)

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

    def visit_through(self, X, rows, features):
        """Whether this learner visits the rows of ``X`` in the order ``rows`` (None:
        storage order) and reads their features through the renumbering ``features`` (or
        None) in each epoch, rather than in a copy of the rows in that order and numbering:
        when a copy would take more than ``COPY_ROWS_SHARE`` of the memory available (only
        this class's epoch can; the subclasses' kernels read the rows as given)."""
        copy_bytes = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes if rows is not None
                      else X.indices.nbytes if features is not None else 0)
        available = available_memory()
        if (type(self).epoch is not SGDSolver.epoch or copy_bytes == 0 or available is None
                or copy_bytes <= COPY_ROWS_SHARE * available):
            return False
        self.read_through(X, rows, features)
        return True

    def read_through(self, X, rows, features):
        """From the next epoch on, visit the rows of ``X`` in the order ``rows`` (None:
        storage order) and read their features through the renumbering ``features``
        (None: as numbered), without a copy of them."""
        # Both, so that the kernel is compiled once for reading through them.
        self._rows = row_order(X.shape[0]) if rows is None else rows
        self._features = FeatureOrder.identity(X.shape[1]) if features is None else features

    @staticmethod
    def feature_arrays(model, state=None):
        """The arrays of ``model`` and ``state`` with one entry per feature."""
        arrays = [model.coef, model.factors]
        return arrays if state is None else arrays + [state.acc_coef, state.acc_factors]

    def hot_features(self, X):
        """Features in at least ``hot_share`` of the rows (the ``max_hot`` most frequent),
        which each thread updates in a copy of its own; none with one thread.

        Returns ``(hot_slot, hot_features)``: the position of each feature (in the training
        numbering) among the hot ones (-1 if not hot; empty with one thread, which the
        kernel does not read then) and the hot feature ids. Computed once per matrix.
        """
        if self._hot is not None and self._hot[0] is X:
            return self._hot[1]
        slot = np.full(X.shape[1] if self.n_threads > 1 else 0, -1, dtype=np.int32)
        hot = np.zeros(0, dtype=np.int64)
        if self.n_threads > 1:
            counts = column_counts(X.indices, X.shape[1])
            if self._features is not None:  # in the training numbering
                counts = counts[self._features.old]
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
                          n_threads, rows=self._rows,
                          columns=None if self._features is None else self._features.new)
        model.intercept = float(intercept[0])
        return total
