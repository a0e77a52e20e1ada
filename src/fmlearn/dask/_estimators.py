"""The FM estimators trained on a Dask cluster: ``DaskFMRegressor`` and ``DaskFMClassifier``."""
import copy
import dataclasses
import inspect
import os
from numbers import Integral

import dask.array as da
import dask.dataframe as dd
import distributed
import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._classification import FMClassifier
from .._regression import FMRegressor
from .._validation import validate_feature_groups, validate_fm_data
from ..persistence import load, save
from ._als import DaskALS
from ._data import PartitionedData, is_distributed
from ._mcmc import DaskMCMC
from ._sgd import DaskSGD

_CLUSTER_PARAMS = {"local_steps": "auto", "checkpoint": None, "max_retries": 3}
# (scheduler id, estimator kind, dtype) of the clusters whose workers have compiled the kind.
_WARM_CLUSTERS: set[tuple[str, str, str]] = set()
# Parameters a resumed fit may change: they do not shape the model or its training.
_RESUMABLE = {"max_iter", "verbose", "checkpoint", "max_retries", "warm_start", "n_jobs"}


def _with_cluster_params(cls):
    """Give ``cls`` its base's parameters and those of ``_CLUSTER_PARAMS`` (keyword only),
    so that ``get_params`` and ``clone`` see all of them, without restating the base's."""
    base_init = cls.__init__
    base_signature = inspect.signature(base_init)

    def __init__(self, **params):
        for name, default in _CLUSTER_PARAMS.items():
            setattr(self, name, params.pop(name, default))
        base_init(self, **params)

    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
             for name, default in _CLUSTER_PARAMS.items()]
    __init__.__signature__ = base_signature.replace(
        parameters=list(base_signature.parameters.values()) + extra)
    cls.__init__ = __init__
    return cls


def warm_workers(client, kind, dtype):
    """Compile the kernels of estimator ``kind`` (a key of :data:`fmlearn.warmup.KINDS`) in
    ``dtype`` on every worker of ``client``'s cluster at once, the first time a fit of that
    kind runs there; later fits on the cluster skip it. A worker then has them in memory and
    in numba's cache (shared by workers of one machine), so its tasks never compile
    mid-epoch.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster, \\
    ...         Client(cluster) as client:
    ...     warm_workers(client, "FMRegressor sgd", "float32")
    """
    from ..warmup import fit_kind

    key = (client.scheduler_info()["id"], kind, dtype)
    if key not in _WARM_CLUSTERS:
        client.run(fit_kind, kind, dtype, 1)
        _WARM_CLUSTERS.add(key)


def _describe(fingerprint):
    """The training data of a checkpoint, in words."""
    if fingerprint is None:
        return "not recorded"
    rows = fingerprint["partition_rows"]
    return (f"{len(rows)} partitions of {', '.join(map(str, rows))} rows, "
            f"{fingerprint['n_features']} features, digest {fingerprint['digest']}")


class _ClusterFit:
    """Training on a Dask cluster when ``fit`` gets a Dask collection or file shards."""

    _cluster_constraints = {
        "local_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "checkpoint": [str, os.PathLike, None],
        "max_retries": [Interval(Integral, 0, None, closed="left")],
    }

    def fit(self, X, y=None, sample_weight=None, eval_set=None, feature_groups=None, *,
            client=None, file_format="auto"):
        """Fit on the cluster (Dask array or DataFrame, or a list of file paths) or, for
        in-memory ``X``, in this process as the base estimator does.

        Parameters
        ----------
        X : dask.array.Array, dask.dataframe.DataFrame, list of paths, or in-memory data
            The training rows. A Dask collection is cut into its row chunks (partitions);
            file shards (libSVM/libFM, FFM or RecordIO, one partition each) are read by
            the workers, labels included.
        y : dask or in-memory array-like of shape (n_samples,), default=None
            Targets; None with file shards.
        sample_weight : dask or in-memory array-like of shape (n_samples,), default=None
            Row weights (not with file shards).
        eval_set : tuple (X_val, y_val) of in-memory data, default=None
            Validation rows, scored on the driver after each epoch.
        feature_groups : array-like, default=None
            The group of each feature, for ``solver="mcmc"`` (see the base estimator).
        client : distributed.Client, default=None
            The cluster; by default the current client (``distributed.default_client()``).
        file_format : {"auto", "libsvm", "ffm", "recordio"}, default="auto"
            The format of file shards.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if not is_distributed(X):
            return super().fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                               feature_groups=feature_groups)
        self._validate_params()
        name = type(self).__name__
        if self.solver not in ("sgd", "als", "mcmc") or self.order != 2:
            raise ValueError(f"{name} trains second-order models with solver='sgd', 'als' or "
                             f"'mcmc' on a cluster; got solver={self.solver!r}, "
                             f"order={self.order}.")
        if self.early_stopping and self.solver == "mcmc":
            raise ValueError("early_stopping is not available with solver='mcmc': every sample "
                             "counts towards the posterior average.")
        if self.early_stopping and eval_set is None:
            raise ValueError("early_stopping on a cluster needs eval_set: the rows are on the "
                             "workers, so no validation_fraction can be split off.")
        if client is None:
            try:
                client = distributed.default_client()
            except ValueError as exc:
                raise ValueError(f"{name}.fit on Dask input needs a distributed Client: pass "
                                 "client= or create one, e.g. Client(LocalCluster()).") from exc
        dtype = np.dtype(self.dtype)
        seed = (check_random_state(self.random_state).randint(2**31)
                if self.shuffle and self.solver == "sgd" else None)
        data = PartitionedData.build(client, X, y, sample_weight, dtype=dtype,
                                     file_format=file_format, seed=seed)
        if self.checkpoint is not None:  # what a checkpoint is resumed only on
            self._training_data = data.fingerprint()
        else:
            vars(self).pop("_training_data", None)
        done, history = self._resume()
        warm = done > 0 or (self.warm_start and hasattr(self, "model_"))
        if not warm:
            self._rng = np.random.default_rng(
                check_random_state(self.random_state).randint(2**31))
        n_features = data.n_features
        if warm:
            if n_features > self.n_features_in_:
                raise ValueError(f"X has {n_features} features, but {name} is expecting "
                                 f"{self.n_features_in_} features as input.")
            n_features = self.n_features_in_
            data = data.widened(n_features)
        if is_classifier(self):
            self._encode_y(data.labels(), classes=self.classes_ if warm else None)
            if self.classes_.shape[0] > 2:
                raise ValueError(f"{name} learns two classes on a cluster; y has "
                                 f"{self.classes_.shape[0]}.")
            data = data.encoded(self.classes_)
        else:
            self._learn_target_range(np.array(data.target_range()), reset=not warm)
            data = data.encoded(None)
        self.n_features_in_ = n_features
        validation = None
        if eval_set is not None:
            X_val, y_val = validate_fm_data(self, *eval_set, reset=False,
                                            y_numeric=not is_classifier(self))
            validation = (X_val, self._encode_y(y_val, classes=getattr(self, "classes_", None)),
                          np.ones(X_val.shape[0], dtype))
        groups = validate_feature_groups(feature_groups, n_features, self.solver)
        if not warm:
            self._initialise(n_features, dtype, groups)
        solver = self._cluster_solver()
        kind = "FMClassifier" if is_classifier(self) else "FMRegressor"
        warm_workers(client, f"{kind} {self.solver}", dtype.name)
        self._history = history
        try:
            if self.max_iter > done:
                self._run_epochs(data, None, None, validation, self._rng, self.max_iter - done,
                                 stop_early=True, solver=solver)
        finally:
            del self._history
        self.n_retries_ = solver.retries
        if done and self.max_iter > done:  # the history continues the checkpoint's
            self.n_iter_ += done
            self.loss_curve_ = history["loss_curve_"] + self.loss_curve_
            if self.validation_scores_ is not None:
                self.validation_scores_ = history["validation_scores_"] + self.validation_scores_
                self.best_validation_score_ = max(self.validation_scores_)
        return self

    def _cluster_solver(self):
        """The distributed learner around the in-memory one (one thread per task)."""
        local = dataclasses.replace(self._solver(), n_threads=1)
        if self.solver == "als":
            return DaskALS(local, max_retries=self.max_retries)
        if self.solver == "mcmc":
            return DaskMCMC(local, max_retries=self.max_retries)
        return DaskSGD(local, max_retries=self.max_retries, local_steps=self.local_steps)

    def _resume(self):
        """Adopt the fit saved at ``checkpoint``, if there is one and it was written for the
        same data (``_training_data``); return the epochs it had run and its history."""
        if self.checkpoint is None or not os.path.exists(self.checkpoint):
            return 0, {"done": 0, "loss_curve_": [], "validation_scores_": []}
        saved = load(self.checkpoint)
        if type(saved) is not type(self):
            raise ValueError(f"checkpoint {os.fspath(self.checkpoint)!r} holds a "
                             f"{type(saved).__name__}, not a {type(self).__name__}.")
        mine, theirs = self.get_params(), saved.get_params()
        differ = sorted(k for k in mine if k not in _RESUMABLE and mine[k] != theirs[k])
        if differ:
            raise ValueError(f"checkpoint {os.fspath(self.checkpoint)!r} was written with other "
                             f"parameters: {', '.join(f'{k}={theirs[k]!r}' for k in differ)}; "
                             "remove the file to start afresh.")
        theirs = getattr(saved, "_training_data", None)
        if theirs != self._training_data:
            raise ValueError(
                f"checkpoint {os.fspath(self.checkpoint)!r} was written for other data: "
                f"{_describe(theirs)}; this fit's is {_describe(self._training_data)}. Remove "
                "the file to start afresh, or to train its model further on this data, load "
                "it (fmlearn.load) and fit with warm_start=True and another checkpoint.")
        for attr, value in vars(saved).items():
            if attr.endswith("_") or attr in ("_solver_state", "_rng", "_burn_in"):
                setattr(self, attr, value)
        return saved.n_iter_, {"done": saved.n_iter_, "loss_curve_": list(saved.loss_curve_),
                               "validation_scores_": list(saved.validation_scores_ or [])}

    def _end_epoch(self, solver, model, state, loss_curve, val_scores):
        """Checkpoint after each epoch of a cluster fit with ``checkpoint`` set."""
        if self.checkpoint is None or getattr(self, "_history", None) is None:
            return
        history = self._history
        snapshot = copy.copy(self)
        del snapshot._history
        snapshot.model_ = solver.result(model, state)
        snapshot._solver_state = state
        snapshot.n_iter_ = history["done"] + len(loss_curve)
        snapshot.loss_curve_ = history["loss_curve_"] + loss_curve
        scores = history["validation_scores_"] + val_scores
        snapshot.validation_scores_ = scores or None
        snapshot.best_validation_score_ = max(scores) if scores else None
        save(snapshot, self.checkpoint)

    def _blockwise(self, method, X, dtype, n_columns=None):
        """``method`` applied to each row chunk of a Dask array or DataFrame, lazily."""
        if isinstance(X, dd.DataFrame):
            X = X.to_dask_array(lengths=True)
        X = X.rechunk({1: -1})
        if n_columns is None:
            return X.map_blocks(method, drop_axis=1, dtype=dtype)
        return X.map_blocks(method, chunks=(X.chunks[0], (n_columns,)), dtype=dtype)

    def predict(self, X):
        """Predictions; for a Dask array or DataFrame, a lazy Dask array computed by the
        workers chunk by chunk."""
        if isinstance(X, (da.Array, dd.DataFrame)):
            dtype = self.classes_.dtype if is_classifier(self) else np.dtype(self.dtype)
            return self._blockwise(super().predict, X, dtype)
        return super().predict(X)


@_with_cluster_params
class DaskFMRegressor(_ClusterFit, FMRegressor):
    """``FMRegressor`` trained on a Dask cluster, data-parallel.

    ``fit`` takes a ``dask.array`` or ``dask.dataframe`` of features with its targets,
    or a list of libSVM/libFM, FFM or RecordIO file shards; each row chunk or shard is a
    partition that stays on the worker that built it, and only model parameters travel.
    In-memory input is fitted in this process, as by ``FMRegressor``.

    ``solver="sgd"``: every worker runs the SGD kernel over the next rows of each of its
    partitions from the current model (a round), then the driver adds up the partitions'
    steps of each feature, weighted so that a feature few rows hold gets their sum, as in
    one process, and one that every partition takes to its minimum their average, and
    sends each partition the rows its next slice touches. Rounds of ``local_steps`` rows;
    by default (``"auto"``) they start at 1,000 rows and double while the model has seen
    at least as many rows as a round holds, up to 100,000 per partition and a 32nd of it,
    so that the test score per epoch follows single-machine SGD's (see the docs' Dask page
    for measured curves); ``None`` is one round per epoch, fewer exchanges but a model that
    lags.

    ``solver="als"``: each coordinate update sums its statistics over the partitions, so
    a sweep equals the single-machine sweep. ``solver="mcmc"``: the same statistics, the
    draws made on the driver with the single-process generator, so for the same seed the
    chain equals the single-machine chain; predictions average the kept samples.

    A worker lost during an epoch makes the epoch run again from the model at its start
    (``max_retries`` times); with ``checkpoint`` the estimator is saved there after every
    epoch and a later ``fit`` with the same parameters resumes from the file.

    Parameters
    ----------
    **params
        Those of :class:`fmlearn.FMRegressor`, and:
    local_steps : int, "auto" or None, default="auto"
        Rows each partition trains on between two combinations of the model (SGD):
        ``"auto"`` doubles them from 1,000 up to 100,000 or a 32nd of the partition,
        ``None`` takes all of them.
    checkpoint : str or path-like, default=None
        Model file written after every epoch of a cluster fit (:func:`fmlearn.save`),
        and resumed from by ``fit`` when it exists.
    max_retries : int, default=3
        Times an epoch is run again after a lost worker before ``fit`` fails.

    Attributes
    ----------
    n_retries_ : int
        Epochs run again after a lost worker in the last cluster fit.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from fmlearn.dask import DaskFMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array((rng.random((400, 6)) < 0.3).astype(np.float32), chunks=200)
    >>> y = X[:, 0] + 2 * X[:, 1] * X[:, 2]
    >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster, \\
    ...         Client(cluster) as client:
    ...     reg = DaskFMRegressor(n_factors=4, solver="als", max_iter=5, reg_linear=0.1,
    ...                           reg_factors=0.1, random_state=0)
    ...     reg = reg.fit(X, y)
    ...     rmse = float(np.sqrt(((reg.predict(X) - y) ** 2).mean().compute()))
    >>> rmse < 0.1
    True
    """

    _parameter_constraints = {**FMRegressor._parameter_constraints,
                              **_ClusterFit._cluster_constraints}


@_with_cluster_params
class DaskFMClassifier(_ClusterFit, FMClassifier):
    """``FMClassifier`` (binary) trained on a Dask cluster; see :class:`DaskFMRegressor`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd
    >>> from distributed import Client, LocalCluster
    >>> from fmlearn.dask import DaskFMClassifier
    >>> frame = pd.DataFrame(np.random.default_rng(0).random((400, 6)) < 0.3, dtype=float)
    >>> liked = (frame[0] + frame[1] * frame[2]) > 0.5
    >>> cluster = LocalCluster(n_workers=2, processes=False, dashboard_address=None)
    >>> client = Client(cluster)
    >>> clf = DaskFMClassifier(max_iter=5, eta0=0.5, random_state=0)
    >>> clf = clf.fit(dd.from_pandas(frame, npartitions=2), dd.from_pandas(liked, npartitions=2))
    >>> clf.predict_proba(dd.from_pandas(frame, npartitions=2)).compute().shape
    (400, 2)
    >>> client.close(); cluster.close()
    """

    _parameter_constraints = {**FMClassifier._parameter_constraints,
                              **_ClusterFit._cluster_constraints}

    def predict_proba(self, X):
        """Class probabilities; a lazy Dask array for Dask input."""
        if isinstance(X, (da.Array, dd.DataFrame)):
            return self._blockwise(super().predict_proba, X, np.float64, 2)
        return super().predict_proba(X)

    def decision_function(self, X):
        """Scores; a lazy Dask array for Dask input."""
        if isinstance(X, (da.Array, dd.DataFrame)):
            return self._blockwise(super().decision_function, X, np.float64)
        return super().decision_function(X)
