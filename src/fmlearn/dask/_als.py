"""ALS on Dask: each coordinate update from statistics summed over the workers' partitions.

A sweep follows the single-machine order (``kernels.coordinate.coordinate_sweep``): w0, then
layer by layer (w, then each column of V) and, within a layer, block by block of columns no
row holds two of. For each block every worker sums ``s h^2`` and ``s h e`` over its rows for
the block's features it holds and sends those sums only; the driver adds them, sets each
feature to its conditional minimiser and sends the changes back, and the workers move their
residuals ``e`` and factor sums ``q_f``. Features of one block never share a row, so the
block's updates are independent and the sweep equals the single-machine one (up to the order
of floating-point additions). The partitions' sums are added pairwise on the workers, so the
driver receives one row set per block: O(block), not one per partition.
"""
import operator
from dataclasses import dataclass, replace

import numpy as np

from .._threads import numba_threads
from ..kernels.coordinate import (LANES, block_pass, draw_group_prior, draw_layer,
                                  exclusive_blocks, posterior_value, probit_targets,
                                  scores_and_sums)
from ..solvers.als import block_layout, pointwise_loss
from ._solver import DistributedSolver, add_rows, model_rows, tree_sum, whole_model


def partition_bounds(part):
    """The partition's runs of columns no row holds two of."""
    csc = part.X.tocsc()
    return exclusive_blocks(csc.indptr, csc.indices, part.X.shape[0])


@dataclass
class Shard:
    """A partition's entries by block (``block_layout``) and, per block, the block-local ids
    of the features it holds."""

    y: np.ndarray
    sample_weight: np.ndarray
    weighted: bool
    X: object
    layout: tuple
    present: list


def make_shard(part, bounds):
    layout = block_layout(part.X, bounds)
    entry_ptr, features = layout[1], layout[3]
    present = [np.unique(features[entry_ptr[b]:entry_ptr[b + 1]]).astype(np.int64)
               for b in range(bounds.shape[0] - 1)]
    return Shard(part.y, part.sample_weight.astype(np.float64),
                 bool(np.any(part.sample_weight != 1)), part.X, layout, present)


def shard_present(shard):
    return shard.present


@dataclass
class SweepState:
    """A partition's residual ``e = y_hat - z``, targets ``z`` and factor sums ``q[f]``."""

    e: np.ndarray
    z: np.ndarray
    q: tuple


def sweep_start(shard, rows):
    """The scores and factor sums (n_factors, n_rows) on the partition of the model of
    ``rows`` (``_solver.model_rows``: the rows of the partition's features, or the model)."""
    model = whole_model(rows)
    X = shard.X
    n, k = X.shape[0], model.factors.shape[1]
    scores, q = np.empty(n), np.empty((k, n), dtype=model.dtype)
    with numba_threads(1):
        scores_and_sums(X.indptr, X.indices, X.data, model.intercept, model.coef,
                        model.factors, scores, q)
    return scores, q


def begin_sweep(shard, rows, loss):
    """Residuals and factor sums on the partition of the model of ``rows`` (see
    :func:`sweep_start`; probit: expected targets)."""
    scores, q = sweep_start(shard, rows)
    z = shard.y.astype(np.float64)
    if loss == "probit":
        z = np.empty(scores.shape[0])
        probit_targets(scores, shard.y.astype(np.float64), z, None)
    return SweepState((scores - z).astype(q.dtype), z, tuple(q))


def intercept_sums(shard, state):
    """``[sum s, sum s e]``: the intercept's statistics (``h = 1``)."""
    s = shard.sample_weight
    return np.array([s.sum(), np.dot(s, state.e.astype(np.float64))])


def shift(state, delta):
    """The state after the intercept moved by ``delta``."""
    return replace(state, e=state.e + delta)


def block_sums(shard, state, layer, b, old):
    """The block-local ids of the m features of block ``b`` the partition holds and their
    ``sum s h^2`` and ``sum s h e`` (shape (m, 2)), for layer ``layer`` (0: w, f + 1:
    V[:, f]) at values ``old``: a row set for ``_solver.add_rows``."""
    bounds, entry_ptr, rows, features, data = shard.layout
    nb = bounds[b + 1] - bounds[b]
    full_old = np.zeros(nb)
    full_old[shard.present[b]] = old
    sums = np.zeros((LANES, nb, 2))
    block_pass(entry_ptr[b], entry_ptr[b + 1], rows, features, data, state.e,
               None if layer == 0 else state.q[layer - 1], shard.sample_weight, shard.weighted,
               full_old, full_old, False, sums)
    return shard.present[b], sums.sum(axis=0)[shard.present[b]]


def spread(rows, n):
    """The statistics (1, n, m) of a block of ``n`` features from the partitions' summed row
    set ``rows = (ids, sums)``; zero where no partition holds the feature."""
    total = np.zeros((1, n, rows[1].shape[1]))
    total[0][rows[0]] = rows[1]
    return total


def block_apply(shard, state, layer, b, old, delta):
    """The state after the features of block ``b`` moved from ``old`` by ``delta``."""
    bounds, entry_ptr, rows, features, data = shard.layout
    nb = bounds[b + 1] - bounds[b]
    full_old, full_delta = np.zeros(nb), np.zeros(nb)
    full_old[shard.present[b]] = old
    full_delta[shard.present[b]] = delta
    e = state.e.copy()
    q_f = None if layer == 0 else state.q[layer - 1].copy()
    block_pass(entry_ptr[b], entry_ptr[b + 1], rows, features, data, e, q_f,
               shard.sample_weight, shard.weighted, full_old, full_delta, True,
               np.empty((LANES, 0, 2)))
    q = state.q if q_f is None else state.q[:layer - 1] + (q_f,) + state.q[layer:]
    return SweepState(e, state.z, q)


def sweep_loss(shard, state, loss):
    """The partition's summed weighted training loss at the end of a sweep."""
    scores = state.e.astype(np.float64) + state.z
    return float(np.dot(shard.sample_weight, pointwise_loss(loss, scores, shard.y)))


@dataclass
class DaskALS(DistributedSolver):
    """ALS sweeps over partitions on Dask workers; ``local`` is the in-memory ``ALSSolver``
    whose penalties and switches it uses.

    Per sweep: each partition gets the parameter rows of the features it holds (or, when
    those would outnumber the model's, the model once for all); per column block and layer, each
    partition sends two sums per feature it holds into a tree of sums on the workers
    (``_solver.tree_sum``) whose root the driver receives, and receives the old values and
    the changes of those features only.
    """

    _shards: tuple = None

    def shards(self, data):
        """Futures of the partitions' shards (on block bounds common to all), and the
        features each holds per block; built once per ``data``."""
        if self._shards is None or self._shards[0] is not data:
            client = data.client
            cuts = client.gather([client.submit(partition_bounds, p) for p in data.parts])
            bounds = np.unique(np.concatenate(cuts))
            shards = [client.submit(make_shard, p, bounds) for p in data.parts]
            present = client.gather([client.submit(shard_present, s) for s in shards])
            touched = [np.concatenate([bounds[b] + p[b] for b in range(len(p))] or
                                      [np.empty(0, np.int64)]) for p in present]
            self._shards = (data, (bounds, shards, present), touched)
        return self._shards[1]

    def touched(self, data):
        """The features each partition holds (global ids, ascending)."""
        self.shards(data)
        return self._shards[2]

    def run_epoch(self, model, data, state, rng):
        client, local = data.client, self.local
        shards = self.shards(data)[1]
        alpha = state.alpha
        groups = np.zeros(model.n_features, dtype=np.int64)
        rows = model_rows(client, model, self.touched(data))
        states = [client.submit(begin_sweep, s, r, local.loss) for s, r in zip(shards, rows)]
        if local.fit_intercept:
            sums = client.gather(tree_sum(client, [client.submit(intercept_sums, s, st)
                                                   for s, st in zip(shards, states)],
                                          operator.add, "fmlearn-als-intercept"))
            old = model.intercept
            model.intercept = posterior_value(old, sums[0], sums[1], alpha[0], 0.0,
                                              float(local.reg_intercept), False)
            states = [client.submit(shift, st, model.intercept - old) for st in states]
        states = self.update_layers(model, data, states, state, groups, False)
        return sum(client.gather([client.submit(sweep_loss, s, st, local.loss)
                                  for s, st in zip(shards, states)]))

    def update_layers(self, model, data, states, hyper, groups, sample, first=None):
        """Set (or, ``sample``, draw) the layers in the single-process order: w, then each
        column of V, block by block (a sampler draws each layer's group priors first);
        return the partitions' sweep states after them. ``first``: the summed statistics
        (1, n, 2) of the first block of the first layer, when the driver has them already."""
        client, local = data.client, self.local
        bounds, shards, present = self.shards(data)
        alpha, mu_w, lam_w, mu_v, lam_v = hyper.arrays()
        for layer in range(0 if local.fit_linear else 1, model.factors.shape[1] + 1):
            linear = layer == 0
            values = model.coef if linear else model.factors[:, layer - 1]
            mu = mu_w if linear else mu_v[:, layer - 1]
            lam = lam_w if linear else lam_v[:, layer - 1]
            if sample:
                draw_group_prior(values, groups, mu, lam)
            for b in range(bounds.shape[0] - 1):
                c0, c1 = bounds[b], bounds[b + 1]
                old = values[c0:c1].astype(np.float64)
                ids = [p[b] for p in present]
                total, first = first, None
                if total is None:
                    total = spread(client.gather(tree_sum(client, [
                        client.submit(block_sums, s, st, layer, b, old[i])
                        for s, st, i in zip(shards, states, ids)], add_rows,
                        f"fmlearn-als-block-{layer}-{b}")), c1 - c0)
                delta = np.empty(c1 - c0)
                draw_layer(values, c0, c1, total, old, delta, alpha[0], mu, lam, groups, sample)
                states = [client.submit(block_apply, s, st, layer, b, old[i], delta[i])
                          for s, st, i in zip(shards, states, ids)]
        return states
