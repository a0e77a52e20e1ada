"""What :mod:`fmlearn.persistence` checks before it builds an estimator from a model file.

A crafted file either loads into an estimator whose predictions and warm starts read only
what its arrays hold, or is refused with a message naming the member. The members are read
through :class:`~fmlearn._model_archive.Archive`, which checks their sizes first; then
:func:`check_estimator` checks every array against the header and against each other:
the shape each kernel indexes by, exactly the dtype it is compiled for, finite
parameters, ids within their range, MCMC sample counts, and the parameters that must
agree with the arrays (``n_factors``, ``order``, ``dtype``, ``solver``, ``classes_``).

It raises :class:`FileProblem`; :mod:`fmlearn.persistence` adds the file's path.
"""

import numpy as np
from sklearn.base import is_classifier, is_regressor

from ._array_checks import Checker, is_count, is_finite, is_real
from ._model_archive import FileProblem, Raw

# --- the model and the solver state --------------------------------------------------------------
_FM = ("n_features",)
_FACTORS = {"fm": ("n_features", "n_factors"), "fm_ordinal": ("n_features", "n_factors"), "hofm": ("order - 1", "n_features", "n_factors"),
            "ffm": ("n_features", "n_fields", "n_factors"), "fwfm": ("n_features", "n_factors"),
            "fm_multiclass": ("n_classes", "n_features", "n_factors")}
_FIELDS = {"fm": ("intercept", "coef", "factors"),
           "fm_ordinal": ("intercept", "coef", "factors", "cutpoints"), "hofm": ("intercept", "coef", "factors"),
           "ffm": ("intercept", "coef", "factors", "fields", "normalize"),
           "fwfm": ("intercept", "coef", "factors", "fields", "field_weights", "normalize",
                    "feature_ids"),
           "fm_multiclass": ("intercept", "coef", "factors"),
           "fm_samples": ("intercepts", "coefs", "factors_samples", "link", "bounds")}


def _is_bounds(value):
    """None or ``(low, high)``, finite, ``low <= high``: what a sample's score is clipped to."""
    return value is None or (isinstance(value, tuple) and len(value) == 2
                             and all(map(is_finite, value)) and value[0] <= value[1])


def _check_cutpoints(c, value, where, shape):
    """Cut-points of the ordered probit: float64, finite, strictly increasing along the last
    axis."""
    c.floats(value, where, shape, np.float64, "cut-points are float64")
    steps = np.argwhere(np.diff(value, axis=-1) <= 0)
    if steps.size:
        at = tuple(int(i) for i in steps[0])
        raise FileProblem(f"array {c.name_of(value)!r} is not increasing: entry {at} is "
                          f"{value[at].item()!r}, the next {value[at[:-1] + (at[-1] + 1,)].item()!r}")


def _check_point_model(c, value, kind, where, dtype):
    """A model of one parameter set (``fm``, ``hofm``, ``ffm``, ``fwfm``, ``fm_multiclass``);
    returns the shapes of its ``intercept``, ``coef``, ``factors`` (and ``field_weights``)
    for the solver state."""
    names = _FIELDS[kind]
    if kind == "ffm" and isinstance(value, Raw) and "feature_ids" in value.fields:
        names += ("feature_ids",)  # absent from files written before the (field, id) columns
    f = c.fields(value, kind, names, where)
    why = "the model's dtype"
    if kind == "fm_multiclass":
        intercept, coef = ("n_classes",), ("n_classes", "n_features")
        c.floats(f["intercept"], f"{where} field 'intercept'", intercept, dtype, why)
    else:
        intercept, coef = (1,), _FM
        c.real(f["intercept"], f"{where} field 'intercept'")
    c.floats(f["coef"], f"{where} field 'coef'", coef, dtype, why)
    c.floats(f["factors"], f"{where} field 'factors'", _FACTORS[kind], dtype, why)
    shapes = {"intercept": intercept, "coef": coef, "factors": _FACTORS[kind]}
    if kind == "fm_ordinal":
        _check_cutpoints(c, f["cutpoints"], f"{where} field 'cutpoints'", ("n_cutpoints",))
    if kind == "fwfm":
        shapes["field_weights"] = ("n_fields", "n_fields")
        weights = c.floats(f["field_weights"], f"{where} field 'field_weights'",
                           shapes["field_weights"], dtype, why)
        asymmetric = np.argwhere(weights != weights.T)
        if asymmetric.size:
            i, j = asymmetric[0].tolist()
            raise FileProblem(f"array {c.name_of(weights)!r} is not symmetric: [{i}, {j}] is "
                              f"{weights[i, j].item()!r}, [{j}, {i}] {weights[j, i].item()!r}")
    if kind in ("ffm", "fwfm"):
        c.ids(f["fields"], f"{where} field 'fields'", _FM, np.int32, "n_fields", "fields")
        c.scalar(f["normalize"], f"{where} field 'normalize'", lambda v: isinstance(v, bool),
                 "true or false")
        if f.get("feature_ids") is not None:
            c.array(f["feature_ids"], f"{where} field 'feature_ids'", _FM, np.int32,
                    "feature ids", (lambda a: a < 0, lambda a: "feature ids are >= 0"))
    return shapes


def _check_samples(c, f, names, where, dtype):
    """Stacked samples: ``names`` are the fields of their intercepts, weights and factors."""
    shapes = (("n_samples",), ("n_samples", "n_features"),
              ("n_samples", "n_features", "n_factors"))
    for name, shape, kind in zip(names, shapes, (np.float64, dtype, dtype)):
        c.floats(f[name], f"{where} field {name!r}", shape, kind,
                 "the samples' intercepts are float64" if kind is np.float64
                 else "the model's dtype")


def _check_sgd_state(c, value, shapes, where, dtype):
    """AdaGrad's sums of each of the model's arrays and the step count: an ``sgd_state``, or
    an ``fwfm_state`` for a model with field weights."""
    held = [of for of in ("intercept", "coef", "factors", "field_weights") if of in shapes]
    kind = "fwfm_state" if "field_weights" in shapes else "sgd_state"
    f = c.fields(value, kind, [f"acc_{of}" for of in held] + ["step"], where)
    for of in held:
        c.floats(f[f"acc_{of}"], f"{where} field 'acc_{of}'", shapes[of], dtype,
                 f"AdaGrad's sums of the model's {of}", low="positive")
    c.array(f["step"], f"{where} field 'step'", (1,), np.int64, "the step count",
            (lambda a: a < 0, lambda a: "the step count must be >= 0"))


def _check_adam_state(c, value, shapes, where, dtype):
    names = ("mean_intercept", "var_intercept", "mean_coef", "var_coef", "mean_factors",
             "var_factors", "step")
    f = c.fields(value, "adam_state", names, where)
    for name in names[:-1]:
        of = name.split("_")[1]
        c.floats(f[name], f"{where} field {name!r}", shapes[of], dtype,
                 f"Adam's moments of the model's {of}",
                 low="non-negative" if name.startswith("var") else None)
    c.array(f["step"], f"{where} field 'step'", (1,), np.int64, "the batch count",
            (lambda a: a < 0, lambda a: "the batch count must be >= 0"))


def _check_ftrl_state(c, value, shapes, where, dtype):
    """FTRL's ``(z, n)`` of each of the model's arrays: an ``ftrl_state``, or an
    ``fwfm_ftrl_state`` for a model with field weights."""
    held = [of for of in ("intercept", "coef", "factors", "field_weights") if of in shapes]
    kind = "fwfm_ftrl_state" if "field_weights" in shapes else "ftrl_state"
    names = [f"{z}_{of}" for of in held for z in ("z", "n")]
    f = c.fields(value, kind, names, where)
    for name in names:
        z, of = name.split("_", 1)
        c.floats(f[name], f"{where} field {name!r}", shapes[of], dtype,
                 f"FTRL's {'sums of squared gradients' if z == 'n' else 'z'} of the "
                 f"model's {of}", low="non-negative" if z == "n" else None)


def _check_hyper(c, value, where):
    names = ("alpha", "mu_w", "lam_w", "mu_v", "lam_v")
    f = c.fields(value, "hyperparameters", names, where)
    shapes = ((1,), ("n_groups",), ("n_groups",), ("n_groups", "n_factors"),
              ("n_groups", "n_factors"))
    lows = ("positive", None, "non-negative", None, "non-negative")
    for name, shape, low in zip(names, shapes, lows):
        c.floats(f[name], f"{where} field {name!r}", shape, np.float64, "priors are float64",
                 low=low)


def _check_groups(c, value, where):
    c.ids(value, where, _FM, np.int64, "n_groups", "feature groups")


def _check_sgda_state(c, value, shapes, where, dtype):
    names = ("sgd", "lam_w", "lam_v", "groups", "grad_coef", "grad_factors", "val_next",
             "n_epochs")
    f = c.fields(value, "sgda_state", names, where)
    _check_sgd_state(c, f["sgd"], shapes, f"{where} field 'sgd'", dtype)
    c.floats(f["lam_w"], f"{where} field 'lam_w'", ("n_groups",), np.float64,
             "penalties are float64", low="non-negative")
    c.floats(f["lam_v"], f"{where} field 'lam_v'", ("n_groups", "n_factors"), np.float64,
             "penalties are float64", low="non-negative")
    _check_groups(c, f["groups"], f"{where} field 'groups'")
    c.floats(f["grad_coef"], f"{where} field 'grad_coef'", shapes["coef"], dtype,
             "the model's dtype")
    c.floats(f["grad_factors"], f"{where} field 'grad_factors'", shapes["factors"], dtype,
             "the model's dtype")
    c.array(f["val_next"], f"{where} field 'val_next'", (1,), np.int64, "a row index",
            (lambda a: a < 0, lambda a: "a row index must be >= 0"))
    c.count(f["n_epochs"], f"{where} field 'n_epochs'")


_TRACE_SHAPES = {"alpha": ("n_iter",), "mu_w": ("n_iter", "n_groups"),
                 "lam_w": ("n_iter", "n_groups"), "mu_v": ("n_iter", "n_groups", "n_factors"),
                 "lam_v": ("n_iter", "n_groups", "n_factors")}


def _check_mcmc_state(c, value, n_samples, burn_in, where, dtype, point="fm"):
    names = ("hyper", "groups", "current", "n_iter", "samples", "trace")
    if isinstance(value, Raw) and "sums" in value.fields:
        names += ("sums",)  # absent from files written before the sums were carried
    f = c.fields(value, "mcmc_state", names, where)
    _check_hyper(c, f["hyper"], f"{where} field 'hyper'")
    _check_groups(c, f["groups"], f"{where} field 'groups'")
    n_iter = c.count(f["n_iter"], f"{where} field 'n_iter'")
    if n_iter < 1:
        raise FileProblem(f"{where} field 'n_iter' is 0; a fitted sampler has drawn at least once")
    _check_point_model(c, f["current"], point, f"{where} field 'current'", dtype)
    kept = f["samples"]
    n_kept = 0
    if kept is not None:
        # An ordinal sampler's samples hold their cut-points too.
        names = {"intercepts", "coefs", "factors"} | ({"cutpoints"} if point == "fm_ordinal"
                                                      else set())
        if not isinstance(kept, dict) or set(kept) != names:
            raise FileProblem(f"{where} field 'samples' is not the kept samples' "
                              f"{', '.join(sorted(names))}")
        c.dims.pop("n_samples")  # the kept samples are counted afresh
        _check_samples(c, kept, ("intercepts", "coefs", "factors"), f"{where} field 'samples'",
                       dtype)
        n_kept = c.dims["n_samples"]
        if point == "fm_ordinal":
            _check_cutpoints(c, kept["cutpoints"], f"{where} field 'samples' cutpoints",
                             ("n_samples", "n_cutpoints"))
    if n_kept > max(n_iter - burn_in, 0) or (n_kept or 1) != n_samples:
        raise FileProblem(f"{where} keeps {n_kept} samples after {n_iter} draws with a burn-in "
                          f"of {burn_in}, and the model averages {n_samples}; they disagree")
    trace = f["trace"]
    if not isinstance(trace, dict) or set(trace) != set(_TRACE_SHAPES):
        raise FileProblem(f"{where} field 'trace' does not trace {sorted(_TRACE_SHAPES)}")
    c.dims["n_iter"] = n_iter
    for name, shape in _TRACE_SHAPES.items():
        c.floats(trace[name], f"{where} trace {name!r}", shape, np.float64,
                 "traces are float64")
    sums = f.get("sums")
    if sums is not None:  # the next sweep's start; it is used only where fresh sums agree
        if not isinstance(sums, dict) or set(sums) != {"scores", "q"}:
            raise FileProblem(f"{where} field 'sums' is not the training rows' scores and q")
        c.floats(sums["scores"], f"{where} field 'sums' scores", ("n_rows",), np.float64,
                 "scores are float64")
        c.floats(sums["q"], f"{where} field 'sums' q", ("n_factors", "n_rows"), dtype,
                 "the model's dtype")


_VB_PRIORS = {"mu_w_var": ("n_groups",), "lam_w_rate": ("n_groups",),
              "mu_v_var": ("n_groups", "n_factors"), "lam_v_rate": ("n_groups", "n_factors")}


def _check_vb_state(c, value, where):
    """The variational posterior: priors, groups, variances >= 0, ``q(alpha)`` and the ELBO."""
    names = ("hyper", "groups", "intercept_var", "coef_var", "factors_var", "noise", *_VB_PRIORS,
             "elbo")
    f = c.fields(value, "vb_state", names, where)
    _check_hyper(c, f["hyper"], f"{where} field 'hyper'")
    _check_groups(c, f["groups"], f"{where} field 'groups'")
    c.scalar(f["intercept_var"], f"{where} field 'intercept_var'",
             lambda v: is_finite(v) and v >= 0, "a finite number >= 0")
    for name, shape in (("coef_var", _FM), ("factors_var", ("n_features", "n_factors"))):
        c.floats(f[name], f"{where} field {name!r}", shape, np.float64, "variances are float64",
                 low="non-negative")
    c.floats(f["noise"], f"{where} field 'noise'", (2,), np.float64,
             "q(alpha)'s shape and rate are float64", low="positive")
    for name, shape in _VB_PRIORS.items():
        c.floats(f[name], f"{where} field {name!r}", shape, np.float64, "priors are float64",
                 low="positive")
    elbo = f["elbo"]
    if not (isinstance(elbo, list) and elbo and all(map(is_finite, elbo))):
        raise FileProblem(f"{where} field 'elbo' is {elbo!r}; expected a list of finite numbers")


# --- the estimator -------------------------------------------------------------------------------
def _expected_kinds(estimator, n_classes):
    """The model kind and solver-state kind a fitted ``estimator`` holds."""
    solver = estimator.solver
    states = {"sgd": "sgd_state", "bpr": "sgd_state", "sgda": "sgda_state",
              "als": "hyperparameters", "mcmc": "mcmc_state", "adam": "adam_state",
              "ftrl": "ftrl_state", "vb": "vb_state"}
    if hasattr(estimator, "reg_field_weights"):  # the FwFM estimators
        return "fwfm", "fwfm_ftrl_state" if solver == "ftrl" else "fwfm_state"
    if not hasattr(estimator, "order"):  # the FFM estimators
        return "ffm", states[solver]
    if estimator._loss == "ordinal":  # FMOrdinalRegressor: samples with cut-points
        return "fm_ordinal_samples", states[solver]
    if estimator.order > 2 and solver != "sgd":
        raise FileProblem(f"order={estimator.order} models are learned by solver='sgd'; the "
                          f"parameters say solver={solver!r}")
    if n_classes > 2 and not estimator._multiclass():
        raise FileProblem(f"classes_ holds {n_classes} labels, but {type(estimator).__name__} "
                          f"with solver={solver!r}, order={estimator.order} learns two")
    if solver == "mcmc":
        return "fm_samples", states[solver]
    if n_classes > 2:
        return "fm_multiclass", states[solver]
    return ("hofm" if estimator.order > 2 else "fm"), states[solver]


def _check_classes(estimator, header):
    classes = header.get("classes_")
    if not is_classifier(estimator):
        if classes is not None:
            raise FileProblem(f"{type(estimator).__name__} has no classes_; the header lists "
                              f"{classes!r}")
        return 0
    if not isinstance(classes, list) or len(classes) < 2:
        raise FileProblem(f"classes_ is {classes!r}; a classifier has at least two labels")
    dtype = np.dtype(header.get("classes_dtype"))
    if dtype.kind not in "biufUO":
        raise FileProblem(f"classes_dtype {dtype.str} is not a label type")
    try:
        labels = np.array(classes, dtype=dtype)
        distinct = np.unique(labels)
    except (TypeError, ValueError) as exc:
        raise FileProblem(f"classes_ {classes!r} are not labels of {dtype.str} ({exc})") from exc
    if labels.ndim != 1 or distinct.shape != labels.shape:
        raise FileProblem(f"classes_ {classes!r} are not distinct labels")
    return len(classes)


def _check_header(estimator, header, c):
    """The header's scalars; returns the model dtype and the number of classes."""
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise FileProblem(f"invalid parameters: {exc}") from exc
    if estimator.n_jobs == 0:
        raise FileProblem("invalid parameters: n_jobs=0 has no meaning")
    n_features = c.scalar(header.get("n_features_in_"), "n_features_in_",
                          lambda v: is_count(v) and v >= 1, "an integer >= 1")
    names = header.get("feature_names_in_")
    if names is not None and not (isinstance(names, list) and len(names) == n_features
                                  and all(isinstance(n, str) for n in names)):
        raise FileProblem(f"feature_names_in_ is not a list of {n_features} names")
    c.count(header.get("n_iter_"), "n_iter_")
    if header.get("dtype") != estimator.dtype:
        raise FileProblem(f"the header's dtype is {header.get('dtype')!r} but the parameters say "
                          f"dtype={estimator.dtype!r}")
    c.dims.update({"n_features": n_features, "n_factors": estimator.n_factors})
    return np.dtype(estimator.dtype), _check_classes(estimator, header)


def _check_attributes(estimator, attributes, c):
    """The fitted attributes besides the model and the solver state."""
    for name in ("_solver_state", "_rng", "t_"):
        if name not in attributes:
            raise FileProblem(f"the fitted attribute {name} is missing; a warm start needs it")
    c.count(attributes["t_"], "t_")
    c.fields(attributes["_rng"], "generator", ("bit_generator",), "_rng")
    regressor = is_regressor(estimator)
    if regressor != ("target_range_" in attributes):
        raise FileProblem("target_range_ is " + ("missing; a regressor clips its predictions to "
                                                 "it" if regressor else "set on a non-regressor"))
    if regressor:
        c.scalar(attributes["target_range_"], "target_range_",
                 lambda v: v is not None and _is_bounds(v), "finite (low, high)")
    for name in ("loss_curve_", "validation_scores_"):
        curve = attributes.get(name)
        if curve is not None and not (isinstance(curve, list) and all(map(is_real, curve))):
            raise FileProblem(f"{name} is {curve!r}; expected a list of numbers")
    best = attributes.get("best_validation_score_")
    if best is not None and not is_real(best):
        raise FileProblem(f"best_validation_score_ is {best!r}; expected a number")
    if "n_retries_" in attributes:
        c.count(attributes["n_retries_"], "n_retries_")
    data = attributes.get("_training_data")
    if data is not None and not (
            isinstance(data, dict) and data.keys() == {"partition_rows", "n_features", "digest"}
            and isinstance(data["partition_rows"], list)
            and all(map(is_count, data["partition_rows"])) and is_count(data["n_features"])
            and isinstance(data["digest"], str)):
        raise FileProblem(f"_training_data is {data!r}; expected the partition_rows, "
                          "n_features and digest of a Dask fit's data")
    labels = attributes.get("_field_names", [])
    if not (isinstance(labels, list) and all(isinstance(v, (int, str)) for v in labels)
            and len(set(labels)) == len(labels)):
        raise FileProblem(f"_field_names is {labels!r}; expected distinct field labels")


def _bad_row_pointers(indptr):
    """Entries of a CSR's row pointers that fall, or a first one that is not 0."""
    bad = np.diff(indptr, prepend=0) < 0
    bad[:1] |= indptr[:1] != 0
    return bad


def _check_csr(c, value, where, rows, cols, dtype, interactions=False):
    """A ``csr`` of ``dims[rows] x dims[cols]``: row pointers from 0 to nnz, never falling,
    column ids inside, finite values of ``dtype`` (interactions: >= 0, ids rising within
    each row, which the negatives' binary search reads)."""
    f = c.fields(value, "csr", ("data", "indices", "indptr", "shape"), where)
    c.scalar(f["shape"], f"{where} field 'shape'", lambda v: v == [c.dims[rows], c.dims[cols]],
             f"[{rows}={c.dims[rows]}, {cols}={c.dims[cols]}]")
    indptr = c.array(f["indptr"], f"{where} field 'indptr'", (c.dims[rows] + 1,), np.int64,
                     "row pointers", (_bad_row_pointers,
                                      lambda a: "row pointers start at 0 and never fall"))
    c.dims[f"{where} nnz"] = int(indptr[-1])
    ids = c.ids(f["indices"], f"{where} field 'indices'", (f"{where} nnz",), np.int32, cols,
                "columns")
    c.floats(f["data"], f"{where} field 'data'", (f"{where} nnz",), dtype, "the model's dtype",
             low="non-negative" if interactions else None)
    if interactions:
        rising = np.diff(ids.astype(np.int64)) > 0
        starts = indptr[1:-1]
        rising[starts[(starts > 0) & (starts < ids.shape[0])] - 1] = True  # a row starts there
        if not rising.all():
            raise FileProblem(f"array {c.name_of(ids)!r} repeats or lowers a column within a "
                              f"row at index {int(np.argmin(rising)) + 1}")


def _check_recommender(estimator, header, model, attributes, c):
    """FMRecommender's file: the FM over [item columns | context columns | user columns], its
    AdaGrad state, and the feature rows, interactions and their context that recommend and
    fold_in read."""
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise FileProblem(f"invalid parameters: {exc}") from exc
    if header.get("dtype") != estimator.dtype:
        raise FileProblem(f"the header's dtype is {header.get('dtype')!r} but the parameters say "
                          f"dtype={estimator.dtype!r}")
    c.count(header.get("n_iter_"), "n_iter_")
    for name in ("n_users_", "n_items_", "n_item_columns_", "n_user_columns_"):
        c.dims[name] = c.scalar(attributes.get(name), name, lambda v: is_count(v) and v >= 1,
                                "an integer >= 1")
    c.scalar(header.get("n_features_in_"), "n_features_in_", lambda v: v == c.dims["n_items_"],
             f"n_items_={c.dims['n_items_']}")
    for side in ("user", "item"):
        if getattr(estimator, f"{side}_identity") and \
                c.dims[f"n_{side}_columns_"] < c.dims[f"n_{side}s_"]:
            raise FileProblem(f"n_{side}_columns_ is {c.dims[f'n_{side}_columns_']}, fewer than "
                              f"the {c.dims[f'n_{side}s_']} identity columns")
    c.dims["n_context_columns_"] = c.count(attributes.get("n_context_columns_", 0),
                                           "n_context_columns_")
    dtype = np.dtype(estimator.dtype)
    c.dims.update({"n_features": c.dims["n_item_columns_"] + c.dims["n_context_columns_"]
                   + c.dims["n_user_columns_"],
                   "n_factors": estimator.n_factors})
    if header.get("model_kind") != "fm":
        raise FileProblem(f"the header's model_kind {header.get('model_kind')!r} is not 'fm'")
    shapes = _check_point_model(c, model, "fm", "model", dtype)
    _check_sgd_state(c, attributes.get("_solver_state"), shapes, "_solver_state", dtype)
    c.fields(attributes.get("_rng"), "generator", ("bit_generator",), "_rng")
    for where, rows, cols in (("user_features_", "n_users_", "n_user_columns_"),
                              ("item_features_", "n_items_", "n_item_columns_"),
                              ("interactions_", "n_users_", "n_items_")):
        _check_csr(c, attributes.get(where), where, rows, cols, dtype,
                   interactions=where == "interactions_")
    if c.dims["n_context_columns_"]:
        _check_csr(c, attributes.get("context_"), "context_", "interactions_ nnz",
                   "n_context_columns_", dtype)
    elif attributes.get("context_") is not None:
        raise FileProblem("context_ is stored but n_context_columns_ is 0")
    for name in ("loss_curve_", "validation_scores_"):
        curve = attributes.get(name)
        if not (isinstance(curve, list) and all(map(is_real, curve))):
            raise FileProblem(f"{name} is {curve!r}; expected a list of numbers")


def check_estimator(estimator, header, model, attributes, name_of):
    """Refuse a model file whose arrays disagree with its header or with each other.

    Parameters
    ----------
    estimator : BaseFM
        The estimator built from the header's parameters, not yet fitted.
    header : dict
        The file's header.
    model : Raw
        The model as read (``header["model"]``).
    attributes : dict
        The other fitted attributes as read, by name.
    name_of : callable
        The member name of an array read from the file.

    Raises
    ------
    FileProblem
        Naming the member or header entry and what is wrong with it.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> header = {"n_features_in_": 2, "n_iter_": 1, "dtype": "float32", "model_kind": "fm"}
    >>> coef = np.zeros(3, np.float32)
    >>> model = Raw("fm", {"intercept": 0.0, "coef": coef, "factors": np.zeros((2, 8), np.float32)})
    >>> try:
    ...     check_estimator(FMRegressor(), header, model, {}, {id(coef): "model.coef"}.get)
    ... except FileProblem as problem:
    ...     print(problem)
    array 'model.coef' has shape [3]; expected [n_features=2]
    """
    c = Checker(lambda array: name_of(id(array)), {})
    if type(estimator).__name__ == "FMRecommender":
        return _check_recommender(estimator, header, model, attributes, c)
    dtype, n_classes = _check_header(estimator, header, c)
    widths = attributes.get("relation_widths_", [])  # relations' features follow X's
    if not (isinstance(widths, list) and all(map(is_count, widths))):
        raise FileProblem(f"relation_widths_ is {widths!r}; expected a list of block widths")
    c.dims["n_features"] += sum(widths)
    model_kind, state_kind = _expected_kinds(estimator, n_classes)
    if getattr(estimator, "order", 2) > 2:
        c.dims["order - 1"] = estimator.order - 1
    c.dims["n_classes"] = n_classes
    c.dims["n_cutpoints"] = n_classes - 1
    got = model.kind if isinstance(model, Raw) else type(model).__name__
    if got != model_kind:
        raise FileProblem(f"the model is a {got}; {type(estimator).__name__} with these "
                          f"parameters and classes holds a {model_kind}")
    if header.get("model_kind") != model_kind:
        raise FileProblem(f"the header's model_kind {header.get('model_kind')!r} is not the "
                          f"model's kind {model_kind!r}")
    if model_kind == "fm_samples":
        names = _FIELDS["fm_samples"]
        if "bounds" not in model.fields:  # written before the samples had clipping bounds
            names = names[:-1]
        f = c.fields(model, "fm_samples", names, "model")
        _check_samples(c, f, _FIELDS["fm_samples"][:3], "model", dtype)
        link = "probit" if n_classes else "identity"
        c.scalar(f["link"], "model field 'link'", lambda v: v == link, repr(link))
        c.scalar(f.get("bounds"), "model field 'bounds'", _is_bounds,
                 "null or [low, high] with finite low <= high")
    elif model_kind == "fm_ordinal_samples":
        f = c.fields(model, model_kind, ("samples", "cutpoints"), "model")
        where = "model field 'samples'"
        fm = c.fields(f["samples"], "fm_samples", _FIELDS["fm_samples"], where)
        _check_samples(c, fm, _FIELDS["fm_samples"][:3], where, dtype)
        c.scalar(fm["link"], f"{where} field 'link'", lambda v: v == "identity", "'identity'")
        c.scalar(fm["bounds"], f"{where} field 'bounds'", lambda v: v is None, "null")
        _check_cutpoints(c, f["cutpoints"], "model field 'cutpoints'",
                         ("n_samples", "n_cutpoints"))
    else:
        shapes = _check_point_model(c, model, model_kind, "model", dtype)
    _check_attributes(estimator, attributes, c)
    state, where = attributes["_solver_state"], "_solver_state"
    if state_kind in ("sgd_state", "fwfm_state"):
        _check_sgd_state(c, state, shapes, where, dtype)
    elif state_kind == "sgda_state":
        _check_sgda_state(c, state, shapes, where, dtype)
    elif state_kind == "adam_state":
        _check_adam_state(c, state, shapes, where, dtype)
    elif state_kind in ("ftrl_state", "fwfm_ftrl_state"):
        _check_ftrl_state(c, state, shapes, where, dtype)
    elif state_kind == "hyperparameters":
        _check_hyper(c, state, where)
    elif state_kind == "vb_state":
        _check_vb_state(c, state, where)
    else:
        burn_in = c.count(attributes.get("_burn_in"), "_burn_in")
        _check_mcmc_state(c, state, c.dims["n_samples"], burn_in, where, dtype,
                          "fm_ordinal" if model_kind == "fm_ordinal_samples" else "fm")
