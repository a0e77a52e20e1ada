"""MCMC on Dask: the single-process Gibbs chain, its draws made on the driver from statistics
summed over the workers' partitions.

A sweep follows ``MCMCSolver.sweep``: the driver seeds numba's generator from the estimator's
random generator as one process does, then (probit) gathers each row's label times its score,
``PROBIT_CHUNK_ROWS`` rows at a time, and draws the latent targets in row order with the same
kernel (the driver holds at most that many rows); the workers send ``sum s``, ``sum s e``
and ``sum s e^2`` and the driver draws the noise precision and w0; then layer by layer it
draws the group priors (the parameters are on the driver) and, block by block, each feature
from the summed ``sum s h^2`` and ``sum s h e`` of distributed ALS (``_als``). Every draw
comes from the same generator in the same order as in one process, from statistics that
differ only in the order of their floating-point additions, so for the same seed and data
the chain is the single-process chain to round-off.

Rounds (a gather waiting for every partition; the partitions' sums are added pairwise on the
workers, so the driver receives one): one per column block and layer, as in ALS.
The sweep's opening sums come with its first block's (the intercept's change ``delta``
moves that block's ``sum s h e`` by ``delta * sum s h``, so the partitions send ``sum s h``
too), and the round of the training loss also starts the next sweep from the new draw
(probit: its first group of signed scores; else its opening sums). Probit adds a round per
further group and the one that sends the latent targets; the sweep cannot go block by block
through all layers at once without changing the chain (each block's sums read the residual
after every earlier update).

The training loss is of the prediction averaged over the kept samples, as in one process:
each partition keeps the sum of the kept samples' linked scores (``fmlearn.model.apply_link``),
updated by the sample added and the one dropped. Those sums depend only on the partition and
the samples' parameters, so Dask can recompute them after a lost worker.
"""
from dataclasses import dataclass, replace

import numpy as np

from .._threads import numba_threads
from .._validation import with_fm_indices
from ..kernels.coordinate import noise_precision, posterior_value, probit_targets, seed_generator
from ..model import add_linked, apply_link, inverse_link, remove_linked
from ..solvers.als import pointwise_loss
from ._als import DaskALS, SweepState, block_sums, shift, spread, sweep_loss, sweep_start
from ._solver import add_rows, model_rows, share, tree_sum, whole_model


# Probit: the most rows of signed scores the driver holds at once (see DaskMCMC.latent_states).
PROBIT_CHUNK_ROWS = 2**20


def signed_scores(shard, start, a, b):
    """``y * score`` of the partition's rows ``a:b`` (labels in {-1, +1}): what the driver
    draws probit's latent targets from."""
    return shard.y[a:b].astype(np.float64) * start[0][a:b]


def drawn_targets(shard, start, *drawn):
    """The sweep state for the latent targets ``y * t`` of the partition's rows, ``t`` the
    draws sent for its pieces in row order (each ``(t,)``)."""
    t = np.concatenate([d[0] for d in drawn]) if drawn else np.empty(0)
    return targeted(shard, start, shard.y.astype(np.float64) * t)


def probit_pieces(lengths, chunk):
    """Row pieces ``(partition, a, b)`` in row order, in groups of ``chunk`` rows (the last
    one fewer): what each of the driver's gathers holds.

    Examples
    --------
    >>> probit_pieces([3, 5, 2], 4)
    [[(0, 0, 3), (1, 0, 1)], [(1, 1, 5)], [(2, 0, 2)]]
    """
    groups, room = [[]], chunk
    for p, n in enumerate(lengths):
        a = 0
        while a < n:
            if room == 0:
                groups.append([])
                room = chunk
            b = min(n, a + room)
            groups[-1].append((p, a, b))
            room -= b - a
            a = b
    return [g for g in groups if g]


def targeted(shard, start, z):
    """The sweep state for targets ``z`` (None: the partition's own ``y``)."""
    scores, q = start
    z = shard.y.astype(np.float64) if z is None else z
    return SweepState((scores - z).astype(q.dtype), z, tuple(q))


def residual_sums(shard, state):
    """``[sum s, sum s e, sum s e^2]``: the noise precision's and the intercept's statistics."""
    s, e = shard.sample_weight, state.e.astype(np.float64)
    return np.array([s.sum(), np.dot(s, e), np.dot(s, e * e)])


def opening_sums(shard, state, layer, old):
    """What a sweep's first round sends: ``residual_sums`` and, for the features of the
    first block of the first layer the partition holds (at values ``old``), ``sum s h^2``,
    ``sum s h e`` and ``sum s h`` (which moves ``sum s h e`` by the intercept's change),
    with their block-local ids (none for a model without layers to sample, ``layer`` None):
    ``(residual_sums, ids, sums)``, added up by :func:`add_opening`."""
    if layer is None:
        return residual_sums(shard, state), np.empty(0, np.int64), np.empty((0, 3))
    ones = replace(state, e=np.ones_like(state.e))
    ids, block = block_sums(shard, state, layer, 0, old)
    return residual_sums(shard, state), ids, np.column_stack([block, block_sums(
        shard, ones, layer, 0, old)[1][:, 1]])


def add_opening(a, b):
    """The sum of two partitions' ``opening_sums`` (a tree's combination)."""
    return (a[0] + b[0],) + add_rows(a[1:], b[1:])


@dataclass
class Average:
    """A partition's sum of the kept samples' linked scores, and the rows whose sum lost its
    digits when a sample was removed (to be summed again from all samples)."""

    total: np.ndarray
    lost: np.ndarray


def _linked(sample, X, target_range, link):
    with numba_threads(1):
        return apply_link(sample.predict_csr(X, 1, check=False), link, target_range)


def _linked_sum(samples, X, target_range, link):
    total = None
    for sample in samples:
        total = add_linked(total, _linked(whole_model(sample), X, target_range, link), link)
    return total


def rebuild_average(shard, samples, target_range, link):
    """The ``Average`` of ``samples`` (``_solver.model_rows``'s entries for the partition)
    from scratch."""
    return Average(_linked_sum(samples, shard.X, target_range, link), np.empty(0, np.int64))


def update_average(shard, average, added, dropped, target_range, link):
    """``average`` with the sample whose ``sweep_start`` is ``added`` and without the
    sample of ``dropped`` (``_solver.model_rows``'s entry for the partition, or None)."""
    total = add_linked(average.total, apply_link(added[0], link, target_range), link)
    lost = np.empty(0, dtype=np.int64)
    if dropped is not None:
        total, gone = remove_linked(total, _linked(whole_model(dropped), shard.X, target_range,
                                                   link), link)
        lost = np.flatnonzero(np.atleast_2d(gone).any(axis=0))
    return Average(total, lost)


def refresh_average(shard, average, samples, target_range, link):
    """``average`` with its lost rows summed again over ``samples``."""
    total = average.total.copy()
    total[..., average.lost] = _linked_sum(samples, with_fm_indices(shard.X[average.lost]),
                                           target_range, link)
    return Average(total, np.empty(0, dtype=np.int64))


def average_loss(shard, average, n_samples, loss, link):
    """The summed weighted loss of the prediction averaged over ``n_samples`` kept samples,
    and the number of rows to sum again (``Average.lost``)."""
    decision = inverse_link(average.total, n_samples, link)
    return (float(np.dot(shard.sample_weight, pointwise_loss(loss, decision, shard.y))),
            average.lost.shape[0])


@dataclass
class DaskMCMC(DaskALS):
    """Gibbs sweeps over partitions on Dask workers, in ``(n_factors + 1) * n_blocks``
    rounds (probit: one more; the first sweep of a fit: one more to start); ``local`` is the
    in-memory ``MCMCSolver`` whose switches, burn-in and kept samples it uses, and which
    keeps the samples (``MCMCSolver.keep``) and scores the validation rows."""

    _average: tuple = None
    _ahead: tuple = None

    def latent_states(self, data, starts, pieces, first, seed):
        """Futures of the partitions' sweep states for probit's latent targets, drawn on the
        driver in row order with the single-process kernel and its first tries (numpy's
        generator seeded by ``seed``): group by group of ``pieces`` (futures of
        ``signed_scores``; ``first``: the first group's, gathered), at most
        ``PROBIT_CHUNK_ROWS`` rows held at once, each piece's draws sent to its partition."""
        client = data.client
        shards = self.shards(data)[1]
        drawn = [[] for _ in shards]
        first_tries = np.random.default_rng(seed)
        for g, group in enumerate(pieces):
            values = first if g == 0 else client.gather([f for _, f in group])
            for (p, _), m in zip(group, values):
                t = np.empty(m.shape[0])
                # y * z = t > 0
                probit_targets(m, np.ones(m.shape[0]), t, first_tries.standard_normal(m.shape[0]))
                drawn[p].append(share(client, t))
        return [client.submit(drawn_targets, s, st, *d) for s, st, d in zip(shards, starts, drawn)]

    def samples_rows(self, data, samples):
        """Per partition, the rows of its features of each of ``samples``
        (``_solver.model_rows``)."""
        rows = [model_rows(data.client, m, self.touched(data)) for m in samples]
        return [list(r) for r in zip(*rows)]

    def opening(self, model, data, states):
        """A list of one future: ``opening_sums`` of each partition, added up on the
        workers."""
        client = data.client
        bounds, shards, present = self.shards(data)
        layer = 0 if self.local.fit_linear else 1
        if layer > model.factors.shape[1]:  # nothing but the intercept
            sums = [client.submit(opening_sums, s, st, None, None)
                    for s, st in zip(shards, states)]
        else:
            old = (model.coef if layer == 0 else model.factors[:, 0])[:bounds[1]]
            sums = [client.submit(opening_sums, s, st, layer, old[p[0]].astype(np.float64))
                    for s, st, p in zip(shards, states, present)]
        return [tree_sum(client, sums, add_opening, "fmlearn-mcmc-opening")]

    def look_ahead(self, model, data):
        """Futures of a sweep's start from ``model`` on each partition, of its states (the
        targets ``y``; None for probit), of what the first round sends (probit, the first
        group of signed scores, else ``opening_sums``) and, probit, of the groups of pieces
        of signed scores (:func:`probit_pieces`; None otherwise)."""
        client = data.client
        shards = self.shards(data)[1]
        rows = model_rows(client, model, self.touched(data))
        starts = [client.submit(sweep_start, s, r) for s, r in zip(shards, rows)]
        if self.local.loss == "probit":
            lengths = [summary["n_rows"] for summary in data.summaries]
            pieces = [[(p, client.submit(signed_scores, shards[p], starts[p], a, b))
                       for p, a, b in group]
                      for group in probit_pieces(lengths, PROBIT_CHUNK_ROWS)]
            return starts, None, [f for _, f in pieces[0]] if pieces else [], pieces
        states = [client.submit(targeted, s, st, None) for s, st in zip(shards, starts)]
        return starts, states, self.opening(model, data, states), None

    def run_epoch(self, model, data, state, rng):
        client, local = data.client, self.local
        bounds, shards, _ = self.shards(data)
        alpha = state.hyper.alpha
        seed = int(rng.integers(2**31))
        seed_generator(seed)
        ahead = self._ahead
        if ahead is not None and ahead[0] is data and ahead[1] == state.n_iter:
            starts, states, sent, pieces = ahead[2:]
        else:
            starts, states, pending, pieces = self.look_ahead(model, data)
            sent = client.gather(pending)
        if local.loss == "probit":
            states = self.latent_states(data, starts, pieces, sent, seed)
            sent = client.gather(self.opening(model, data, states))
        (residual, *rows), = sent
        n, she, sse = residual
        first = spread(rows, bounds[1])
        if local.loss == "squared":
            alpha[0] = noise_precision(n, sse)
        if local.fit_intercept:
            old = model.intercept
            model.intercept = posterior_value(old, n, she, alpha[0], 0.0,
                                              float(local.reg_intercept), True)
            states = [client.submit(shift, st, model.intercept - old) for st in states]
            first[..., 1] += (model.intercept - old) * first[..., 2]
        first = np.ascontiguousarray(first[..., :2])
        states = self.update_layers(model, data, states, state.hyper, state.groups, True, first)
        loss = self.finish(model, data, states, state)
        local.keep(model, state)
        return loss

    def finish(self, model, data, states, state):
        """The summed weighted training loss of the prediction averaged over the samples kept
        after this draw (of the draw itself during burn-in), as ``MCMCSolver.epoch`` gives,
        gathered with the start of the next sweep."""
        client, local = data.client, self.local
        shards = self.shards(data)[1]
        starts, next_states, pending, pieces = self.look_ahead(model, data)
        link, bounds = local.link, local.target_range
        averages = None
        if state.n_iter + 1 <= local.burn_in:
            losses = [client.submit(sweep_loss, s, st, local.loss)
                      for s, st in zip(shards, states)]
        else:
            kept, dropped = state.samples + [model.copy()], None
            if local.n_kept_samples is not None and len(kept) > local.n_kept_samples:
                dropped, kept = kept[0], kept[1:]
            if self._average is not None and self._average[0] is data \
                    and self._average[1] == state.n_iter:
                gone = [None] * len(shards) if dropped is None else \
                    model_rows(client, dropped, self.touched(data))
                averages = [client.submit(update_average, s, a, st, g, bounds, link)
                            for s, a, st, g in zip(shards, self._average[2], starts, gone)]
            else:  # the first kept sample, or the samples of an earlier fit
                samples = self.samples_rows(data, kept)
                averages = [client.submit(rebuild_average, s, r, bounds, link)
                            for s, r in zip(shards, samples)]
            losses = [client.submit(average_loss, s, a, len(kept), local.loss, link)
                      for s, a in zip(shards, averages)]
        results = client.gather(losses + pending)
        results, sent = results[:len(shards)], results[len(shards):]
        if averages is not None and any(lost for _, lost in results):
            samples = self.samples_rows(data, kept)
            averages = [client.submit(refresh_average, s, a, r, bounds, link)
                        if lost else a for s, a, r, (_, lost) in zip(shards, averages, samples,
                                                                     results)]
            results = client.gather([client.submit(average_loss, s, a, len(kept), local.loss,
                                                   link) for s, a in zip(shards, averages)])
        if averages is not None:
            self._average = (data, state.n_iter + 1, averages)
            results = [loss for loss, _ in results]
        self._ahead = (data, state.n_iter + 1, starts, next_states, sent, pieces)
        return sum(results)
