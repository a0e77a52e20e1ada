"""Data-parallel SGD on Dask: local epochs on the workers, their steps summed per feature.

Each round (:func:`round_sizes`), every partition runs the numba SGD kernel over its next
rows, starting from the current model, on a compact copy of the parameter rows those rows touch
(the driver sends only those rows); it returns their steps and the increments of their
AdaGrad sums, per feature (:class:`Steps`). The workers add those up pairwise, a tree of
``ceil(log2 P)`` levels (``_solver.tree_sum``), and the driver receives one sum per round and
applies it (:func:`apply_steps`): each feature's summed steps weighted from the rows holding
it in each partition and its AdaGrad sum (summed where each partition's steps are small,
averaged where each partition alone reaches the feature's minimum), the intercept's likewise
by rows, and the AdaGrad sums moved by the squared gradients of all partitions.
"""
import operator
from dataclasses import dataclass
from uuid import uuid4

import numpy as np
import scipy.sparse as sp

from ..model import FMModel
from ..solvers.sgd import SGDState
from ._solver import DistributedSolver, add_rows, tree_share, tree_sum

# The least share of the way to its minimum a parameter is taken to cover per row holding it
# (see row_share). Measured as the only share (docs/dask.md): with 0.0005 to 0.003 the cluster
# tracked one process alike on the synthetic set and on MovieLens; 0.0001 summed too much, 0.1
# averaged too much.
STEP_SHARE = 1e-3
# A factor's share (parameter_shares) is scaled down from its AdaGrad estimate: while factors
# grow from their small start, each row's step moves them by a share of their own size, which
# steps in sequence compound and the partitions' cannot, so their steps are summed more than
# the weights'. Measured with bench/dask_rounds.py (largest gap of the test RMSE per epoch to
# one process's, power-law planted sets of 12,000 to 96,000 rows in 4 partitions, 32 rounds an
# epoch): the estimate as it is 0.9-7.2 %, scaled by 0.1 1.4-3.7 %, by 0.03 0.8-1.7 %; summing
# the factors' steps outright did as well on those sets but diverged on the 2-million-row set.
FACTOR_SHARE_SCALE = 0.03
# local_steps="auto" (see round_sizes): rounds that double from FIRST_ROUND_ROWS rows, at
# most MAX_ROUND_ROWS rows and at least ROUNDS_PER_EPOCH rounds per epoch. Measured (test
# RMSE per epoch against one process's, docs/dask.md): on the 2-million-row synthetic set in
# 4 partitions, one round per epoch lagged 88 % after epoch 1 and 12 % after epoch 10, the
# doubling alone 0.7 % after epoch 1 but 3.0 % later, capped at 100,000 rows 1.3 %; on the
# power-law planted sets of bench/dask_rounds.py, 16 rounds an epoch lagged up to 7.5 % where
# 32 stay within 1.7 %.
FIRST_ROUND_ROWS = 1000
MAX_ROUND_ROWS = 100_000
ROUNDS_PER_EPOCH = 32


@dataclass
class Slice:
    """``local_steps`` rows of a partition with their features renumbered 0..m-1."""

    features: np.ndarray  # global ids of the m features present
    counts: np.ndarray  # rows holding each of them
    X: sp.csr_matrix
    y: np.ndarray
    sample_weight: np.ndarray


def make_slices(part, sizes):
    """Cut a partition into consecutive slices of ``sizes`` rows (the last one takes the
    rest)."""
    n = part.X.shape[0]
    starts = np.r_[0, np.cumsum(sizes[:-1], dtype=np.int64)]
    slices = []
    for start, stop in zip(starts, np.r_[starts[1:], max(n, starts[-1])]):
        if start >= n:
            break
        X = part.X[start:stop]
        counts = np.bincount(X.indices, minlength=X.shape[1])
        features = np.flatnonzero(counts)
        local = np.zeros(X.shape[1], dtype=np.int32)
        local[features] = np.arange(features.shape[0], dtype=np.int32)
        X = sp.csr_matrix((X.data, local[X.indices], X.indptr),
                          shape=(X.shape[0], features.shape[0]))
        slices.append(Slice(features, counts[features], X, part.y[start:stop],
                            part.sample_weight[start:stop]))
    return slices


def round_sizes(lengths, seen, local_steps):
    """The rows of each partition in each round of an epoch: one round of all rows for
    None, rounds of ``local_steps`` rows for an int, and for ``"auto"`` rounds that begin at
    ``FIRST_ROUND_ROWS`` and double, no round holding more rows than the model has seen
    before it (``seen`` at the epoch's start), up to ``MAX_ROUND_ROWS`` per partition and
    at least ``ROUNDS_PER_EPOCH`` rounds an epoch; one round for a single partition, which
    is one process's SGD.

    Examples
    --------
    >>> round_sizes([40_000, 40_000], 0, "auto")[:5], len(round_sizes([40_000] * 2, 0, "auto"))
    ([1000, 1000, 1250, 1250, 1250], 33)
    >>> len(round_sizes([3_200_000] * 2, 10**8, "auto")), round_sizes([5000, 4000], 0, 2000)
    (32, [2000, 2000, 1000])
    >>> round_sizes([40_000], 0, "auto")
    [40000]
    """
    n = max(lengths, default=0)
    if local_steps is None or n == 0 or (local_steps == "auto" and len(lengths) == 1):
        return [max(n, 1)]
    if local_steps != "auto":
        return [min(local_steps, n - start) for start in range(0, n, local_steps)]
    sizes, start = [], 0
    while start < n:
        size = min(max(FIRST_ROUND_ROWS, seen // len(lengths)), MAX_ROUND_ROWS,
                   -(-n // ROUNDS_PER_EPOCH), n - start)
        sizes.append(size)
        seen += sum(min(max(length - start, 0), size) for length in lengths)
        start += size
    return sizes


def slice_features(slices):
    """The global feature ids of each slice (what the driver sends parameter rows for)."""
    return [s.features for s in slices]


@dataclass
class Steps:
    """The steps of one or more partitions' local epochs, summed per feature: what a worker
    sends after a slice, and what two such sums add up to (:func:`add_steps`).

    Per touched feature: the rows holding it, ``covered`` (the sum over partitions of the
    share of the way to its minimum their rows take each of its parameters, :func:`covered`
    of :func:`parameter_shares`: its weight, then its k factors), the steps of its parameters
    and the increments of their AdaGrad sums; the same for the intercept, by rows.
    """

    features: np.ndarray
    counts: np.ndarray
    covered: np.ndarray
    coef: np.ndarray
    factors: np.ndarray
    acc_coef: np.ndarray
    acc_factors: np.ndarray
    n_rows: int
    covered_rows: float
    intercept: float
    acc_intercept: np.ndarray
    loss: float


def compact(model, state, features):
    """The rows ``features`` of ``model`` and ``state``, copied: what a slice trains on."""
    return (FMModel(model.intercept, model.coef[features], model.factors[features]),
            SGDState(state.acc_intercept.copy(), state.acc_coef[features],
                     state.acc_factors[features], state.step.copy()))


def train_slice(s, rows, solver, seed):
    """One local epoch of ``solver`` over slice ``s`` from ``rows``, its parameter rows and
    their AdaGrad sums (:func:`compact`; changed in place), as :class:`Steps`."""
    local, local_state = rows
    start = (local.intercept, local.coef.copy(), local.factors.copy(),
             local_state.acc_intercept.copy(), local_state.acc_coef.copy(),
             local_state.acc_factors.copy())
    loss = solver.epoch(local, s.X, s.y, s.sample_weight, local_state, np.random.default_rng(seed))
    n_rows = s.X.shape[0]
    return Steps(s.features, s.counts,
                 covered(s.counts[:, None], parameter_shares(solver.eta0, start[4], start[5])),
                 local.coef - start[1], local.factors - start[2],
                 local_state.acc_coef - start[4], local_state.acc_factors - start[5], n_rows,
                 float(covered(n_rows, row_share(solver.eta0, start[3]))[0]),
                 local.intercept - start[0], local_state.acc_intercept - start[3], loss)


def train_from_rows(s, shared, solver, seed):
    """:func:`train_slice` from the rows of slice ``s`` in ``shared = (ids, model, state)``,
    the parameter rows and AdaGrad sums of the sorted features ``ids`` (left as they are)."""
    ids, model, state = shared
    return train_slice(s, compact(model, state, np.searchsorted(ids, s.features)), solver, seed)


def union(features, n_features):
    """The sorted ids in any of the arrays ``features`` (ids below ``n_features``).

    Examples
    --------
    >>> union([np.array([4, 1]), np.array([1, 2])], 6).tolist()
    [1, 2, 4]
    """
    mask = np.zeros(n_features, dtype=bool)
    for f in features:
        mask[f] = True
    return np.flatnonzero(mask).astype(np.min_scalar_type(max(n_features - 1, 0)))


def by_tree(touched, ids, homes, n_features):
    """Whether a round sends its parameter rows by ``_solver.tree_share`` (the rows of the
    union ``ids`` of all partitions' ``touched`` features, doubled from worker to worker)
    rather than each partition its own rows from the driver: when the rows down the tree's
    slowest path (the upload and ``ceil(log2 W)`` levels for the ``W`` workers of ``homes``,
    each the union) are fewer than the driver's link would carry alone, or the partitions'
    rows outnumber twice the model's (the driver holds O(model)).

    Examples
    --------
    >>> t = [np.arange(60), np.arange(40, 100)]  # 120 rows, 100 in the union
    >>> by_tree(t, union(t, 100), ["a", "b"], 1000)  # 120 rows against 2 levels of 100
    False
    >>> by_tree(t * 4, union(t, 100), list("abcdefgh"), 1000)  # 480 against 4 levels of 100
    True
    >>> by_tree(t * 2, union(t, 100), ["a", "b", "c", "d"], 100)  # 240 rows: over twice 100
    True
    """
    rows = sum(t.shape[0] for t in touched)
    levels = 1 + (len(set(homes)) - 1).bit_length()
    return rows > min(2 * n_features, levels * ids.shape[0])


def add_steps(a, b):
    """The :class:`Steps` of two sets of partitions together (a tree's combination).

    Examples
    --------
    >>> one = lambda f: Steps(np.array([f]), np.array([2]), np.full((1, 3), 0.5), np.ones(1),
    ...                       np.ones((1, 2)), np.ones(1), np.ones((1, 2)), 2, 0.5, 1.0,
    ...                       np.ones(1), 0.1)
    >>> both = add_steps(one(3), one(3))
    >>> both.features.tolist(), both.counts.tolist(), both.coef.tolist(), both.n_rows
    ([3], [4], [2.0], 4)
    """
    rows = add_rows(*[(x.features, x.counts, x.covered, x.coef, x.factors, x.acc_coef,
                       x.acc_factors) for x in (a, b)])
    return Steps(*rows, a.n_rows + b.n_rows, a.covered_rows + b.covered_rows,
                 a.intercept + b.intercept, a.acc_intercept + b.acc_intercept, a.loss + b.loss)


def covered(rows, share):
    """The share of the way to its minimum that ``rows`` steps of ``share`` each cover:
    ``1 - (1 - share)**rows``.

    Examples
    --------
    >>> round(covered(2, 0.5).item(), 2)
    0.75
    """
    return -np.expm1(np.asarray(rows, dtype=np.float64) * np.log1p(-share))


def row_share(eta0, acc):
    """The share of the way to its minimum one row's AdaGrad step covers for parameters with
    sums ``acc``: ``eta0 / sqrt(acc)``, a one-hot feature's weight's (its loss's curvature is
    1), at least ``STEP_SHARE`` (the row's other features take their part of the residual)
    and at most 1/2.

    Examples
    --------
    >>> row_share(0.05, np.array([1.0, 100.0, 1e6])).tolist()
    [0.05, 0.005, 0.001]
    """
    return np.clip(eta0 / np.sqrt(np.asarray(acc, dtype=np.float64)), STEP_SHARE, 0.5)


def parameter_shares(eta0, acc_coef, acc_factors):
    """The shares of the way to their minimum one row takes each feature's parameters: column
    0 its weight's (:func:`row_share`), columns 1 to k its factors'. A factor's is its AdaGrad
    step times its curvature, the mean of its squared gradient factor ``h^2`` (``x (q_f - v_f
    x)``), estimated as ``acc_factors / acc_coef`` (both sums collect ``e^2`` times their own
    ``h^2``, the weight's being 1), times ``FACTOR_SHARE_SCALE``, within ``row_share``'s bounds.

    Examples
    --------
    >>> parameter_shares(0.05, np.array([100.0]), np.array([[1e4, 1.0]])).round(4).tolist()
    [[0.005, 0.0015, 0.001]]
    """
    acc_coef = np.asarray(acc_coef, dtype=np.float64)
    factors = FACTOR_SHARE_SCALE * eta0 * np.sqrt(np.asarray(acc_factors, dtype=np.float64))
    return np.column_stack([row_share(eta0, acc_coef),
                            np.clip(factors / acc_coef[:, None], STEP_SHARE, 0.5)])


def apply_steps(model, state, steps, eta0=0.0):
    """Add the partitions' summed ``steps`` into ``model`` and ``state``; return their loss.

    If each of ``c`` rows covers a share ``a`` (:func:`parameter_shares` of the sums in
    ``state``, for ``eta0``, one per parameter) of the way to a parameter's minimum, they
    cover ``1 - (1 - a)**c`` of it:
    one process, over all the ``C = sum c_p`` rows, ``1 - (1 - a)**C``, and the partitions'
    summed steps, weighted by ``(1 - (1 - a)**C) / sum_p (1 - (1 - a)**c_p)``, as much.
    That is their sum (weight 1) for a feature few rows hold, as one process adds their
    steps, and their average (weight ``1 / P``) for one so frequent that each partition
    reaches its minimum alone, where the sum would overshoot ``P``-fold; a feature of one
    partition keeps its steps. The intercept likewise by rows. AdaGrad's sums become the
    starting sums plus every partition's squared gradients.

    Examples
    --------
    >>> model = FMModel(0.0, np.zeros(1), np.zeros((1, 1)))
    >>> state = SGDState(np.ones(1), np.full(1, 1e6), np.ones((1, 1)), np.zeros(1, np.int64))
    >>> many = Steps(np.array([0]), np.array([2 * 10**5]),
    ...              2 * covered(10**5, np.full((1, 2), 1e-3)), np.ones(1), np.zeros((1, 1)),
    ...              np.zeros(1), np.zeros((1, 1)), 2 * 10**5, 1.0, 0.0, np.zeros(1), 0.0)
    >>> _ = apply_steps(model, state, many)
    >>> round(model.coef[0].item(), 3)  # two partitions that each reach the minimum: averaged
    0.5
    """
    f = steps.features
    weight = covered(steps.counts[:, None], parameter_shares(
        eta0, state.acc_coef[f], state.acc_factors[f])) / steps.covered
    model.coef[f] += (weight[:, 0] * steps.coef).astype(model.dtype)
    model.factors[f] += (weight[:, 1:] * steps.factors).astype(model.dtype)
    bias = covered(steps.n_rows, row_share(eta0, state.acc_intercept)) / steps.covered_rows
    model.intercept += float(bias[0] * steps.intercept)
    state.acc_intercept += steps.acc_intercept
    state.acc_coef[f] += steps.acc_coef
    state.acc_factors[f] += steps.acc_factors
    state.step += int(steps.n_rows)
    return steps.loss


@dataclass
class DaskSGD(DistributedSolver):
    """SGD epochs over partitions on Dask workers, combined after each round of rows.

    ``local`` is the in-memory ``SGDSolver`` (one thread) each worker runs. An epoch is
    the rounds of :func:`round_sizes` (``local_steps`` rows, one round for None, or
    ``"auto"``: doubling from 1000 rows, at most 100,000 and at least 32 rounds);
    per round each partition gets the parameter rows its next slice touches, with their
    AdaGrad sums, from the driver, or, where :func:`by_tree` says so, as one copy of all the
    partitions' rows passed from worker to worker (``_solver.tree_share``), and its steps go
    into a tree of sums on the workers whose root (at most the model's rows) the driver
    applies. Tasks are named ``fmlearn-sgd-slices-...``, ``fmlearn-sgd-slice-...``,
    ``fmlearn-sgd-send-{epoch}-{round}-{level}-{i}-...``,
    ``fmlearn-sgd-round-{epoch}-{round}-{partition}-...`` and
    ``fmlearn-sgd-combine-{epoch}-{round}-{level}-{i}-...`` for Dask's dashboard.
    """

    local_steps: int | str | None = "auto"
    _slices: tuple = None
    _epochs: int = 0

    def slices(self, data, sizes):
        """Futures of each slice of each partition (rounds of ``sizes`` rows) and, per
        round, the partitions it holds, the union of the features their slices touch and
        whether it sends their rows down the tree (:func:`by_tree`), built once per ``data``
        and ``sizes``. A future per slice, not per partition: a round's task that runs on
        another worker than its partition's fetches its slice, not the partition."""
        if self._slices is None or self._slices[0] is not data or self._slices[1] != sizes:
            client = data.client
            token = uuid4().hex
            lists = [client.submit(make_slices, p, sizes, key=f"fmlearn-sgd-slices-{i}-{token}")
                     for i, p in enumerate(data.parts)]
            features = client.gather([client.submit(slice_features, s) for s in lists])
            who = client.who_has(lists)
            homes = [(who.get(s.key) or [None])[0] for s in lists]
            slices = [[client.submit(operator.getitem, s, r, key=f"fmlearn-sgd-slice-{i}-{r}-"
                                     f"{token}") for r in range(len(f))]
                      for i, (s, f) in enumerate(zip(lists, features))]
            rounds = []
            for r in range(max(map(len, features), default=0)):
                parts = [p for p in range(len(slices)) if r < len(features[p])]
                touched = [features[p][r] for p in parts]
                ids = union(touched, data.n_features)
                rounds.append((parts, [homes[p] for p in parts], touched, ids,
                               by_tree(touched, ids, [homes[p] for p in parts], data.n_features)))
            self._slices = (data, sizes, slices, rounds)
        return self._slices[2:]

    def run_epoch(self, model, data, state, rng):
        client = data.client
        sizes = round_sizes([p["n_rows"] for p in data.summaries], int(state.step[0]),
                            self.local_steps)
        slices, rounds = self.slices(data, sizes)
        self._epochs += 1
        token = uuid4().hex
        total = 0.0
        for r, (parts, homes, touched, ids, tree) in enumerate(rounds):
            seeds = rng.integers(2**31, size=len(slices)) if rng is not None \
                else np.zeros(len(slices), dtype=np.int64)
            if tree:
                copies = tree_share(client, homes, f"fmlearn-sgd-send-{self._epochs}-{r}", ids,
                                    *compact(model, state, ids))
                train, rows = train_from_rows, [copies[h] for h in homes]
            else:
                train, rows = train_slice, [compact(model, state, t) for t in touched]
            futures = [client.submit(train, slices[p][r], rows_p, self.local, int(seeds[p]),
                                     key=f"fmlearn-sgd-round-{self._epochs}-{r}-{p}-{token}")
                       for p, rows_p in zip(parts, rows)]
            steps = client.gather(tree_sum(client, futures, add_steps,
                                           f"fmlearn-sgd-combine-{self._epochs}-{r}"))
            total += apply_steps(model, state, steps, self.local.eta0)
        return total
