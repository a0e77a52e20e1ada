"""Gibbs sampling of the Bayesian FM (Freudenthaler et al. 2011; Rendle, ACM TIST 2012, sec. 5)."""
from dataclasses import dataclass, field

import numpy as np

from .._validation import with_fm_indices
from ..model import FMSamples, add_linked, apply_link, inverse_link, log_phi, remove_linked
from ..relations import RelationalRows
from .als import ALSSolver, Hyperparameters, pointwise_loss

TRACED = ("alpha", "mu_w", "lam_w", "mu_v", "lam_v")
# Every REFRESH-th draw of a chain starts from scores and factor sums computed afresh; the
# others from those the last sweep left (bounding their rounding drift: a9a, k=8, 13 % of an
# iteration saved).
REFRESH = 16


@dataclass
class MCMCState:
    """What the sampler carries between iterations and fits.

    ``current`` is the latest draw, ``samples`` holds the kept draws (after ``burn_in``, at most ``n_kept_samples``,
    oldest dropped first); ``trace`` one entry per iteration for each hyperparameter; ``sums`` the training rows'
    scores and factor sums after the latest draw, kept for the next fit when the solver carries them.
    """

    hyper: Hyperparameters
    groups: np.ndarray
    current: object = None
    n_iter: int = 0
    samples: list = field(default_factory=list)
    trace: dict = field(default_factory=lambda: {name: [] for name in TRACED})
    sums: tuple | None = None


@dataclass
class MCMCSolver(ALSSolver):
    """Gibbs sampler over w0, w, V with Normal-Gamma hyperpriors per feature group.

    Each iteration draws the noise precision (regression), then w0, the hyperpriors
    and weights of the linear terms, then for each factor layer its hyperpriors and
    factors — the ALS sweep with every update drawn from its conditional instead of
    set to its mean. Classification draws truncated-normal latent targets of the
    probit link first. Predictions average over the kept samples
    (:class:`~fmlearn.model.FMSamples`); in regression each sample's scores are first
    clipped to ``target_range`` when given, as libFM clips every sample's prediction
    to ``[min_target, max_target]`` before adding it to the average.

    A sweep starts from the training scores and factor sums the previous one left, except
    at every ``REFRESH``-th draw of the chain, where they are computed afresh.
    ``carry_sums`` keeps them in the state for the next fit (``warm_start``), which
    continues from them when fresh ones agree (the same rows): the chain goes on exactly
    as within one fit.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(3)); y = np.arange(3.0)
    >>> model = FMModel.initial(3, 2, 0.1, np.float64, np.random.default_rng(0))
    >>> solver = MCMCSolver("squared", 0.0, 0.0, 0.0)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(3), state, np.random.default_rng(0))
    >>> len(state.samples), solver.result(model, state).n_samples
    (1, 1)
    """

    burn_in: int = 0
    n_kept_samples: int | None = None
    target_range: tuple | None = None
    carry_sums: bool = False
    sample = True
    _carried: tuple = field(default=None, init=False, repr=False)
    _sums: dict = field(default_factory=dict, init=False, repr=False)
    _change: tuple = field(default=(0, None, None), init=False, repr=False)

    @property
    def link(self):
        """How sample scores are averaged: probabilities for probit, else scores."""
        return "probit" if self.loss == "probit" else "identity"

    def initial_state(self, model, groups):
        """Zero means and unit precisions for each group (``groups``: ids 0..G-1, or None)."""
        n_features = model.coef.shape[0]
        groups = np.zeros(n_features, dtype=np.int64) if groups is None else groups
        n_groups = int(groups.max()) + 1 if n_features else 1
        return MCMCState(Hyperparameters.initial(n_groups, model.factors.shape[1], 1.0, 1.0),
                         groups)

    def current(self, fitted, state):
        """The latest draw (the initial model before the first iteration)."""
        return fitted if state.current is None else state.current

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Draw one sample into ``model``; return the summed weighted training loss of the
        prediction averaged over the kept samples."""
        sums = self._start_sums(model, X, state)
        scores, q = self.sweep(model, X, y, sample_weight, state.hyper, state.groups, rng, sums)
        self._carried = (X, scores, q)
        state.sums = (scores, q) if self.carry_sums else None
        self.keep(model, state)
        if self.link == "probit" and state.samples:
            # -log Phi(y s) of the averaged score s is -log of the label's mean tail: read
            # from the log-sum of that tail alone, with no way back to scores and forth.
            tail = self._running_sum(state, X, scores, y)
            # np.sum, not np.dot: BLAS's threads spin after a call, taking the cores the next
            # sweep needs (MovieLens u3 with relations: sweeps 35 -> 18 ms of CPU).
            return float(np.sum(sample_weight * (np.log(len(state.samples)) - tail)))
        decision = self._averaged(model, state, X, scores)
        return float(np.sum(sample_weight * pointwise_loss(self.loss, decision, y)))

    def _start_sums(self, model, X, state):
        """The training scores and factor sums the next sweep starts from: None (computed
        afresh) at every ``REFRESH``-th draw; else the last sweep's, in this fit or carried
        in ``state`` from the last one when fresh sums agree with them to 1e-3 (other rows
        give fresh ones)."""
        if state.n_iter % REFRESH == 0:
            return None
        if self._carried is not None and self._carried[0] is X:
            return self._carried[1:]
        if state.sums is None:
            return None
        fresh = self.training_sums(model, X)
        same = all(c.shape == f.shape and np.allclose(c, f, rtol=1e-3, atol=1e-3)
                   for c, f in zip(state.sums, fresh))
        return state.sums if same else fresh

    def keep(self, model, state):
        """Record the draw just made into ``model``: the iteration, the trace, and the kept
        samples (the draw added after ``burn_in``, the oldest dropped beyond
        ``n_kept_samples``)."""
        state.n_iter += 1
        state.current = model
        for name, value in zip(TRACED, state.hyper.arrays()):
            state.trace[name].append(value[0] if name == "alpha" else value.copy())
        added = dropped = None
        if state.n_iter > self.burn_in:
            added = model.copy()
            state.samples.append(added)
            if self.n_kept_samples is not None and len(state.samples) > self.n_kept_samples:
                dropped = state.samples.pop(0)
        self._change = (state.n_iter, added, dropped)

    def decision(self, model, state, X, n_jobs=None):
        """Scores of held-out rows averaged over the kept samples so far."""
        return self._averaged(model, state, X)

    def _averaged(self, model, state, X, fresh=None):
        """The running average for ``X`` (``fresh``: the scores of the last iteration's
        sample, when known); the current draw's scores before any sample is kept."""
        total = self._running_sum(state, X, fresh)
        if not state.samples:
            return fresh if fresh is not None else self._scores(model, X)
        return inverse_link(total, len(state.samples), self.link)

    def _running_sum(self, state, X, fresh=None, labels=None):
        """The linked sum of the kept samples' scores of ``X``, updated by the last
        iteration's added and dropped samples (``fresh``: the added sample's scores, when
        known); with ``labels`` (probit, -1 or 1 per row) only the labels' tails, all that
        the training loss reads."""
        n_iter, added, dropped = self._change
        key = (id(X), labels is not None)
        entry = self._sums.get(key)
        if entry is not None and entry[0] is X and entry[2] == n_iter - 1:
            total = entry[1]
            if added is not None:
                total = add_linked(total, self._linked(added, X, fresh, labels), self.link)
            if dropped is not None:
                total, lost = remove_linked(total, self._linked(dropped, X, None, labels),
                                            self.link)
                rows = np.flatnonzero(np.atleast_2d(lost).any(axis=0))
                if rows.size:  # sums the dropped sample dominated: added up again
                    subset = X[rows] if isinstance(X, RelationalRows) else with_fm_indices(X[rows])
                    total[..., rows] = self._linked_sum(
                        state.samples, subset, None if labels is None else labels[rows])
        else:
            total = self._linked_sum(state.samples, X, labels)
        self._sums[key] = (X, total, n_iter)
        return total

    def _linked(self, sample, X, scores=None, labels=None):
        """:func:`~fmlearn.model.apply_link` of the scores of ``sample`` (or ``scores``);
        with ``labels``, ``log Phi(label * score)``."""
        scores = self._scores(sample, X) if scores is None else scores
        if labels is not None:
            return log_phi(labels * scores)
        return apply_link(scores, self.link, self.target_range)

    def _linked_sum(self, samples, X, labels=None):
        total = None
        for sample in samples:
            total = add_linked(total, self._linked(sample, X, None, labels), self.link)
        return total

    def _scores(self, model, X):
        return model.predict_csr(X, self.n_threads, check=False)

    def result(self, model, state):
        """The kept samples, or the current draw while still in burn-in."""
        return FMSamples.stack(state.samples or [model.copy()], self.link, self.target_range)
