"""The epoch loop of the FM estimators: one learner pass per epoch, then the finiteness
check, history, progress, early stopping and the convergence warning (lightfm's
``fit_partial`` -> ``_run_epoch`` shape: Python owns the loop, a kernel does each pass)."""
from __future__ import annotations

import copy
import sys
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer
from tqdm.auto import tqdm

from ._threads import within_n_jobs
from ._validation import with_fm_indices
from .kernels.rows import take_rows
from .solvers.sgd import row_order

if TYPE_CHECKING:
    from ._base import _Validation


def all_finite(*arrays):
    """Whether every value of ``arrays`` is finite, read without a temporary of their size:
    their float64 sums are finite exactly when they are (unless a value passes 1e300).

    Examples
    --------
    >>> all_finite(np.ones(3), np.array([1.0, np.nan]))
    False
    """
    return all(np.isfinite(np.sum(array, dtype=np.float64)) for array in arrays)


class EpochLoop:
    """The loop :class:`~fmlearn._base.BaseFM`'s ``fit`` and ``partial_fit`` run (a mixin of
    it: the methods read the estimator's parameters and solver, so ``self`` is typed ``Any``).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> reg = FMRegressor(n_factors=2, max_iter=3, tol=None, random_state=0)
    >>> len(reg.fit(np.eye(4), np.arange(4.0)).loss_curve_)  # one loss per epoch run
    3
    """

    def _score_validation(self: Any, solver: Any, model: Any, state: Any,
                          validation: _Validation) -> float:
        X_val, y_val, w_val = validation
        if not w_val.any():  # every validation row weighs 0: there is no score to report
            return float("nan")
        if self.scoring is None:
            scores = self._finish_scores(solver.decision(model, state, X_val, self.n_jobs))
            return self._validation_loss(scores, y_val, w_val)
        snapshot = copy.copy(self)
        snapshot.model_ = solver.result(model, state)
        return get_scorer(self.scoring)(snapshot, X_val, self._decode_y(y_val))

    @within_n_jobs
    def _run_epochs(self: Any, X: Any, y: Any, sample_weight: Any,
                    validation: _Validation | None, rng: np.random.Generator, n_epochs: int,
                    stop_early: bool, in_place: bool = False, solver: Any = None,
                    fresh: bool = False) -> None:
        """The epoch loop: one kernel pass per epoch, then checks, history and early stopping.

        ``solver`` replaces the learner of ``solver=`` (the Dask learners); with ``y`` None
        the rows are held by it (``X`` has ``shape`` and ``weight_sum``) and it visits them
        in its own order. ``sample_weight`` None weighs every row 1.

        A warm-started ``fit`` updates the parameters on a copy, committed to ``model_``
        only when the loop ends normally, so a diverging fit leaves the estimator as it
        was. A ``fresh`` fit (its model just initialised) and ``partial_fit``
        (``in_place``) update them where they are, as scikit-learn's SGD does: a copy of
        a large model would cost memory, and for ``partial_fit``, called once per chunk
        of a large file, more time than the chunk's epoch. If such a pass diverges, the
        estimator is reset to unfitted.

        A stochastic learner visits the rows in an order shuffled once per call, and may
        train with the features renumbered (``feature_order``), in a copy of the rows in
        that order and numbering; or, where the learner stages them (``stages``: a few
        blocks at a time copied in that numbering and shuffled, in a fresh order each
        epoch), without the copy. The validation rows are renumbered, and the learner's
        per-feature parameters in place before the first epoch and back after the last,
        however the loop ends.
        """
        stochastic = self.solver in ("sgd", "sgda", "adam", "ftrl")
        own = in_place or fresh
        state = self._solver_state if own else copy.deepcopy(self._solver_state)
        solver = self._solver(validation) if solver is None else solver
        model = solver.current(self.model_, state)
        if not own:
            model = model.copy()
        features = None if y is None else solver.feature_order(X, model, n_epochs)
        # (y None: the rows are the learner's, unshuffled and as numbered)
        shuffled = stochastic and self.shuffle and y is not None
        staged = y is not None and solver.stages(X, shuffled, features)
        if sample_weight is None and y is not None:  # every weight 1: no array of them staged
            sample_weight = (np.broadcast_to(np.ones(1, X.dtype), (X.shape[0],)) if staged
                             else np.ones(X.shape[0], X.dtype))
        if y is not None and not staged:
            # The order's draw comes after the renumbering's count, which then need not
            # hold both at once.
            order = row_order(X.shape[0], rng) if shuffled else None
            if order is not None:
                X = with_fm_indices(sp.csr_matrix(take_rows(X.indptr, X.indices, X.data,
                                                            order), shape=X.shape))
                y, sample_weight = y[order], sample_weight[order]
            if features is not None:
                X = features.relabel(X, in_place=order is not None)  # the shuffled copy is ours
        if features is not None:
            if validation is not None:
                validation = (features.relabel(validation[0]), *validation[1:])
            features.forward(solver.feature_arrays(model, state))
        weight_sum = (X.weight_sum if y is None
                      else float(sample_weight.sum(dtype=np.float64)))
        loss_curve, val_scores = [], []
        # What decides stopping (higher is better): the validation score with early stopping,
        # else the negative training loss when tol is set, else nothing.
        watch = (stop_early and self.solver != "mcmc"
                 and (self.early_stopping or self.tol is not None))
        best, best_model, no_improvement = -np.inf, None, 0
        # verbose=1: a progress bar; verbose>=2: one line per epoch (for logs, not terminals).
        bar = tqdm(range(n_epochs), desc=type(self).__name__, unit="epoch",
                   disable=self.verbose != 1 or n_epochs == 1)
        epoch = 0
        try:
            for epoch in bar:
                loss = solver.epoch(model, X, y, sample_weight, state,
                                    rng if self.shuffle or not stochastic else None)
                loss /= weight_sum
                if not (np.isfinite(loss) and all_finite(model.intercept, model.coef,
                                                         model.factors)):
                    # Every learner but the coordinate ones steps by eta0 (BPR's too).
                    raise self._overflow(epoch, self.solver not in ("als", "mcmc", "vb"), own,
                                         in_place)
                loss_curve.append(loss)
                postfix = {"loss": f"{loss:.5f}"}
                if validation is not None:
                    score = self._score_validation(solver, model, state, validation)
                    val_scores.append(score)
                    name, shown = self._shown_score(score)
                    postfix[name] = f"{shown:.5f}"
                bar.set_postfix(postfix)
                self._end_epoch(solver, model, state, loss_curve, val_scores)
                if self.verbose >= 2:
                    tqdm.write(f"{type(self).__name__} epoch {epoch + 1}: " + ", ".join(
                        f"{name} {value}" for name, value in postfix.items()), file=sys.stderr)
                if not watch:
                    continue
                criterion = (score if self.early_stopping else  # VB: ELBO per row
                             state.elbo[-1] / weight_sum if self.solver == "vb" else -loss)
                no_improvement = 0 if criterion > best + (self.tol or 0.0) else no_improvement + 1
                if criterion > best:
                    best = criterion
                    if self.early_stopping:
                        best_model = model.copy()
                if no_improvement >= self.n_iter_no_change:
                    break
        finally:
            if features is not None:  # back to the caller's numbering, whatever happened
                features.backward(solver.feature_arrays(model, state))
                if best_model is not None:
                    features.backward(solver.feature_arrays(best_model))
        bar.close()
        n_run = epoch + 1
        if watch and n_run == n_epochs and no_improvement < self.n_iter_no_change:
            warnings.warn(f"Maximum number of iterations ({n_epochs}) reached and the optimisation "
                          "has not converged; consider raising max_iter.", ConvergenceWarning)
        self.model_ = best_model if best_model is not None else solver.result(model, state)
        self._solver_state = state
        self.n_iter_ = n_run
        self.t_ += n_run * X.shape[0]
        self.loss_curve_ = loss_curve
        self.validation_scores_ = val_scores if validation is not None else None
        self.best_validation_score_ = max(val_scores) if val_scores else None

    def _overflow(self: Any, epoch: int, stochastic: bool, own: bool, in_place: bool) -> ValueError:
        """The error for parameters no longer finite after ``epoch`` (from 0), with a remedy;
        an estimator whose parameters were updated in place (``own``) is reset to unfitted."""
        rate = (f"lr_intercept, lr_linear or lr_factors (now {self.lr_intercept}, "
                f"{self.lr_linear}, {self.lr_factors})" if self.solver == "adam"
                else f"eta0 (now {self.eta0})")
        remedy = (f"Lower {rate}, scale the features (for example with "
                  "StandardScaler or MaxAbsScaler), raise the regularisation, or set "
                  "clip_gradient." if stochastic else
                  "Scale the features (for example with StandardScaler or MaxAbsScaler) "
                  "or raise the regularisation.")
        lost = ""
        if own:
            del self.model_, self._solver_state
        if in_place:
            lost = (" partial_fit updates the parameters in place, so the estimator "
                    "was reset to unfitted.")
        return ValueError(f"Floating-point overflow at epoch {epoch + 1}: the parameters "
                          f"are no longer finite.{lost} {remedy}")

    def _end_epoch(self: Any, solver: Any, model: Any, state: Any, loss_curve: list[float],
                   val_scores: list[float]) -> None:
        """Called after each epoch's checks and history (the Dask estimators checkpoint here)."""
