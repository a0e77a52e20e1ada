"""Field-aware factorization machines (Juan, Zhuang, Chin, Lin, RecSys 2016)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import BaseFM, with_solver_defaults
from ._classification import FMClassificationMixin
from ._regression import FMRegressionMixin
from ._validation import validate_fields
from .model import FFMModel
from .solvers.ffm import FFMSolver
from .solvers.ftrl_ffm import FFMFTRLSolver

if TYPE_CHECKING:
    from ._typing import FloatDType, RandomStateLike, Schedule, Scoring

Fields = Union[ArrayLike, str, Mapping[str, Any], Callable[[NDArray[Any]], Sequence[Any]], None]


def resolve_fields(fields: Fields, n_features: int,
                   feature_names: NDArray[Any] | None) -> tuple[NDArray[np.int32], list]:
    """The field code of every feature and the label of every code, from ``fields``.

    ``"auto"``, a mapping and a callable take the fields from ``feature_names`` (see
    ``fields`` in :class:`FFMClassifier`); their fields are numbered in the order of the
    first feature of each. An array or None goes through
    :func:`~fmlearn._validation.validate_fields`; of a vocabulary of shape
    (n_features, 2) (:func:`fmlearn.io.load_ffm`'s (field, feature id) per column),
    the fields are its first column.

    Examples
    --------
    >>> import numpy as np
    >>> names = np.array(["ids__user_1", "ids__user_2", "ids__item_a", "num__age"], dtype=object)
    >>> resolve_fields("auto", 4, names)
    (array([0, 0, 1, 2], dtype=int32), ['ids__user', 'ids__item', 'num__age'])
    >>> resolve_fields({"ids": "ids", "num__age": "age"}, 4, names)
    (array([0, 0, 0, 1], dtype=int32), ['ids', 'age'])
    >>> resolve_fields([5, 5, 2, 9], 4, None)
    (array([1, 1, 0, 2], dtype=int32), [2, 5, 9])
    >>> resolve_fields([[5, 0], [2, 1], [2, 2], [7, 0]], 4, None)
    (array([1, 0, 0, 2], dtype=int32), [2, 5, 7])
    """
    if fields is None or not (isinstance(fields, (str, Mapping)) or callable(fields)):
        ids = np.asarray(fields if fields is not None else np.zeros(n_features, np.int64))
        if ids.ndim == 2 and ids.shape[1] == 2:  # a vocabulary: (field, feature id) per column
            ids = ids[:, 0]
        codes = validate_fields(ids, n_features)
        known = np.unique(ids[ids >= 0]).tolist()
        return codes, known if known else [0]
    if feature_names is None:
        if not callable(fields):
            raise ValueError(f"fields={'a mapping' if isinstance(fields, Mapping) else repr(fields)} "
                             "takes the fields from the feature names, and X has none: pass a "
                             "pandas DataFrame (e.g. a ColumnTransformer's output after "
                             "set_output(transform='pandas')) or an array of field ids.")
        feature_names = np.array([f"x{j}" for j in range(n_features)], dtype=object)
    if isinstance(fields, str):
        labels = [_auto_field(str(name)) for name in feature_names]
    elif isinstance(fields, Mapping):
        labels = [_mapped_field(fields, str(name), j) for j, name in enumerate(feature_names)]
    else:
        labels = list(fields(feature_names))
        if len(labels) != n_features:
            raise ValueError(f"fields(feature_names) must give one field per feature: X has "
                             f"{n_features} features, it gave {len(labels)}.")
    numbers: dict[Any, int] = {}
    for j, label in enumerate(labels):
        if not isinstance(label, (str, int, np.integer)) or isinstance(label, bool):
            raise ValueError(f"the field of feature {feature_names[j]!r} (column {j}) is "
                             f"{label!r}; fields are strings or integers.")
        numbers.setdefault(label.item() if isinstance(label, np.integer) else label,
                           len(numbers))
    codes = np.array([numbers[label] for label in labels], dtype=np.int32)
    return codes, list(numbers)


def vocabulary_ids(fields: Fields) -> NDArray[np.int32] | None:
    """The feature id of each column if ``fields`` is a vocabulary of shape (n_features, 2).

    Examples
    --------
    >>> vocabulary_ids([[0, 7], [1, 7]])
    array([7, 7], dtype=int32)
    >>> vocabulary_ids([0, 1]) is None
    True
    """
    if fields is None or isinstance(fields, (str, Mapping)) or callable(fields) \
            or np.ndim(fields) != 2:
        return None
    ids = np.asarray(fields)[:, 1]
    bad = np.flatnonzero((ids < 0) | (ids > np.iinfo(np.int32).max))
    if bad.size:
        raise ValueError(f"fields: the feature ids (second column) must be 0 .. 2**31 - 1; "
                         f"column {bad[0]} has {ids[bad[0]]}.")
    return ids.astype(np.int32)


def _auto_field(name: str) -> str:
    """``fields="auto"``: the name up to its last ``_`` if its part after ``__`` has one."""
    return name.rsplit("_", 1)[0] if "_" in name.rpartition("__")[2] else name


def _mapped_field(mapping: Mapping[str, Any], name: str, column: int) -> Any:
    """The field of the longest key that is ``name`` or starts it followed by ``_``."""
    keys = [key for key in mapping if name == key or name.startswith(f"{key}_")]
    if not keys:
        raise ValueError(f"fields: no key of the mapping is feature {name!r} (column {column}) "
                         "or a prefix of it followed by '_'; add its input column, "
                         f"e.g. {_auto_field(name)!r}.")
    return mapping[max(keys, key=len)]


#: The ``"auto"`` values of the FFM estimators per solver: LIBFFM's for SGD; FTRL's L2 is
#: added once to a coordinate's summed loss, not at every row.
FFM_SOLVER_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"reg_linear": 2e-5, "reg_factors": 2e-5, "init_std": 0.1},
    "ftrl": {"reg_linear": 1e-3, "reg_factors": 0.1, "init_std": 0.1},
}


class BaseFFM(BaseFM):
    """What the FFM estimators share: the fields, the normalisation, the FFM model and learners
    (SGD and FTRL), so the epoch loop, early stopping, history and ``partial_fit`` are the FM's.
    """

    _solver_defaults = FFM_SOLVER_DEFAULTS
    _model_class: Any = FFMModel
    _parameter_constraints: dict = {
        **{name: rule for name, rule in with_solver_defaults(BaseFM._parameter_constraints).items()
           if name not in ("order", "burn_in", "n_kept_samples")},
        "solver": [StrOptions(set(FFM_SOLVER_DEFAULTS))],
        "fields": ["array-like", None, StrOptions({"auto"}), Mapping, callable],
        "normalize": ["boolean", StrOptions({"auto"})],
    }

    def __init__(self, *, fields: Fields = None, n_factors: int = 8,
                 normalize: bool | Literal["auto"] = False, solver: Literal["sgd", "ftrl"] = "sgd",
                 max_iter: int = 100, tol: float | None = 1e-4,
                 learning_rate: Schedule = "adagrad", eta0: float = 0.2, power_t: float = 0.25,
                 reg_intercept: float = 0.0, reg_linear: float | Literal["auto"] = "auto",
                 reg_factors: float | Literal["auto"] = "auto", fit_intercept: bool = True,
                 fit_linear: bool = True, init_std: float | Literal["auto"] = "auto",
                 clip_gradient: float | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 scoring: Scoring = None, shuffle: bool = True, warm_start: bool = False,
                 n_jobs: int | None = None, random_state: RandomStateLike = None,
                 verbose: int = 0, dtype: FloatDType = "float32", beta: float = 1.0,
                 l1_linear: float = 0.0, l1_factors: float = 0.0) -> None:
        self.fields = fields
        self.n_factors = n_factors
        self.normalize = normalize
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.reg_intercept = reg_intercept
        self.reg_linear = reg_linear
        self.reg_factors = reg_factors
        self.fit_intercept = fit_intercept
        self.fit_linear = fit_linear
        self.init_std = init_std
        self.clip_gradient = clip_gradient
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.scoring = scoring
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.beta = beta
        self.l1_linear = l1_linear
        self.l1_factors = l1_factors

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None,
            eval_set: tuple[Any, ...] | None = None, feature_groups: ArrayLike | None = None,
            relations: list[Any] | None = None) -> Any:
        """Fit as :meth:`FMRegressor.fit`; ``normalize="auto"`` fits twice and keeps the better.

        With ``normalize="auto"`` the model is fitted without and with the rows
        normalised, from the same start and on the same validation rows (``eval_set``,
        or the ``validation_fraction`` split of ``early_stopping``), and the fit with the
        better validation score (its best epoch's under ``early_stopping``, else its
        last) is kept: ``normalize_`` says which. A warm start continues the kept one.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FFMClassifier
        >>> rng = np.random.default_rng(0)
        >>> X = np.hstack([np.eye(6)[rng.integers(0, 6, 400)], np.eye(4)[rng.integers(0, 4, 400)]])
        >>> y = (X[:, :6].argmax(1) + X[:, 6:].argmax(1)) % 2
        >>> clf = FFMClassifier(fields=[0] * 6 + [1] * 4, normalize="auto", early_stopping=True,
        ...                     random_state=0).fit(X, y)
        >>> clf.normalize_ in (True, False)
        True
        """
        if self.normalize != "auto" or (self.warm_start and hasattr(self, "model_")):
            return super().fit(X, y, sample_weight, eval_set, feature_groups, relations)
        if eval_set is None and not self.early_stopping:
            raise ValueError("normalize='auto' chooses on validation data: pass eval_set or set "
                             "early_stopping=True, or give normalize=True or False.")
        seed = check_random_state(self.random_state).randint(2**31)  # one split, one start
        fits = [clone(self).set_params(normalize=choice, random_state=seed, verbose=0)
                .fit(X, y, sample_weight, eval_set, feature_groups, relations)
                for choice in (False, True)]
        scores = [est.best_validation_score_ if self.early_stopping else est.validation_scores_[-1]
                  for est in fits]
        best = fits[int(np.argmax(scores))]
        if self.verbose:
            print(f"normalize='auto': validation score {scores[0]:.6g} without, {scores[1]:.6g} "
                  f"with; keeping normalize={best.normalize}")
        parameters = self.get_params(deep=False)
        for name, value in vars(best).items():
            if name not in parameters:
                setattr(self, name, value)
        return self

    @property
    def normalize_(self) -> bool:
        """Whether the fitted model scales its rows to unit norm (what ``"auto"`` chose)."""
        check_is_fitted(self, "model_")
        return bool(self.model_.normalize)

    def _new_model(self, n_features: int, dtype: np.dtype[Any]) -> Any:
        if self.normalize == "auto":
            raise ValueError("normalize='auto' is chosen by fit on validation data; partial_fit "
                             "needs normalize=True or False.")
        fields, self._field_names = resolve_fields(
            self.fields, n_features, getattr(self, "feature_names_in_", None))
        return self._model_class.initial(fields, self.n_factors, self._resolved("init_std"),
                                         dtype, self._rng, self.normalize,
                                         vocabulary_ids(self.fields))

    def _sgd_learner(self) -> type:
        return FFMSolver

    def _ftrl_learner(self) -> type:
        return FFMFTRLSolver

    @property
    def fields_(self) -> NDArray[np.int32]:
        """The field of each feature as codes 0 .. n_fields - 1, shape (n_features,)."""
        check_is_fitted(self, "model_")
        return self.model_.fields

    @property
    def field_names_(self) -> NDArray[np.object_]:
        """The label of each field code: the ids of an array ``fields``, else the names."""
        check_is_fitted(self, "model_")
        names = getattr(self, "_field_names", range(self.model_.factors.shape[1]))
        return np.array(list(names), dtype=object)

    @property
    def feature_ids_(self) -> NDArray[np.int32] | None:
        """The file's feature id of each column when ``fields`` is a vocabulary, else None."""
        check_is_fitted(self, "model_")
        return self.model_.feature_ids

    @property
    def factors_(self) -> NDArray[np.floating[Any]]:
        """The latent vectors, one per (feature, field): shape (n_features, n_fields, n_factors)."""
        check_is_fitted(self, "model_")
        return self.model_.factors


_PARAMETERS = """\
    Parameters
    ----------
    fields : array-like of int of shape (n_features,) or (n_features, 2), "auto", \
mapping or callable, default=None
        The field of each column of ``X``. An array fixes them: from
        :func:`fmlearn.io.load_ffm` or :func:`fmlearn.preprocessing.column_fields`; any
        integer ids, numbered 0 .. n_fields - 1 in sorted order (``fields_``). A
        vocabulary of shape (n_features, 2), as :func:`~fmlearn.io.load_ffm` gives
        by default, is each column's (field id, feature id): its fields are the first
        column and its feature ids are kept (``feature_ids_``, and in model files).
        Each of its columns has parameters of its own, where LIBFFM shares one
        latent vector per feature id between the fields it occurs in. None
        puts every feature in one field, which makes the model an FM. The other forms
        are resolved at each ``fit`` from the feature names (``feature_names_in_``: a
        DataFrame's columns, e.g. a ``ColumnTransformer``'s output after
        ``set_output(transform="pandas")``), so the width may change between fits,
        as in a ``Pipeline``, ``cross_val_score`` or ``GridSearchCV``:

        - ``"auto"``: the field of a name is the name up to its last ``_`` when the
          part after its last ``__`` holds a ``_`` (``"ids__user_3"`` and
          ``"user_3"`` are in ``"ids__user"`` and ``"user"``: a ``OneHotEncoder``'s
          column and category), else the whole name (``"num__age"``). Where a
          category or a numeric column's name holds ``_``, give a mapping.
        - a mapping ``{column: field}``: a name's field is that of the longest key
          that is the name or starts it followed by ``_`` (``{"ids__user": 0}``
          takes ``"ids__user_3"``; a key ``"ids"`` takes a whole transformer's
          output); a name no key takes is an error.
        - a callable ``fields(feature_names) -> labels``: one string or integer
          label per name; without names it gets ``"x0"``, ``"x1"``, ...

        These fields are numbered in the order of their first column; their labels
        are ``field_names_``.
    n_factors : int, default=8
        Length k of each latent vector; every feature has one per field.
    normalize : bool or "auto", default=False
        Scale every row to unit L2 norm before training and prediction (LIBFFM's
        instance-wise normalisation, on there unless ``--no-norm``); the saved model
        keeps doing it. It pays where rows differ in length or scale (a varying number
        of tokens, counts, hashed rows with collisions): every row then weighs the
        same. On one-hot rows with one non-zero per field it only divides every
        pair's product by the number of fields, which acts as a smaller step and a
        stronger penalty, and it costs accuracy on frappe (test log-loss 0.155
        without, 0.197 with at k=8). ``"auto"`` fits both and keeps the one with the
        better validation score (see :meth:`fit`; twice the time); ``normalize_``
        says which.
    max_iter, tol, early_stopping, validation_fraction, n_iter_no_change, scoring, \
shuffle, warm_start, n_jobs, random_state, verbose, dtype, clip_gradient, power_t, \
fit_intercept, fit_linear
        As in :class:`FMRegressor`. ``n_jobs`` threads update the shared parameters
        without locks, as LIBFFM's OpenMP learner does.
    solver : {"sgd", "ftrl"}, default="sgd"
        The learner. ``"sgd"``: per-row steps of every pair's two latent vectors, as
        LIBFFM (``learning_rate``, ``eta0``, ``reg_*``). ``"ftrl"``: per-row
        FTRL-Proximal (McMahan et al., KDD 2013; xLearn's FFM with ``opt='ftrl'``) on
        every coordinate, a pair stepping its two vectors as SGD does, with ``eta0``
        as its ``alpha``, ``beta``, ``l1_linear``/``l1_factors`` as its L1 and
        ``reg_*`` as its L2 strengths; ``learning_rate`` and ``power_t`` are unused.
        FTRL wants a larger ``eta0`` than SGD: 0.5 on frappe.
    learning_rate : {"adagrad", "constant", "invscaling"}, default="adagrad"
        AdaGrad, as LIBFFM.
    eta0 : float, default=0.2
        Initial learning rate (LIBFFM's default); FTRL's ``alpha``.
    reg_intercept : float, default=0
        L2 penalty on the bias.
    reg_linear, reg_factors : float or "auto", default="auto"
        L2 penalties (LIBFFM's ``lambda`` is ``reg_factors``). SGD applies them to
        the parameters each row touches, a latent vector once per pair that uses it;
        ``"auto"`` (resolved in ``fit``) is LIBFFM's 2e-5 for both. FTRL adds them
        once to a coordinate's summed loss; ``"auto"`` is 1e-3 and 0.1.
    init_std : float or "auto", default="auto"
        Standard deviation of the normal distribution the latent vectors start from;
        ``"auto"`` is 0.1 for both solvers.
    beta, l1_linear, l1_factors : float, default=1.0, 0.0, 0.0
        FTRL: as in :class:`FMRegressor` (``l1_linear > 0`` gives exact zeros in
        ``coef_``).
"""

_ATTRIBUTES = """\
    model_ : FFMModel
        The learned parameters.
    intercept_, coef_, n_iter_, t_, loss_curve_, validation_scores_, \
best_validation_score_, n_features_in_, feature_names_in_
        As in :class:`FMRegressor`.
    factors_ : ndarray of shape (n_features, n_fields, n_factors)
        The latent vectors.
    fields_ : ndarray of int32 of shape (n_features,)
        The field code of each feature.
    feature_ids_ : ndarray of int32 of shape (n_features,) or None
        The file's feature id of each column, when ``fields`` is a vocabulary.
    field_names_ : ndarray of object of shape (n_fields,)
        The label of each field code: the resolved names, or the ids of an array.
    normalize_ : bool
        Whether the model normalises its rows (``normalize``, or what ``"auto"`` chose).
"""


class FFMRegressor(FMRegressionMixin, BaseFFM):
    __doc__ = f"""Field-aware factorization machine regressor.

    Predicts ``w0 + sum_i w_i x_i + sum_{{i<j}} <v_{{i,f(j)}}, v_{{j,f(i)}}> x_i x_j``, where
    ``f(i)`` is the field of feature ``i`` and each feature has a latent vector per
    field, and fits it to the squared loss by SGD (AdaGrad by default). Unlike
    LIBFFM, the model has a bias and linear terms. Costs O(k nnz**2) per row, so it
    suits rows with few non-zeros (one per field).

{_PARAMETERS}    clip_predictions : bool, default=True
        As in :class:`FMRegressor`.

    Attributes
    ----------
{_ATTRIBUTES}    target_range_ : tuple of float
        Smallest and largest training target.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FFMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = np.eye(4)[rng.integers(0, 4, 300)]; X = np.hstack([X, np.eye(3)[rng.integers(0, 3, 300)]])
    >>> y = X[:, :4] @ rng.normal(size=4) * (X[:, 4:] @ rng.normal(size=3))
    >>> reg = FFMRegressor(fields=[0, 0, 0, 0, 1, 1, 1], n_factors=2, random_state=0).fit(X, y)
    >>> reg.factors_.shape
    (7, 2, 2)
    """

    _parameter_constraints: dict = {**BaseFFM._parameter_constraints,
                                    "clip_predictions": ["boolean"]}

    def __init__(self, *, fields: Fields = None, n_factors: int = 8,
                 normalize: bool = False, solver: Literal["sgd", "ftrl"] = "sgd",
                 max_iter: int = 100, tol: float | None = 1e-4,
                 learning_rate: Schedule = "adagrad", eta0: float = 0.2, power_t: float = 0.25,
                 reg_intercept: float = 0.0, reg_linear: float | Literal["auto"] = "auto",
                 reg_factors: float | Literal["auto"] = "auto", fit_intercept: bool = True,
                 fit_linear: bool = True, init_std: float | Literal["auto"] = "auto",
                 clip_gradient: float | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 scoring: Scoring = None, shuffle: bool = True, warm_start: bool = False,
                 n_jobs: int | None = None, random_state: RandomStateLike = None,
                 verbose: int = 0, dtype: FloatDType = "float32", beta: float = 1.0,
                 l1_linear: float = 0.0, l1_factors: float = 0.0,
                 clip_predictions: bool = True) -> None:
        super().__init__(
            fields=fields, n_factors=n_factors, normalize=normalize, solver=solver,
            max_iter=max_iter, tol=tol,
            learning_rate=learning_rate, eta0=eta0, power_t=power_t, reg_intercept=reg_intercept,
            reg_linear=reg_linear, reg_factors=reg_factors, fit_intercept=fit_intercept,
            fit_linear=fit_linear, init_std=init_std, clip_gradient=clip_gradient,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, scoring=scoring, shuffle=shuffle,
            warm_start=warm_start, n_jobs=n_jobs, random_state=random_state, verbose=verbose,
            dtype=dtype, beta=beta, l1_linear=l1_linear, l1_factors=l1_factors)
        self.clip_predictions = clip_predictions


class FFMClassifier(FMClassificationMixin, BaseFFM):
    __doc__ = f"""Field-aware factorization machine classifier (LIBFFM's model, with bias and
    linear terms).

    The FFM score is the log-odds of ``classes_[1]``; training minimises the
    logistic loss by SGD (AdaGrad by default), as LIBFFM does.

{_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels.
{_ATTRIBUTES}
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FFMClassifier
    >>> rng = np.random.default_rng(0)
    >>> users, ads = rng.integers(0, 5, 400), rng.integers(0, 4, 400)
    >>> X = np.hstack([np.eye(5)[users], np.eye(4)[ads]])
    >>> y = (users + ads) % 2
    >>> clf = FFMClassifier(fields=[0] * 5 + [1] * 4, n_factors=4, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

