"""The fitted attributes the FM estimators read from their solver's state: MCMC's sampled
hyperparameters, VB's posterior variances, ELBO and predictive spread, SGDA's learned
penalties. Each exists for its solver only and says so otherwise."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils.validation import check_is_fitted

from ._validation import validate_fm_data
from .relations import RelationBlock, relational_rows
from .solvers.mcmc import TRACED

if TYPE_CHECKING:
    from ._typing import MatrixLike


class SolverStateViews:
    """Views of ``_solver_state`` for :class:`~fmlearn._base.BaseFM` (a mixin: it uses the
    estimator's ``solver``, ``model_``, ``_solver_state`` and ``_solver()``).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> reg = FMRegressor(solver="vb", n_factors=2, max_iter=5, random_state=0)
    >>> reg.fit(np.eye(4), np.arange(4.0)).coef_var_.shape
    (4,)
    """

    solver: str
    model_: Any
    _solver_state: Any
    if TYPE_CHECKING:
        def _solver(self, validation: Any = None) -> Any: ...  # BaseFM's

    @property
    def hyperparameter_trace_(self) -> dict[str, NDArray[Any]]:
        """``solver="mcmc"``: the sampled hyperparameters, one row per iteration.

        A dict of arrays: ``alpha`` (noise precision, regression only), ``mu_w`` and
        ``lam_w`` of shape (n_iter, n_groups), ``mu_v`` and ``lam_v`` of shape
        (n_iter, n_groups, n_factors).
        """
        check_is_fitted(self, "model_")
        if self.solver != "mcmc":
            raise AttributeError("hyperparameter_trace_ exists for solver='mcmc' only.")
        return {name: np.array(self._solver_state.trace[name]) for name in TRACED}

    def _vb_state(self, name: str) -> Any:
        """The variational posterior (``solver="vb"``); AttributeError naming ``name`` else."""
        check_is_fitted(self, "model_")
        if self.solver != "vb":
            raise AttributeError(f"{name} exists for solver='vb' only.")
        return self._solver_state

    @property
    def elbo_(self) -> NDArray[np.float64]:
        """``solver="vb"``: the evidence lower bound after each iteration (up to a
        constant), over all fits of a warm-started chain; it never decreases."""
        return np.array(self._vb_state("elbo_").elbo)

    @property
    def intercept_var_(self) -> float:
        """``solver="vb"``: the posterior variance of the bias (0 when not fitted)."""
        return float(self._vb_state("intercept_var_").intercept_var)

    @property
    def coef_var_(self) -> NDArray[np.float64]:
        """``solver="vb"``: the posterior variances of the linear weights, shape
        (n_features,); their means are ``coef_``."""
        return self._vb_state("coef_var_").coef_var

    @property
    def factors_var_(self) -> NDArray[np.float64]:
        """``solver="vb"``: the posterior variances of the factors, shape (n_features,
        n_factors); their means are ``factors_``."""
        return self._vb_state("factors_var_").factors_var

    def _predictive_std(self, X: MatrixLike, relations: list[RelationBlock] | None = None
                        ) -> NDArray[np.float64]:
        """``predict(X, return_std=True)``'s standard deviations: ``sqrt(Var_q[score] +
        E_q[1 / alpha])``, the variance of the target under the variational posterior
        (relational rows expanded, as VB trains on them)."""
        if self.solver != "vb":
            raise ValueError("return_std needs solver='vb', whose posterior has variances; "
                             f"this estimator has solver={self.solver!r}.")
        check_is_fitted(self, "model_")
        X = validate_fm_data(self, X, reset=False)
        if relations is not None:
            X = relational_rows(X, relations, X.dtype, self.model_.n_features).expand()
        solver, state = self._solver(), self._solver_state
        variance = solver.statistics(self.model_, state, X)[4] + solver.noise_variance(state)
        return np.sqrt(variance)

    @property
    def regularization_(self) -> dict[str, NDArray[Any]]:
        """``solver="sgda"``: the penalties learned so far, per feature group.

        A dict of arrays: ``reg_linear`` of shape (n_groups,) and ``reg_factors`` of
        shape (n_groups, n_factors), in the units of the ``reg_*`` parameters.
        """
        check_is_fitted(self, "model_")
        if self.solver != "sgda":
            raise AttributeError("regularization_ exists for solver='sgda' only.")
        state = self._solver_state
        return {"reg_linear": state.lam_w.copy(), "reg_factors": state.lam_v.copy()}
