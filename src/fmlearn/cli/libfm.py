"""libFM's command line for ``fmlearn train``: flags, values, the estimator, ``-meta``, ``-rlog``.

``fmlearn train`` accepts libFM's command line unchanged (libFM 1.4.4, ``libfm.cpp``)::

    fmlearn train -task r -train ml.train.libfm -test ml.test.libfm -dim '1,1,8' -iter 100 \\
        -method mcmc -init_stdev 0.1 -meta groups.txt -out pred.txt -seed 1

libFM spells long flags with one dash; click reads ``--name``. Before click parses the
``train`` arguments, :func:`translate_argv` rewrites each token ``-name`` (or
``-name=value``) whose ``name`` is one of :data:`LIBFM_FLAGS` to ``--name``; ``--name`` works
as well, and so do ``--init-stdev``, ``--learn-rate``, ``--save-model``.

How each flag maps (``FMRegressor`` for ``-task r``, ``FMClassifier`` for ``-task c``,
``FMOrdinalRegressor`` for ``-task o``):

=================  ==========================================================================
libFM flag         fmlearn
=================  ==========================================================================
-task r|c|o        regression | binary classification; targets ``<= 0`` are the class -1,
                   the others +1 (as libFM). SGD fits the logistic loss, ALS and MCMC the
                   probit link (as libFM). ``o`` (fmlearn's, not libFM's): ordinal regression
                   by ordered probit (myFM's), the targets' distinct values the ordered
                   classes, ``-method mcmc`` only; ``-out`` writes the expected value.
-train/-test       data files (libFM/libSVM text with 0-based indices, FFM text or RecordIO,
                   see ``--format``); the model is as wide as the widest file (and ``-meta``).
-validation        ``sgda``: the rows its penalties are learned on (``eval_set``, required);
                   other methods: scored every iteration (libFM ignores it there).
-dim 'k0,k1,k2'    ``fit_intercept=k0 != 0``, ``fit_linear=k1 != 0``, ``n_factors=k2``.
-method            ``sgd``, ``sgda``, ``als``, ``mcmc``, ``vb`` (variational Bayes, myFM's;
                   not in libFM) → ``solver``. ``sgda`` is SGD whose
                   penalties, one per ``-meta`` group for w and for each factor layer, are
                   learned on ``-validation`` (Rendle, WSDM 2012); ``-regular`` r1, r2 are
                   where they start (libFM starts them at 0, the default here too). It takes
                   libFM's sgda steps exactly; its learned penalties are libFM's for ``-task
                   r``, twice libFM's for ``-task c`` (see ``fmlearn.solvers.sgda``).
-iter              ``max_iter`` (``tol=None``: all iterations run, as in libFM).
-learn_rate        ``eta0`` with ``learning_rate="constant"`` (libFM's plain SGD; ``--schedule``
                   picks ``adagrad`` or ``invscaling``); ``-method sgda -task r``: ``eta0`` is
                   twice the rate, since libFM's sgda steps on ``(y_hat - y)^2``, twice the
                   estimators' squared loss. Three per-layer values are accepted only when
                   equal: the estimators have one learning rate.
-regular           one value or 'r0,r1,r2' → ``reg_intercept, reg_linear, reg_factors``
                   (default 0, as libFM). MCMC and VB: r0 is the prior precision of w0, r1 and r2
                   are ignored (libFM only starts its sampled precisions from them). libFM
                   MCMC's per-group form (1 + 2 × groups values) is not supported.
-init_stdev        ``init_std`` (default 0.1, as libFM).
-meta              the groups file, one group id per feature and line → ``feature_groups``
                   (MCMC's priors and SGDA's penalties; ignored with a note otherwise, as
                   libFM's SGD and ALS do).
-seed              ``random_state`` (libFM's default is the clock; here a fresh seed).
-out               test predictions, one per line; probabilities of the class +1 for ``-task c``.
-save_model        the model file written by :func:`fmlearn.save` (also MCMC models, which
                   libFM cannot save). Same as ``--model-out``.
-rlog              a tab-separated per-iteration log with a header line, written after
                   training: ``iter`` (from 1), ``loss_train`` and the ``rmse`` or ``logloss``
                   of the validation (else test) data; MCMC adds ``alpha`` (regression) and
                   ``wmu[g]``, ``wlambda[g]``, ``vmu[g,f]``, ``vlambda[g,f]`` as libFM
                   names them. libFM's time and ``*_mcmc_this`` columns are not written.
-verbosity         >= 1 also prints the data sizes and the estimator.
-relation R1,R2   libFM's block structure (BS) files of each relation (Rendle, VLDB 2013):
                   ``R.x`` or ``R.xt`` (libFM's binary format), ``R.train``, ``R.test``,
                   ``R.groups`` (:func:`fmlearn.io.load_libfm_relation`) → ``relations``;
                   the blocks' features follow the main table's, and for MCMC each
                   relation's groups follow the main table's (one group per relation without
                   ``R.groups``), as libFM numbers them. Not with ``-validation`` (libFM has
                   no block mapping for it).
-cache_size        ignored (libFM's binary data format is not read).
-load_model        not supported: fmlearn does not read libFM model files; a usage error
                   says so.
=================  ==========================================================================

MCMC predictions average all samples (``burn_in=0``), as libFM's ``-out`` does;
``--burn-in`` discards the first ones. SGD shuffles the rows (libFM asks the user to).

The defaults are libFM's, on purpose, so that a libFM command line gives libFM's model; they
differ from the estimators' (:data:`DEFAULTS`). ``--python-defaults`` takes the estimators'
for every flag not given:

=================  =====================  ==================================================
flag               libFM (the default)    ``--python-defaults`` (the Python API)
=================  =====================  ==================================================
-method            mcmc                   sgd (``solver``)
-init_stdev        0.1                    auto (``init_std``: 0.01 for sgd, 0.1 for
                                          als and mcmc)
-regular           0,0,0                  0,auto,auto (``reg_intercept, reg_linear,
                                          reg_factors``: per method)
--schedule         constant               adagrad (``learning_rate``)
--burn-in          0                      auto (``burn_in``: MCMC)
(-iter)            all iterations run     stops when the training loss improves by less
                   (``tol=None``)         than ``tol=1e-4`` for 5 iterations
=================  =====================  ==================================================

The others agree: ``-dim 1,1,8`` (``n_factors=8``), ``-iter 100`` (``max_iter``),
``-learn_rate 0.1`` (``eta0``).
"""
import difflib
import os

import click
import numpy as np

from ._common import CommandError, TrainSpec, file_error

#: libFM's flags, as ``libfm.cpp`` registers them.
LIBFM_FLAGS = ("task", "train", "test", "validation", "out", "dim", "regular", "init_stdev", "iter",
               "learn_rate", "method", "verbosity", "rlog", "seed", "meta", "save_model",
               "load_model", "relation", "cache_size", "help")
_SHORT = ("-h", "-q")  # fmlearn's own one-letter options of ``train``

#: Where ``fmlearn train``'s defaults (libFM's) differ from the estimators': flag (None: no
#: flag) → (the estimator parameters it sets, libFM's values, the Python API's values).
DEFAULTS = {
    "method": (("solver",), ("mcmc",), ("sgd",)),
    "init_stdev": (("init_std",), (0.1,), ("auto",)),
    "regular": (("reg_intercept", "reg_linear", "reg_factors"), (0.0, 0.0, 0.0),
                (0.0, "auto", "auto")),
    "schedule": (("learning_rate",), ("constant",), ("adagrad",)),
    "burn_in": (("burn_in",), (0,), ("auto",)),
    None: (("tol",), (None,), (1e-4,)),
}


def translate_argv(args):
    """Rewrite libFM's one-dash flags (``-task r``, ``-dim=1,1,8``) to click's ``--task``.

    Tokens after ``--`` are left alone. An unknown one-dash word (``-tsk``) is a usage
    error that suggests the nearest flag, rather than click's reading of it as ``-t -s -k``.

    Parameters
    ----------
    args : list of str
        The arguments of ``fmlearn train``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> translate_argv(["-task", "r", "-dim=1,1,8", "--iter", "5", "-q", "--", "-seed"])
    ['--task', 'r', '--dim=1,1,8', '--iter', '5', '-q', '--', '-seed']
    """
    out = []
    for i, token in enumerate(args):
        if token == "--":
            return out + list(args[i:])
        if token.startswith("-") and not token.startswith("--") and token not in _SHORT:
            name, eq, value = token[1:].partition("=")
            if name in LIBFM_FLAGS:
                token = f"--{name}{eq}{value}"
            elif name.isidentifier() and len(name) > 1:
                near = difflib.get_close_matches(name, LIBFM_FLAGS, n=3)
                raise click.NoSuchOption(token, possibilities=[f"-{n}" for n in near])
        out.append(token)
    return out


def parse_dim(text):
    """libFM's ``-dim 'k0,k1,k2'``: (use bias, use linear terms, number of factors).

    Examples
    --------
    >>> parse_dim("1,1,8")
    (True, True, 8)
    >>> parse_dim("1,1")
    Traceback (most recent call last):
    ...
    click.exceptions.BadParameter: '1,1' is not 'k0,k1,k2' (three integers, e.g. '1,1,8').
    """
    try:
        k0, k1, k2 = (int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not 'k0,k1,k2' (three integers, e.g. '1,1,8').",
                                 param_hint="'-dim'") from None
    if k2 < 0:
        raise click.BadParameter(f"the number of factors k2 must be >= 0; got {k2}.",
                                 param_hint="'-dim'")
    return k0 != 0, k1 != 0, k2


def parse_floats(text, flag, sizes=(1, 3)):
    """Comma-separated numbers of ``-regular`` or ``-learn_rate``; their count must be in ``sizes``.

    Examples
    --------
    >>> parse_floats("0,0,0.01", "-regular")
    [0.0, 0.0, 0.01]
    """
    try:
        values = [float(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        values = None
    if values is None or len(values) not in sizes or not all(np.isfinite(values)):
        raise click.BadParameter(f"{text!r} is not one number or three comma-separated numbers.",
                                 param_hint=f"'{flag}'")
    return values


def estimator_spec(task, *, method="mcmc", dim="1,1,8", regular=None, learn_rate="0.1",
                   init_stdev=0.1, n_iter=100, seed=None, burn_in=0, schedule="constant",
                   has_validation=False):
    """The estimator libFM's flags ask for, as a :class:`~fmlearn.cli._common.TrainSpec`.

    Parameters
    ----------
    task : {"r", "c", "o"}
        Regression, binary classification, or ordinal regression (ordered probit,
        :class:`~fmlearn.FMOrdinalRegressor`, by MCMC only).
    method : {"mcmc", "als", "sgd", "sgda", "vb"}, default="mcmc"
    dim, regular, learn_rate : str
        libFM's ``-dim``, ``-regular`` (None: 0) and ``-learn_rate`` values.
    init_stdev : float, default=0.1
    n_iter : int, default=100
    seed : int or None
    burn_in : int or "auto", default=0
        MCMC samples discarded from the average (libFM averages them all).
    schedule : {"constant", "adagrad", "invscaling"}, default="constant"
    has_validation : bool
        Whether ``-validation`` was given (``sgda`` needs it).

    Returns
    -------
    TrainSpec

    Raises
    ------
    click.BadParameter, click.UsageError
        For values fmlearn cannot honour, saying why.

    Examples
    --------
    >>> spec = estimator_spec("r", method="als", dim="1,1,4", regular="0,1,10", seed=3)
    >>> spec.estimator()
    FMRegressor(init_std=0.1, n_factors=4, random_state=3, reg_factors=10.0,
                reg_linear=1.0, solver='als', tol=None)
    >>> estimator_spec("c", method="sgd", dim="0,1,8").estimator()
    FMClassifier(fit_intercept=False, init_std=0.1, learning_rate='constant',
                 reg_factors=0.0, reg_linear=0.0, tol=None)
    """
    if task == "o" and method != "mcmc":
        raise click.UsageError(f"-task o (ordinal regression) learns by -method mcmc; got "
                               f"-method {method}.")
    bias, linear, k = parse_dim(dim)
    reg = [0.0, 0.0, 0.0] if regular is None else parse_floats(regular, "-regular")
    reg = reg * 3 if len(reg) == 1 else reg
    rates = parse_floats(learn_rate, "-learn_rate")
    if len(set(rates)) > 1:
        raise click.BadParameter(f"per-layer learning rates {learn_rate!r} are not supported: "
                                 "fmlearn's SGD has one learning rate for all terms; give one "
                                 "value.", param_hint="'-learn_rate'")
    solver = method
    params = {"n_factors": k, "solver": solver, "max_iter": n_iter, "tol": None,
              "reg_intercept": reg[0], "reg_linear": reg[1], "reg_factors": reg[2],
              "fit_intercept": bias, "fit_linear": linear, "init_std": init_stdev,
              "random_state": seed}
    if solver in ("sgd", "sgda"):  # ALS and MCMC have no learning rate (nor does libFM's)
        # libFM's sgda steps on (y_hat - y)^2, twice the squared loss of SGD (and of libFM's sgd)
        eta0 = 2 * rates[0] if solver == "sgda" and task == "r" else rates[0]
        params.update(learning_rate=schedule, eta0=eta0)
    notes = []
    if solver == "mcmc":
        params["burn_in"] = burn_in
    if solver in ("mcmc", "vb") and (reg[1] or reg[2]):
        notes.append(f"-method {solver} learns the precisions of w and V: -regular r1, r2 are "
                     "ignored (r0 is the prior precision of w0)")
    if task == "o":
        if reg[0]:
            notes.append("-task o: the intercept's prior is not set by -regular r0")
        params = {name: params[name] for name in ("n_factors", "max_iter", "fit_intercept",
                                                 "fit_linear", "init_std", "random_state",
                                                 "burn_in")}
    if method == "sgda" and not has_validation:
        raise click.UsageError("-method sgda needs -validation: it learns the regularisation "
                               "on those rows.")
    kind = {"r": "regression", "c": "classification", "o": "ordinal"}[task]
    return TrainSpec(task=kind, params=params, negative_label=-1.0, notes=notes)


def read_groups(path):
    """libFM's ``-meta`` file: the group id of feature 0, 1, ... one per line.

    Blank lines and ``#`` comments are skipped; ids are non-negative integers.

    Raises
    ------
    CommandError
        Exit 2 when the file cannot be read.
    DataFormatError
        Naming the line of a token that is not a non-negative integer.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "groups.txt"
    >>> _ = path.write_text("0\\n0\\n1\\n")
    >>> read_groups(path)
    array([0, 0, 1])
    """
    from ..io.errors import DataFormatError

    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise file_error(path, exc) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not a text file ({exc.reason})") from exc
    groups = []
    for number, line in enumerate(lines, 1):
        for token in line.split("#", 1)[0].split():
            if not token.isdigit():
                raise DataFormatError(path, f"the group id {token!r} is not a non-negative "
                                      "integer (one group id per feature and line)", line=number)
            groups.append(int(token))
    if not groups:
        raise DataFormatError(os.fspath(path), "the groups file holds no group ids")
    return np.array(groups, dtype=np.int64)


def rlog_table(estimator, eval_name=None):
    """The per-iteration log of a fitted estimator as column names and rows (see ``-rlog``).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> reg = FMRegressor(n_factors=1, solver="mcmc", max_iter=2, random_state=0)
    >>> header, rows = rlog_table(reg.fit(np.eye(3), [1.0, 2.0, 3.0]))
    >>> header
    ['iter', 'loss_train', 'alpha', 'wmu[0]', 'wlambda[0]', 'vmu[0,0]', 'vlambda[0,0]']
    >>> len(rows)
    2
    """
    columns = {"iter": np.arange(1, len(estimator.loss_curve_) + 1),
               "loss_train": np.asarray(estimator.loss_curve_)}
    if estimator.validation_scores_ is not None and eval_name is not None:
        measure = "logloss" if hasattr(estimator, "classes_") else "rmse"
        columns[measure] = -np.asarray(estimator.validation_scores_)
    if estimator.solver == "mcmc":
        trace = estimator.hyperparameter_trace_
        if not hasattr(estimator, "classes_"):
            columns["alpha"] = np.asarray(trace["alpha"])
        for g in range(trace["mu_w"].shape[1]):
            columns[f"wmu[{g}]"] = trace["mu_w"][:, g]
            columns[f"wlambda[{g}]"] = trace["lam_w"][:, g]
        for g in range(trace["mu_v"].shape[1]):
            for f in range(trace["mu_v"].shape[2]):
                columns[f"vmu[{g},{f}]"] = trace["mu_v"][:, g, f]
                columns[f"vlambda[{g},{f}]"] = trace["lam_v"][:, g, f]
    rows = list(zip(*(np.asarray(c).tolist() for c in columns.values())))
    return list(columns), rows


def write_rlog(path, estimator, eval_name=None):
    """Write :func:`rlog_table` as tab-separated text with a header line (R's ``read.table``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> reg = FMRegressor(n_factors=1, solver="als", max_iter=2, random_state=0)
    >>> reg = reg.fit(np.eye(3), [1.0, 2.0, 3.0], eval_set=(np.eye(3), [1.0, 2.0, 3.0]))
    >>> path = Path(tempfile.mkdtemp()) / "rlog.tsv"
    >>> write_rlog(path, reg, "test")
    >>> path.read_text().splitlines()[0].split("\\t")
    ['iter', 'loss_train', 'rmse']
    """
    header, rows = rlog_table(estimator, eval_name)
    lines = ["\t".join(header)] + ["\t".join(f"{v:.10g}" for v in row) for row in rows]
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError as exc:
        raise file_error(path, exc, "write") from exc


def read_relations(text, n_rows, main_groups):
    """The relations of ``-relation R1,R2``: ``{"train": [RelationBlock, ...], "test": [...]}``
    for the data sets of ``n_rows`` (name → rows), and the groups of all features, the
    main table's ``main_groups`` (one per main feature) first, then each relation's numbered
    after the groups before it, as libFM joins its meta data.

    Examples
    --------
    >>> import struct, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "user")
    >>> body = struct.pack("<IIQII", 2, 4, 1, 1, 3) + struct.pack("<IIf", 1, 2, 1.0)
    >>> _ = open(prefix + ".x", "wb").write(body)
    >>> _ = open(prefix + ".train", "w").write("0\\n0\\n")
    >>> _ = open(prefix + ".test", "w").write("0\\n")
    >>> relations, groups = read_relations(prefix, {"train": 2, "test": 1}, np.zeros(2, int))
    >>> relations["train"][0].indices.tolist(), groups.tolist()
    ([0, 0], [0, 0, 1, 1, 1])
    """
    from ..io.errors import DataFormatError
    from ..io.libfm_relation import load_libfm_relation
    from ..relations import RelationBlock

    relations = {name: [] for name in n_rows}
    groups = [main_groups]
    for prefix in (p for p in text.replace(" ", "").split(",") if p):
        relation = load_libfm_relation(prefix)
        for name, rows in n_rows.items():
            index = getattr(relation, name)
            if index.shape[0] != rows:
                raise DataFormatError(f"{prefix}.{name}", f"{index.shape[0]} block rows for the "
                                      f"{rows} rows of -{name}: one per row")
            relations[name].append(RelationBlock(index, relation.X))
        own = (np.zeros(relation.X.shape[1], dtype=np.int64) if relation.groups is None
               else relation.groups)
        groups.append(own + (max(g.max(initial=-1) for g in groups) + 1))
    return relations, np.concatenate(groups)


def unsupported(flag, why):
    """The usage error (exit 2) for a libFM flag fmlearn does not honour.

    Examples
    --------
    >>> err = unsupported("-load_model", "libFM model files are not read.")
    >>> str(err), err.exit_code
    ('-load_model is not supported: libFM model files are not read.', 2)
    """
    return CommandError(f"{flag} is not supported: {why}", exit_code=2)


def python_defaults(spec, given):
    """``spec`` with the estimators' defaults for the flags not ``given`` (``--python-defaults``).

    The parameters that :data:`DEFAULTS` lists for those flags are left out of
    ``spec.params``, so the estimator's own defaults apply; ``tol``, which no flag sets,
    always is. ``-method``, when not given, must already be ``sgd`` in ``spec``.

    Parameters
    ----------
    spec : TrainSpec
        From :func:`estimator_spec`.
    given : set of str
        The flags on the command line, without dashes (``"init_stdev"``).

    Returns
    -------
    TrainSpec

    Examples
    --------
    >>> spec = python_defaults(estimator_spec("r", method="sgd", init_stdev=0.5), {"init_stdev"})
    >>> spec.estimator()
    FMRegressor(init_std=0.5)
    """
    unset = {key for flag, (keys, _, _) in DEFAULTS.items() if flag not in given for key in keys}
    spec.params = {key: value for key, value in spec.params.items() if key not in unset}
    return spec
