"""Stochastic gradient descent for the second-order FM (Rendle 2010; AdaGrad: Duchi et al. 2011)."""
from dataclasses import dataclass, field

import numpy as np

from ..kernels.losses import BPR, LOGISTIC, SOFTMAX, SQUARED
from ..kernels.rows import column_counts
from ..kernels.sgd import (ADAGRAD, CONSTANT, INVSCALING, SGDConfig, pack_rows, sgd_epoch,
                           stage_buffers, unpack_rows)
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
# copy takes at most COPY_ROWS_BYTES and at most COPY_ROWS_SHARE of the memory available, and
# stages them otherwise (SGDSolver.stages): no copy of the rows (the data's size), at the cost
# of copying each group of blocks in every epoch: 1.06-1.12x the epoch over a copy (1e6 to 3e7
# synthetic rows, k=16, one thread, 5 alternating pairs; bench/scaling.py --memory).
COPY_ROWS_BYTES = 256 * 2**20
COPY_ROWS_SHARE = 0.5
# Blocks a thread stages at a time: 16,384 rows at the default block size, whose buffers stay
# near the core.
STAGE_BLOCKS = 64
# An AdaGrad epoch over parameters that miss the caches steps them packed, each feature's
# factors, weight and sums in one row (kernels.sgd.pack_rows), when its rows visit at least
# this many non-zeros per feature: packing before and unpacking after cost about two visits
# of every feature, and the packed epoch saves about a fifth of each visit (2e6-4e6 synthetic
# rows over 1e6 features, one thread: 1.14-1.32x at k=8, 16 and 64). A fit staging its rows,
# short of memory, does not pack: the table is one more copy of the parameters and sums.
PACK_FROM_VISITS_PER_FEATURE = 16


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


def packs(X, factor_bytes):
    """Whether an AdaGrad epoch over the rows ``X`` (a copy, not staged) steps factors of
    ``factor_bytes`` packed: beyond the caches and at least ``PACK_FROM_VISITS_PER_FEATURE``
    non-zeros per feature.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> packs(sp.random(100, 10, density=0.5, format="csr"), 2**30), packs(sp.eye(4), 2**30)
    (True, False)
    """
    return (outgrows_cache(factor_bytes)
            and X.nnz >= PACK_FROM_VISITS_PER_FEATURE * X.shape[1])


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

    Rows are visited block by block, ``epoch`` taking a fresh random order of the blocks:
    of a copy of the rows shuffled once per fit (which the epoch loop passes), so that an
    epoch reads memory almost sequentially yet no two epochs visit rows in the same order;
    or, when memory is short (:meth:`stages`), of the rows as they are, each thread
    copying a group of its blocks at a time into buffers of its own, renumbered and
    scattered at random, and stepping through them. With ``n_threads > 1`` the threads
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
    _features: FeatureOrder = field(default=None, init=False, repr=False)
    _staged: tuple = field(default=None, init=False, repr=False)
    _packed: np.ndarray = field(default=None, init=False, repr=False)

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

    def stages(self, X, shuffled, features):
        """Whether this learner stages the rows of ``X`` in each epoch (the rows of a few
        blocks at a time copied, renumbered by ``features`` or as numbered when None, and
        scattered when ``shuffled``) rather than train on a whole copy of them in a
        shuffled order and that numbering, which the epoch loop makes otherwise: when the
        copy would take more than ``COPY_ROWS_BYTES`` or ``COPY_ROWS_SHARE`` of the memory
        available (only this class's epoch stages; the subclasses' kernels read the rows
        as given)."""
        copy_bytes = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes if shuffled
                      else X.indices.nbytes if features is not None else 0)
        available = available_memory()
        limit = COPY_ROWS_BYTES if available is None else min(COPY_ROWS_BYTES,
                                                              COPY_ROWS_SHARE * available)
        if type(self).epoch is not SGDSolver.epoch or copy_bytes <= limit:
            return False
        self.stage(X, features)
        return True

    def stage(self, X, features):
        """From the next epoch on, stage the rows of ``X`` (see :meth:`stages`), with their
        features renumbered by ``features`` (None: as numbered)."""
        self._features = FeatureOrder.identity(X.shape[1]) if features is None else features
        self._staged = None

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
        arrays = (model.coef, state.acc_coef, model.factors, state.acc_factors)
        packed = self._packing(X, arrays) if prefetch else None
        try:
            total = sgd_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                              self.block_size, intercept, model.coef, model.factors,
                              state.acc_intercept, state.acc_coef, state.acc_factors,
                              hot_slot, hot, state.step, self.config(model.dtype, prefetch),
                              n_threads, self._staging(X, y, sample_weight, rng), packed)
        finally:
            if packed is not None:
                unpack_rows(packed, *arrays)
        model.intercept = float(intercept[0])
        return total

    def _packing(self, X, arrays):
        """The packed table of ``arrays`` (coef, its sums, factors, theirs) this epoch over
        ``X`` steps (:func:`~fmlearn.kernels.sgd.pack_rows`), or None: packed where
        :func:`packs` says so and the rows are not staged. The
        table is made once per fit and filled in every epoch."""
        factors = arrays[2]
        if self._features is not None or not packs(X, factors.nbytes):
            return None
        shape = (factors.shape[0], 2 * factors.shape[1] + 2)
        table = self._packed
        if table is None or table.shape != shape or table.dtype != factors.dtype:
            self._packed = np.empty(shape, dtype=factors.dtype)
        return pack_rows(*arrays, out=self._packed)

    def _staging(self, X, y, sample_weight, rng):
        """``sgd_epoch``'s ``staged`` for this epoch over ``X`` (None unless staging): the
        rows of each group of blocks scattered by a permutation drawn from ``rng`` (kept in
        order when None); the buffers are made once per matrix."""
        if self._features is None:
            return None
        n = STAGE_BLOCKS * self.block_size
        positions = np.arange(n, dtype=np.int32)
        if rng is not None:
            rng.shuffle(positions)
        if self._staged is None or self._staged[0] is not X:
            self._staged = (X, stage_buffers(X.indptr, X.data, y, sample_weight, self.block_size,
                                             self.n_threads, positions, self._features.new))
        return (positions, *self._staged[1][1:])
