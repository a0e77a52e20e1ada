"""Data-parallel SGD on Dask: local epochs on the workers, their steps summed per feature.

Each round, every partition runs the numba SGD kernel over its next ``local_steps`` rows,
starting from the current model, on a compact copy of the parameter rows those rows touch
(the driver sends only those rows); it returns them. The driver adds up the partitions'
steps of each feature, weighted by :func:`step_weights` from the number of rows holding the
feature in each partition and its AdaGrad sum (summed where each partition's steps are small,
averaged where each partition alone reaches the feature's minimum), the intercept's likewise
by rows, and
adds the AdaGrad accumulators' increments (the squared gradients of all partitions).
"""
import operator
from dataclasses import dataclass
from uuid import uuid4

import numpy as np
import scipy.sparse as sp

from ..kernels.sgd import merged
from ..model import FMModel
from ..solvers.sgd import SGDState
from ._solver import DistributedSolver

# The least share of the way to its minimum a parameter is taken to cover per row holding it
# (see row_share). Measured as the only share (docs/dask.md): with 0.0005 to 0.003 the cluster
# tracked one process alike on the synthetic set and on MovieLens; 0.0001 summed too much, 0.1
# averaged too much.
STEP_SHARE = 1e-3


@dataclass
class Slice:
    """``local_steps`` rows of a partition with their features renumbered 0..m-1."""

    features: np.ndarray  # global ids of the m features present
    counts: np.ndarray  # rows holding each of them
    X: sp.csr_matrix
    y: np.ndarray
    sample_weight: np.ndarray


def make_slices(part, local_steps):
    """Cut a partition into slices of ``local_steps`` rows (all rows when None)."""
    n = part.X.shape[0]
    size = n if local_steps is None else local_steps
    slices = []
    for start in range(0, n, max(size, 1)):
        X = part.X[start:start + size]
        counts = np.bincount(X.indices, minlength=X.shape[1])
        features = np.flatnonzero(counts)
        local = np.zeros(X.shape[1], dtype=np.int32)
        local[features] = np.arange(features.shape[0], dtype=np.int32)
        X = sp.csr_matrix((X.data, local[X.indices], X.indptr),
                          shape=(X.shape[0], features.shape[0]))
        slices.append(Slice(features, counts[features], X, part.y[start:start + size],
                            part.sample_weight[start:start + size]))
    return slices


def slice_features(slices):
    """The global feature ids of each slice (what the driver sends parameter rows for)."""
    return [s.features for s in slices]


@dataclass
class SliceUpdate:
    """What a worker sends back after a local epoch over one slice."""

    features: np.ndarray
    counts: np.ndarray
    n_rows: int
    intercept: float
    coef: np.ndarray
    factors: np.ndarray
    acc_intercept: np.ndarray  # the AdaGrad sums after the epoch
    acc_coef: np.ndarray
    acc_factors: np.ndarray
    loss: float


def compact(model, state, features):
    """The rows ``features`` of ``model`` and ``state``, copied: what a slice trains on."""
    return (FMModel(model.intercept, model.coef[features], model.factors[features]),
            SGDState(state.acc_intercept.copy(), state.acc_coef[features],
                     state.acc_factors[features], state.step.copy()))


def train_slice(s, rows, solver, seed):
    """One local epoch of ``solver`` over slice ``s`` from ``rows``, its parameter rows and
    their AdaGrad sums (:func:`compact`; changed in place)."""
    local, local_state = rows
    loss = solver.epoch(local, s.X, s.y, s.sample_weight, local_state, np.random.default_rng(seed))
    return SliceUpdate(s.features, s.counts, s.X.shape[0], local.intercept, local.coef,
                       local.factors, local_state.acc_intercept, local_state.acc_coef,
                       local_state.acc_factors, loss)


def _sum_by_feature(features, values):
    """Unique features and the sums of ``values`` rows over each."""
    order = np.argsort(features, kind="stable")
    f = features[order]
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    return f[starts], np.add.reduceat(values[order], starts, axis=0)


def _reached(rows, share):
    """The share of the way to its minimum that ``rows`` steps of ``share`` each cover."""
    return -np.expm1(np.asarray(rows, dtype=np.float64) * np.log1p(-share))


def step_weights(features, counts, share):
    """The features touched in a round and the weight of the summed steps of each, from the
    rows holding it in each partition (``features`` and ``counts`` concatenated over them)
    and ``share``, the part of the way to its minimum one such row covers (per touched
    feature, or one for all).

    If each of ``c`` rows covers a share ``a`` of the way, they cover ``1 - (1 - a)**c`` of
    it: one process, over all the ``C = sum c_p`` rows, ``1 - (1 - a)**C``, and the
    partitions' summed steps, weighted by ``(1 - (1 - a)**C) / sum_p (1 - (1 - a)**c_p)``,
    as much. That is their sum (weight 1) for a feature few rows hold, as one process adds
    their steps, and their average (weight ``1 / P``) for one so frequent that each
    partition reaches its minimum alone, where the sum would overshoot ``P``-fold; a feature
    of one partition keeps its steps.

    Examples
    --------
    >>> touched, weight = step_weights(np.array([0, 1, 1]), np.array([3, 10**5, 10**5]), 1e-3)
    >>> touched.tolist(), weight[0].item(), round(weight[1].item(), 3)
    ([0, 1], 1.0, 0.5)
    """
    touched, total = _sum_by_feature(features, counts)
    share = np.broadcast_to(share, touched.shape)
    _, covered = _sum_by_feature(features, _reached(
        counts, share[np.searchsorted(touched, features)]))
    return touched, _reached(total, share) / covered


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
    return np.clip(eta0 / np.sqrt(acc.astype(np.float64)), STEP_SHARE, 0.5)


def combine(model, state, updates, eta0=0.0):
    """Add the updates' steps into ``model``, weighted per feature by :func:`step_weights`
    with the shares :func:`row_share` gives for ``eta0`` (0: ``STEP_SHARE``) and the sums of
    the feature's weight, and merge their AdaGrad sums into ``state``, each partition's in
    turn by :func:`~fmlearn.kernels.sgd.merged` from the sums it started from (those of
    ``state`` before the call)."""
    features = np.concatenate([u.features for u in updates])
    counts = np.concatenate([u.counts for u in updates])
    touched = np.unique(features)
    touched, weight = step_weights(features, counts, row_share(eta0, state.acc_coef[touched]))
    _, coef = _sum_by_feature(features, np.concatenate(
        [u.coef - model.coef[u.features] for u in updates]))
    _, factors = _sum_by_feature(features, np.concatenate(
        [u.factors - model.factors[u.features] for u in updates]))
    model.coef[touched] += (weight * coef).astype(model.dtype)
    model.factors[touched] += (weight[:, None] * factors).astype(model.dtype)
    rows = np.array([u.n_rows for u in updates])
    _, (bias_weight,) = step_weights(np.zeros(len(updates), dtype=np.int64), rows,
                                     row_share(eta0, state.acc_intercept))
    model.intercept += float(bias_weight * sum(u.intercept - model.intercept for u in updates))
    pushed = (state.acc_intercept.copy(), state.acc_coef[touched], state.acc_factors[touched])
    for u in updates:
        at = np.searchsorted(touched, u.features)
        state.acc_intercept[:] = merged(u.acc_intercept, pushed[0], state.acc_intercept)
        state.acc_coef[u.features] = merged(u.acc_coef, pushed[1][at], state.acc_coef[u.features])
        state.acc_factors[u.features] = merged(u.acc_factors, pushed[2][at],
                                               state.acc_factors[u.features])
    state.step += int(rows.sum())
    return sum(u.loss for u in updates)


@dataclass
class DaskSGD(DistributedSolver):
    """SGD epochs over partitions on Dask workers, combined every ``local_steps`` rows.

    ``local`` is the in-memory ``SGDSolver`` (one thread) each worker runs. An epoch is
    ``ceil(max partition rows / local_steps)`` rounds (one when ``local_steps`` is None);
    per round each partition gets the parameter rows its next slice touches, with their
    AdaGrad sums, and sends them back trained. Tasks are named ``fmlearn-sgd-slices-...``,
    ``fmlearn-sgd-slice-...`` and ``fmlearn-sgd-round-{epoch}-{round}-{partition}-...`` for
    Dask's dashboard.
    """

    local_steps: int | None = None
    _slices: tuple = None
    _epochs: int = 0

    def slices(self, data):
        """Futures of each slice of each partition and the features of each slice, built once
        per ``data``. A future per slice, not per partition: a round's task that runs on
        another worker than its partition's fetches its slice, not the partition."""
        if self._slices is None or self._slices[0] is not data:
            client = data.client
            token = uuid4().hex
            lists = [client.submit(make_slices, p, self.local_steps,
                                   key=f"fmlearn-sgd-slices-{i}-{token}")
                     for i, p in enumerate(data.parts)]
            features = client.gather([client.submit(slice_features, s) for s in lists])
            slices = [[client.submit(operator.getitem, s, r, key=f"fmlearn-sgd-slice-{i}-{r}-"
                                     f"{token}") for r in range(len(f))]
                      for i, (s, f) in enumerate(zip(lists, features))]
            self._slices = (data, slices, features)
        return self._slices[1:]

    def run_epoch(self, model, data, state, rng):
        client = data.client
        slices, features = self.slices(data)
        self._epochs += 1
        token = uuid4().hex
        total = 0.0
        for r in range(max(map(len, features), default=0)):
            seeds = rng.integers(2**31, size=len(slices)) if rng is not None \
                else np.zeros(len(slices), dtype=np.int64)
            futures = [client.submit(train_slice, slices[p][r],
                                     compact(model, state, features[p][r]), self.local,
                                     int(seeds[p]),
                                     key=f"fmlearn-sgd-round-{self._epochs}-{r}-{p}-{token}")
                       for p in range(len(slices)) if r < len(features[p])]
            updates = client.gather(futures)
            total += combine(model, state, updates, self.local.eta0)
        return total
