"""The estimator machinery every neural model shares: validation, the epoch loop, devices."""
from __future__ import annotations

import contextlib
import copy
import re
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import check_scoring
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._ffm import resolve_fields
from .._threads import effective_n_jobs
from .._validation import validate_fm_data, validate_sample_weight
from ._data import Batches, field_slots


def resolve_device(device: str) -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; any other name as torch reads it.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


@contextlib.contextmanager
def torch_threads(n_jobs: int | None):
    """Run with ``effective_n_jobs(n_jobs)`` intra-op threads, restoring torch's count after.

    Examples
    --------
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    """
    before = torch.get_num_threads()
    torch.set_num_threads(effective_n_jobs(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def keep_params(estimator: BaseEstimator, params: dict[str, Any]) -> None:
    """Set an ``__init__``'s arguments (its ``locals()``) as the estimator's parameters.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> est = BaseEstimator(); keep_params(est, {"self": est, "alpha": 1.0}); est.alpha
    1.0
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class BaseNeuralFM(BaseEstimator):
    """Parameters, fit / partial_fit / predict of the neural models; subclasses define
    ``__init__`` (all parameters, set by :func:`keep_params`) and build the network
    (``_network``). Not for direct use."""

    _parameter_constraints: dict = {
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"adam", "adagrad"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "l2_embeddings": [Interval(Real, 0, None, closed="left")],
        "l2_mlp": [Interval(Real, 0, None, closed="left")],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "sparse_gradients": ["boolean", StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "scoring": [str, None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
        "n_jobs": [Integral, None],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    # --- what subclasses provide ----------------------------------------------------------------
    _uses_fields = False  # True: the network reads the (batch, n_fields) slot layout
    _model_file_module = "fmlearn.neural.persistence"  # fmlearn.persistence.save hands over

    def _network(self, n_features: int, n_fields: int) -> nn.Module:
        raise NotImplementedError

    # --- data -----------------------------------------------------------------------------------
    def _resolve_fields(self, n_features: int) -> None:
        if not self._uses_fields:
            self.n_fields_ = 0
            return
        if self.fields is None:
            codes = np.arange(n_features, dtype=np.int32)
        else:
            names = getattr(self, "feature_names_in_", None)
            codes, _ = resolve_fields(self.fields, n_features, names)
        self.fields_ = codes.astype(np.int64)
        self.n_fields_ = int(codes.max()) + 1

    def _slots(self, X) -> tuple[np.ndarray, np.ndarray] | None:
        """The field models' slot layout of ``X`` (None for the bag models)."""
        return field_slots(X, self.fields_, self.n_fields_) if self._uses_fields else None

    # --- the network ----------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def to(self, device: str):
        """Move the fitted network and its optimizer state to ``device`` (sets the ``device``
        parameter; ``set_params(device=...)`` moves them at the next fit or predict).

        Parameters
        ----------
        device : str
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``, ...

        Returns
        -------
        self : estimator

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMRegressor
        >>> reg = NeuralFMRegressor(max_iter=1, random_state=0).fit(np.eye(3), [1, 2, 3])
        >>> reg.to("cpu").network_.factors.weight.device
        device(type='cpu')
        """
        check_is_fitted(self, "network_")
        self.device = device
        return self._on_device()

    def _on_device(self):
        """Move the network and the optimizer state to the device ``device`` names."""
        device = self._device()
        self.network_.to(device)
        for opt in self._optimizers or ():
            for state in opt.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and key != "step":  # steps stay on the CPU
                        state[key] = value.to(device)
        return self

    def _dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32

    def _init_network(self, n_features: int, rng: np.random.Generator) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**63)))
            self.network_ = self._network(n_features, self.n_fields_).to(self._dtype())
        self.network_.to(self._device())
        self.loss_curve_, self.validation_scores_ = [], []
        self.best_validation_score_ = None
        self.n_iter_ = 0
        self._optimizers = None

    @property
    def _sparse_embeddings(self) -> bool:
        """``sparse_gradients`` as the fit resolved it (older files hold only the bool)."""
        return getattr(self, "sparse_gradients_", self.sparse_gradients is True)

    def _start_from(self, model) -> None:
        """Copy the FM ``model``'s w0, w and V into the network; a regressor's network
        predicts the standardized target, so they are scaled into its units."""
        parts = [np.asarray(getattr(model, name + "_", getattr(model, name, None)), dtype=float)
                 for name in ("intercept", "coef", "factors")]
        net, n_features = self.network_, self.n_features_in_
        have = getattr(net, "factors", None)
        want = (n_features, self.n_factors)
        if have is None or tuple(have.weight.shape) != want:
            raise ValueError(f"init_model: {type(self).__name__}'s network has no factor "
                             f"vector of n_factors={self.n_factors} per feature to start")
        if parts[0].size != 1 or parts[1].shape != (n_features,) or parts[2].shape != want:
            raise ValueError(
                f"init_model must be a fitted single-output FM with intercept, coef of shape "
                f"({n_features},) and factors of shape {want}; got "
                f"{parts[0].shape}, {parts[1].shape} and {parts[2].shape}")
        if not all(np.isfinite(p).all() for p in parts):
            raise ValueError("init_model holds NaN or infinite parameters")
        mean, scale = getattr(self, "y_mean_", 0.0), getattr(self, "y_scale_", 1.0)
        with torch.no_grad():
            net.linear.bias.fill_((float(parts[0].ravel()[0]) - mean) / scale)
            net.linear.weight.weight.copy_(torch.as_tensor(parts[1][:, None] / scale))
            net.factors.weight.copy_(torch.as_tensor(parts[2] / np.sqrt(scale)))
        if hasattr(net, "start_as_fm"):
            net.start_as_fm()

    def _make_optimizers(self) -> list[torch.optim.Optimizer]:
        net = self.network_
        embedding_ids = {id(p) for e in net.embeddings() for p in e.parameters()}
        embeddings = [p for p in net.parameters() if id(p) in embedding_ids]
        dense = [p for p in net.parameters() if id(p) not in embedding_ids]
        lr = self.learning_rate
        if self.optimizer == "adagrad":
            return [torch.optim.Adagrad(net.parameters(), lr=lr)]
        if self._sparse_embeddings:
            return [torch.optim.SparseAdam(embeddings, lr=lr), torch.optim.Adam(dense, lr=lr)]
        return [torch.optim.Adam(net.parameters(), lr=lr)]

    def _penalty(self, inputs) -> torch.Tensor | float:
        """L2 on the embedding rows this batch looks up, and on the MLP's weights."""
        pen: torch.Tensor | float = 0.0
        if self.l2_embeddings:
            ids = torch.unique(inputs[0])
            pen = self.l2_embeddings * sum(e(ids).pow(2).sum() for e in self.network_.embeddings())
        if self.l2_mlp:
            pen = pen + self.l2_mlp * sum(m.weight.pow(2).sum() for m in self.network_.modules()
                                          if isinstance(m, nn.Linear))
        return pen

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, eval_set=None, init_model=None):
        """Train for up to ``max_iter`` epochs (continuing when ``warm_start`` is set).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight in its batch's weighted mean loss.
        eval_set : tuple (X_val, y_val), default=None
            Scored after each epoch (``validation_scores_``); with it, or with
            ``early_stopping``, training stops after ``n_iter_no_change`` epochs without
            an improvement of ``tol`` and the network of the best epoch is kept.
        init_model : fitted FM estimator or :class:`fmlearn.model.FMModel`, default=None
            Pre-training, as the NFM and IFM papers do: the network's bias, linear weights
            and factors start from this factorization machine's (same number of features and
            ``n_factors``; e.g. a fitted :class:`fmlearn.FMRegressor`), the layers above
            from their usual initialisation, except that IFM's factor estimating network and
            DeepFM's MLP start with a zero output layer, so that these two networks start
            as the FM itself. Not used when ``warm_start`` continues.

        Returns
        -------
        self : estimator

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMRegressor
        >>> X = np.eye(4); y = np.arange(4.0)
        >>> reg = NeuralFMRegressor(max_iter=3, random_state=0).fit(X, y)
        >>> len(reg.loss_curve_), reg.n_iter_
        (3, 3)
        """
        self._validate_params()
        if not (self.warm_start and hasattr(self, "network_")):
            for attr in ("network_", "classes_"):
                self.__dict__.pop(attr, None)
        return self._fit(X, y, sample_weight, eval_set, self.max_iter, init_model)

    def _fit(self, X, y, sample_weight, eval_set, epochs, init_model=None):
        first = not hasattr(self, "network_")
        X, y = self._validate(X, y, reset=first)
        w = validate_sample_weight(sample_weight, X, X.dtype)
        if first:
            self._rng = _generator(self.random_state)
            self._resolve_fields(X.shape[1])
            self._init_target(y, w)
            self.sparse_gradients_ = bool(
                X.shape[1] > 2 * self.batch_size * X.nnz / max(X.shape[0], 1)
                if self.sparse_gradients == "auto" else self.sparse_gradients)
            self._init_network(X.shape[1], self._rng)
            if init_model is not None:
                try:
                    self._start_from(init_model)
                except ValueError:
                    del self.network_  # a refused init_model leaves the estimator unfitted
                    raise
        t = self._target(y)
        validation = None
        if eval_set is not None:
            Xv, yv = eval_set
            validation = (self._validate(Xv, yv, reset=False)[0], np.asarray(yv))
        elif self.early_stopping and epochs > 1:
            perm = self._rng.permutation(X.shape[0])
            n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
            if n_val >= X.shape[0]:
                raise ValueError("early_stopping needs at least 2 samples")
            val, keep = perm[:n_val], perm[n_val:]
            validation = (X[val], y[val])
            X, t, w = X[keep], t[keep], w[keep]
        with torch_threads(self.n_jobs):
            self._epochs(X, t, w, validation, epochs)
        return self

    def _epochs(self, X, t, w, validation, epochs):
        net, device = self._on_device().network_, self._device()
        if self._optimizers is None:
            self._optimizers = self._make_optimizers()
        scorer = check_scoring(self, self.scoring) if validation is not None else None
        best, stale = None, 0
        t, w = t.astype(self.dtype), w.astype(self.dtype)
        slots = self._slots(X)
        for _ in range(epochs):
            net.train()
            data, batch_size = self._epoch_data(X, t, w, slots)
            total, seen = 0.0, 0.0
            bar = _progress(self.verbose, data.n, self.n_iter_ + 1)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self._rng.integers(2**63)))
                for inputs, (tb, wb) in data.cut(batch_size, device):
                    weight = self._batch_weight(wb)
                    total += self._step(inputs, tb, wb) * weight
                    seen += weight
                    bar.update(len(tb))
            bar.close()
            loss = total / max(seen, np.finfo(float).tiny)
            if not np.isfinite(loss):
                raise ValueError(f"the training loss diverged at epoch {self.n_iter_ + 1} "
                                 "(not finite); lower learning_rate.")
            self.loss_curve_.append(loss)
            self.n_iter_ += 1
            if validation is not None:
                score = float(scorer(self, *validation))
                self.validation_scores_.append(score)
                improved = self.best_validation_score_ is None or \
                    score > self.best_validation_score_ + self.tol
                if improved:
                    self.best_validation_score_ = score
                    best = copy.deepcopy(net.state_dict())
            else:
                improved = len(self.loss_curve_) == 1 or \
                    loss < min(self.loss_curve_[:-1]) - self.tol
            stale = 0 if improved else stale + 1
            if (validation is not None or self.early_stopping) and stale >= self.n_iter_no_change:
                break
        if best is not None:
            net.load_state_dict(best)

    def _epoch_data(self, X, t, w, slots) -> tuple[Batches, int]:
        """This epoch's rows in a random order, and the rows per batch."""
        return Batches(X, self._rng.permutation(X.shape[0]), t, w, slots=slots), self.batch_size

    def _batch_weight(self, w) -> float:
        return float(w.sum())

    def _batch_loss(self, out, t, w) -> torch.Tensor:
        return (self._loss(out, t) * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)

    def _step(self, inputs, t, w) -> float:
        net = self.network_
        for opt in self._optimizers:
            opt.zero_grad()
        with _eval_batch_norm(net, len(t) == 1):
            out = net(*inputs)
        loss = self._batch_loss(out, t, w)
        (loss + self._penalty(inputs)).backward()
        # AdaGrad builds its sparse step unchecked, and warns unless told that this is meant
        with torch.sparse.check_sparse_tensor_invariants(enable=False):
            for opt in self._optimizers:
                opt.step()
        return float(loss.detach())

    def partial_fit(self, X, y, sample_weight=None, **kwargs):
        """One epoch over ``X``, starting from the network trained so far.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        **kwargs
            ``classes`` for the classifiers.

        Returns
        -------
        self : estimator

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMRegressor
        >>> reg = NeuralFMRegressor(random_state=0)
        >>> reg.partial_fit(np.eye(2), [0.0, 1.0]).partial_fit(np.eye(2), [0.0, 1.0]).n_iter_
        2
        """
        if not hasattr(self, "network_"):
            self._validate_params()
            self._partial_classes(kwargs.get("classes"))
        return self._fit(X, y, sample_weight, None, 1)

    def _partial_classes(self, classes) -> None:
        pass

    # --- prediction -----------------------------------------------------------------------------
    def _decision(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_fm_data(self, X, reset=False)
        net, device = self.network_, self._device()
        self._on_device()
        net.eval()
        out = []
        with torch_threads(self.n_jobs), torch.no_grad():
            data = Batches(X, np.arange(X.shape[0]), slots=self._slots(X))
            for inputs, _ in data.cut(max(self.batch_size, 8192), device):
                out.append(net(*inputs).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _validate(self, X, y, reset):
        return validate_fm_data(self, X, y, reset=reset, y_numeric=self._numeric_target)

    def _serving_model(self) -> ServingModel:
        """What :class:`fmlearn.serve.Predictor` scores in place of a numba model."""
        check_is_fitted(self, "network_")
        return ServingModel(self)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags


class ServingModel:
    """A fitted neural estimator as :class:`fmlearn.serve.Predictor` reads a model:
    ``n_features``, ``dtype`` and ``predict_csr`` giving a regressor's or ranker's
    predictions, a classifier's decision scores (the Predictor applies ``_link_cdf``).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import NeuralFMRegressor
    >>> from fmlearn.serve.codecs import decode_json
    >>> reg = NeuralFMRegressor(max_iter=1, random_state=0).fit(np.eye(2), [1.0, 2.0])
    >>> rows = decode_json(b'{"instances": [{"features": [1, 0]}]}', 2, np.float32)
    >>> bool(ServingModel(reg).predict_csr(rows)[0] == reg.predict([[1.0, 0.0]])[0])
    True
    """

    def __init__(self, estimator: BaseNeuralFM) -> None:
        self.estimator = estimator
        self.n_features = int(estimator.n_features_in_)
        self.dtype = np.dtype(estimator.dtype)

    def predict_csr(self, rows, n_jobs=None) -> np.ndarray:
        """Scores of the CSR rows ``(indptr, indices, data, shape)``; a ``ValueError`` names
        the instance (a row with two features of one field)."""
        est = self.estimator
        X = sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=rows.shape)
        try:
            return est.decision_function(X) if hasattr(est, "classes_") else est.predict(X)
        except ValueError as exc:
            raise ValueError(re.sub(r"^row (\d+) of X", r"instance \1", str(exc))) from None


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


@contextlib.contextmanager
def _eval_batch_norm(net: nn.Module, single: bool):
    """Batch norm cannot take the statistics of one row: such a batch uses the running ones."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)] if single else []
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m in norms:
            m.train()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(verbose, total: int, epoch: int):
    if not verbose:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=f"epoch {epoch}", unit="rows", leave=False)
