"""Data-parallel SGD on Dask: local epochs on the workers, parameters averaged on the driver.

Each round, every worker runs the numba SGD kernel over the next ``local_steps`` rows of each
of its partitions, starting from the current model, on the rows of the parameters those rows
touch; it returns those rows only. The driver averages each feature's parameters over the
partitions that touched it, weighted by the number of rows holding the feature (a feature
seen in one partition takes that partition's value), the intercept by rows, and adds the
AdaGrad accumulators' increments (the squared gradients of all partitions).
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..kernels.sgd import merged
from ..model import FMModel
from ..solvers.sgd import SGDState
from ._solver import DistributedSolver, share


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


def train_slice(slices, r, shared, solver, seed):
    """One local epoch of ``solver`` over slice ``r`` from ``shared = (model, state)`` (not
    changed)."""
    model, state = shared
    s = slices[r]
    f = s.features
    local = FMModel(model.intercept, model.coef[f], model.factors[f])
    local_state = SGDState(state.acc_intercept.copy(), state.acc_coef[f], state.acc_factors[f],
                           state.step.copy())
    loss = solver.epoch(local, s.X, s.y, s.sample_weight, local_state, np.random.default_rng(seed))
    return SliceUpdate(f, s.counts, s.X.shape[0], local.intercept, local.coef, local.factors,
                       local_state.acc_intercept, local_state.acc_coef, local_state.acc_factors,
                       loss)


def _sum_by_feature(features, values):
    """Unique features and the sums of ``values`` rows over each."""
    order = np.argsort(features, kind="stable")
    f = features[order]
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    return f[starts], np.add.reduceat(values[order], starts, axis=0)


def combine(model, state, updates):
    """Average the updates into ``model`` and merge their AdaGrad sums into ``state``, each
    partition's in turn by :func:`~fmlearn.kernels.sgd.merged` from the sums it started
    from (those of ``state`` before the call)."""
    features = np.concatenate([u.features for u in updates])
    weights = np.concatenate([u.counts for u in updates]).astype(np.float64)
    touched, total = _sum_by_feature(features, weights)
    _, coef = _sum_by_feature(features, weights * np.concatenate([u.coef for u in updates]))
    _, factors = _sum_by_feature(
        features, weights[:, None] * np.concatenate([u.factors for u in updates]))
    model.coef[touched] = coef / total
    model.factors[touched] = factors / total[:, None]
    rows = np.array([u.n_rows for u in updates], dtype=np.float64)
    model.intercept = float(np.dot(rows, [u.intercept for u in updates]) / rows.sum())
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
    per round the model and accumulators travel to the workers once (see ``share``), and
    each partition's touched parameter rows come back.
    """

    local_steps: int | None = None
    _slices: tuple = None

    def slices(self, data):
        """Futures of each partition's slices, built once per ``data``."""
        if self._slices is None or self._slices[0] is not data:
            client = data.client
            self._slices = (data, [client.submit(make_slices, p, self.local_steps)
                                   for p in data.parts])
        return self._slices[1]

    def run_epoch(self, model, data, state, rng):
        client = data.client
        slices = self.slices(data)
        n_rows = [s["n_rows"] for s in data.summaries]
        steps = max(n_rows) if self.local_steps is None else self.local_steps
        n_rounds = -(-max(n_rows) // max(steps, 1))
        total = 0.0
        for r in range(n_rounds):
            shared = share(client, model, state)
            seeds = rng.integers(2**31, size=len(slices)) if rng is not None \
                else np.zeros(len(slices), dtype=np.int64)
            futures = [client.submit(train_slice, slices[p], r, shared, self.local,
                                     int(seeds[p]), pure=False)
                       for p in range(len(slices)) if r * steps < n_rows[p]]
            updates = client.gather(futures)
            total += combine(model, state, updates)
        return total
