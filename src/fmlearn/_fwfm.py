"""Field-weighted factorization machines (Pan et al., WWW 2018)."""
from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._classification import FMClassificationMixin
from ._ffm import BaseFFM, Fields
from ._regression import FMRegressionMixin
from .fwfm_model import FwFMModel
from .solvers.ftrl_fwfm import FwFMFTRLSolver
from .solvers.fwfm import FwFMSolver

if TYPE_CHECKING:
    from ._typing import FloatDType, RandomStateLike, Schedule, Scoring


class BaseFwFM(BaseFFM):
    """What the FwFM estimators share: the FFM's fields, normalisation and epoch loop, with
    the FwFM model and learner."""

    _parameter_constraints: dict = {
        **BaseFFM._parameter_constraints,
        "reg_field_weights": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, fields: Fields = None, n_factors: int = 8,
                 normalize: bool | Literal["auto"] = False, solver: Literal["sgd", "ftrl"] = "sgd",
                 max_iter: int = 100, tol: float | None = 1e-4,
                 learning_rate: Schedule = "adagrad", eta0: float = 0.2, power_t: float = 0.25,
                 reg_intercept: float = 0.0, reg_linear: float | Literal["auto"] = "auto",
                 reg_factors: float | Literal["auto"] = "auto", reg_field_weights: float = 1e-5,
                 fit_intercept: bool = True, fit_linear: bool = True,
                 init_std: float | Literal["auto"] = "auto",
                 clip_gradient: float | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 scoring: Scoring = None, shuffle: bool = True, warm_start: bool = False,
                 n_jobs: int | None = None, random_state: RandomStateLike = None,
                 verbose: int = 0, dtype: FloatDType = "float32", beta: float = 1.0,
                 l1_linear: float = 0.0, l1_factors: float = 0.0) -> None:
        super().__init__(
            fields=fields, n_factors=n_factors, normalize=normalize, solver=solver,
            max_iter=max_iter, tol=tol, learning_rate=learning_rate, eta0=eta0, power_t=power_t,
            reg_intercept=reg_intercept, reg_linear=reg_linear, reg_factors=reg_factors,
            fit_intercept=fit_intercept, fit_linear=fit_linear, init_std=init_std,
            clip_gradient=clip_gradient, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            scoring=scoring, shuffle=shuffle, warm_start=warm_start, n_jobs=n_jobs,
            random_state=random_state, verbose=verbose, dtype=dtype, beta=beta,
            l1_linear=l1_linear, l1_factors=l1_factors)
        self.reg_field_weights = reg_field_weights

    _model_class = FwFMModel

    def _sgd_learner(self) -> type:
        return FwFMSolver

    def _ftrl_learner(self) -> type:
        return FwFMFTRLSolver

    def _solver(self, validation: Any = None) -> Any:
        solver = super()._solver(validation)
        solver.reg_field_weights = self.reg_field_weights
        return solver

    @property
    def factors_(self) -> NDArray[np.floating[Any]]:
        """The latent vectors, one per feature: shape (n_features, n_factors)."""
        check_is_fitted(self, "model_")
        return self.model_.factors

    @property
    def field_weights_(self) -> NDArray[np.floating[Any]]:
        """The symmetric weights of the pairs of fields: shape (n_fields, n_fields)."""
        check_is_fitted(self, "model_")
        return self.model_.field_weights


_PARAMETERS = """\
    Parameters
    ----------
    fields : array-like of int of shape (n_features,) or (n_features, 2), "auto", \
mapping or callable, default=None
        The field of each column of ``X``, as in :class:`FFMClassifier`. None puts every
        feature in one field: an FM with one learned scale of its pairs.
    n_factors : int, default=8
        Length k of each feature's latent vector.
    normalize : bool or "auto", default=False
        Scale every row to unit L2 norm, as in :class:`FFMClassifier`; ``"auto"`` fits
        both and keeps the better on the validation data (``normalize_``).
    solver : {"sgd", "ftrl"}, default="sgd"
        ``"sgd"``: per-row steps of every parameter a row touches (``learning_rate``,
        ``eta0``). ``"ftrl"``: per-row FTRL-Proximal (McMahan et al., KDD 2013) on every
        coordinate, the field weights included, with ``eta0`` as its ``alpha``,
        ``beta``, ``l1_linear``/``l1_factors`` as its L1 and ``reg_*`` as its L2 strengths,
        as in :class:`FFMClassifier`.
    max_iter, tol, early_stopping, validation_fraction, n_iter_no_change, scoring, \
shuffle, warm_start, n_jobs, random_state, verbose, dtype, clip_gradient, power_t, \
fit_intercept, fit_linear, learning_rate, eta0, init_std, beta, l1_linear, l1_factors
        As in :class:`FFMClassifier`: AdaGrad from ``eta0=0.2`` by default, ``n_jobs``
        threads updating the shared parameters without locks.
    reg_intercept, reg_linear, reg_factors : float or "auto", default=0, "auto", "auto"
        L2 penalties. SGD applies them to the parameters each row touches (``"auto"``:
        2e-5); FTRL adds them once to a coordinate's summed loss (``"auto"``: 1e-3 and
        0.1), as in :class:`FFMClassifier`.
    reg_field_weights : float, default=1e-5
        L2 penalty of the field weights, pulling them towards 0 (DeepCTR's FwFM default
        strength ``l2_reg_field_strength``): SGD applies it to the weights each row
        uses, FTRL once to each weight's summed loss (no L1: they are few).
"""

_ATTRIBUTES = """\
    model_ : FwFMModel
        The learned parameters.
    intercept_, coef_, n_iter_, t_, loss_curve_, validation_scores_, \
best_validation_score_, n_features_in_, feature_names_in_, fields_, field_names_, \
feature_ids_, normalize_
        As in :class:`FFMClassifier`.
    factors_ : ndarray of shape (n_features, n_factors)
        The latent vectors.
    field_weights_ : ndarray of shape (n_fields, n_fields)
        The symmetric weight r of each pair of fields.
"""

_MODEL = """\
    Predicts ``w0 + sum_i w_i x_i + sum_{{i<j}} r[f(i), f(j)] <v_i, v_j> x_i x_j``, where
    ``f(i)`` is the field of feature ``i``: the FM's single latent vector per feature,
    each pair weighed by a learned symmetric weight of its fields (same-field pairs by
    ``r[f, f]``), in O(k (nnz + F**2)) per row for F fields in the row. On click data it
    comes close to the FFM with about 1/n_fields of its parameters (Pan et al., WWW
    2018). The weights start at 1, so an untrained FwFM is an FM; DeepCTR and FuxiCTR
    start them near 0 (a truncated normal; PyTorch's linear-layer default), where the
    factors' first gradients through the pairs are near 0 as well. These
    are classes of their own, not an option of the FM estimators, since they need fields
    and learn r, and the FM's ALS and MCMC learners do not apply to them.
"""


class FwFMRegressor(FMRegressionMixin, BaseFwFM):
    __doc__ = f"""Field-weighted factorization machine regressor.

{_MODEL}
    Fits the squared loss by SGD (AdaGrad by default).

{_PARAMETERS}    clip_predictions : bool, default=True
        As in :class:`FMRegressor`.

    Attributes
    ----------
{_ATTRIBUTES}    target_range_ : tuple of float
        Smallest and largest training target.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FwFMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = np.eye(4)[rng.integers(0, 4, 300)]; X = np.hstack([X, np.eye(3)[rng.integers(0, 3, 300)]])
    >>> y = X[:, :4] @ rng.normal(size=4) * (X[:, 4:] @ rng.normal(size=3))
    >>> reg = FwFMRegressor(fields=[0, 0, 0, 0, 1, 1, 1], n_factors=2, random_state=0).fit(X, y)
    >>> reg.factors_.shape, reg.field_weights_.shape
    ((7, 2), (2, 2))
    """

    _parameter_constraints: dict = {**BaseFwFM._parameter_constraints,
                                    "clip_predictions": ["boolean"]}

    def __init__(self, *, fields: Fields = None, n_factors: int = 8,
                 normalize: bool | Literal["auto"] = False, solver: Literal["sgd", "ftrl"] = "sgd",
                 max_iter: int = 100, tol: float | None = 1e-4,
                 learning_rate: Schedule = "adagrad", eta0: float = 0.2, power_t: float = 0.25,
                 reg_intercept: float = 0.0, reg_linear: float | Literal["auto"] = "auto",
                 reg_factors: float | Literal["auto"] = "auto", reg_field_weights: float = 1e-5,
                 fit_intercept: bool = True, fit_linear: bool = True,
                 init_std: float | Literal["auto"] = "auto",
                 clip_gradient: float | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 scoring: Scoring = None, shuffle: bool = True, warm_start: bool = False,
                 n_jobs: int | None = None, random_state: RandomStateLike = None,
                 verbose: int = 0, dtype: FloatDType = "float32", beta: float = 1.0,
                 l1_linear: float = 0.0, l1_factors: float = 0.0,
                 clip_predictions: bool = True) -> None:
        super().__init__(
            fields=fields, n_factors=n_factors, normalize=normalize, solver=solver,
            max_iter=max_iter, tol=tol, learning_rate=learning_rate, eta0=eta0, power_t=power_t,
            reg_intercept=reg_intercept, reg_linear=reg_linear, reg_factors=reg_factors,
            reg_field_weights=reg_field_weights, fit_intercept=fit_intercept,
            fit_linear=fit_linear, init_std=init_std, clip_gradient=clip_gradient,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, scoring=scoring, shuffle=shuffle,
            warm_start=warm_start, n_jobs=n_jobs, random_state=random_state, verbose=verbose,
            dtype=dtype, beta=beta, l1_linear=l1_linear, l1_factors=l1_factors)
        self.clip_predictions = clip_predictions


class FwFMClassifier(FMClassificationMixin, BaseFwFM):
    __doc__ = f"""Field-weighted factorization machine classifier.

{_MODEL}
    The score is the log-odds of ``classes_[1]``; training minimises the logistic loss by
    SGD (AdaGrad by default).

{_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels.
{_ATTRIBUTES}
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FwFMClassifier
    >>> rng = np.random.default_rng(0)
    >>> users, ads = rng.integers(0, 5, 400), rng.integers(0, 4, 400)
    >>> X = np.hstack([np.eye(5)[users], np.eye(4)[ads]])
    >>> y = (users + ads) % 2
    >>> clf = FwFMClassifier(fields=[0] * 5 + [1] * 4, n_factors=4, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """
