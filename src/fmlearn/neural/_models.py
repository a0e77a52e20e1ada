"""The neural estimators: FM, FFM, NFM, AFM, DeepFM, IFM and CFM, each a regressor and a
binary classifier, and CFM also a BPR ranker."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._base import BaseNeuralFM, keep_params
from ._modules import AFMNet, CFMNet, DeepFMNet, FFMNet, FMNet, IFMNet, NFMNet
from ._tasks import NeuralClassifierMixin, NeuralRankerMixin, NeuralRegressorMixin

_COMMON_DOC = """
    optimizer : {{"adam", "adagrad"}}, default={optimizer!r}
        Adam (``SparseAdam`` for the embeddings when ``sparse_gradients``) or AdaGrad.
    learning_rate : float, default={learning_rate}
    batch_size : int, default={batch_size}
    max_iter : int, default=100
        Epochs.
    l2_embeddings : float, default=0.0
        L2 penalty on the embedding rows (linear weights and factors) each batch looks up,
        so that sparse updates stay sparse.
    l2_mlp : float, default=0.0
        L2 penalty on the weights of the network's linear layers.
    init_std : float, default=0.01
        Standard deviation of the normal initial factors (linear weights start at 0).
    sparse_gradients : bool or "auto", default="auto"
        Sparse gradients for the embeddings: a step updates only the rows its batch holds
        (``SparseAdam``); dense ones update every row (Adam's moments move rows a batch
        does not hold). ``"auto"``: sparse when the tables have more than twice as many rows
        as a batch holds entries (``batch_size`` x the mean non-zeros per row), where
        updating only those rows is the faster (measured: ``bench/README.md``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (unless ``eval_set`` is given), stop
        after ``n_iter_no_change`` epochs without an improvement of ``tol`` of their score
        and keep the network of the best epoch; without validation data the training loss
        is watched and the last network kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    tol : float, default=1e-4
    scoring : str or None, default=None
        A scikit-learn scorer name for the validation scores; None: ``score``.
    warm_start : bool, default=False
        ``fit`` continues from the network, optimizer state and random stream it has.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial network, the shuffling and dropout; on the CPU an int makes
        ``fit`` reproducible.
    verbose : int, default=0
        Show a progress bar per epoch (tqdm).
    device : str, default="auto"
        The torch device; ``"auto"`` takes CUDA when available, else the CPU.
    n_jobs : int or None, default=None
        torch's intra-op threads during fit and predict (restored after); None: 1, -1: all.
    dtype : {{"float32", "float64"}}, default="float32"

    Attributes
    ----------
    network_ : torch.nn.Module
    sparse_gradients_ : bool
        Whether the embeddings take sparse gradients (``sparse_gradients`` resolved).
    loss_curve_ : list of float
        Mean training loss per epoch (for regressors in units of the standardized target).
    validation_scores_ : list of float
    best_validation_score_ : float or None
    n_iter_ : int
    n_features_in_ : int
"""


def _doc(cls, optimizer="adam", learning_rate=0.001, batch_size=256):
    cls.__doc__ = cls.__doc__.rstrip() + "\n" + _COMMON_DOC.format(
        optimizer=optimizer, learning_rate=learning_rate, batch_size=batch_size) + cls._examples
    return cls


class _FM(BaseNeuralFM):
    def __init__(self, *, n_factors=8, optimizer="adam", learning_rate=0.001, batch_size=256,
                 max_iter=100, l2_embeddings=0.0, l2_mlp=0.0, init_std=0.01,
                 sparse_gradients="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, scoring=None, warm_start=False,
                 random_state=None, verbose=0, device="auto", n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        return FMNet(n_features, self.n_factors, sparse=self._sparse_embeddings,
                     init_std=self.init_std)


@_doc
class NeuralFMRegressor(NeuralRegressorMixin, _FM):
    """Factorization machine (Rendle, ICDM 2010) on PyTorch, squared loss.

    ``y = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j`` in O(k nnz); mini-batches
    of the CSR input, so plain FM trains on a GPU too.

    Parameters
    ----------
    n_factors : int, default=8"""
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import NeuralFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> reg = NeuralFMRegressor(learning_rate=0.05, max_iter=50, random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.9)
    True
    """


@_doc
class NeuralFMClassifier(NeuralClassifierMixin, _FM):
    """Factorization machine (Rendle, ICDM 2010) on PyTorch, logistic loss, two classes.

    Parameters
    ----------
    n_factors : int, default=8"""
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import NeuralFMClassifier
    >>> X = np.eye(4); y = ["a", "b", "a", "b"]
    >>> clf = NeuralFMClassifier(learning_rate=0.05, max_iter=50, random_state=0).fit(X, y)
    >>> clf.predict(X).tolist()
    ['a', 'b', 'a', 'b']
    """


class _NFM(BaseNeuralFM):
    _parameter_constraints = {**BaseNeuralFM._parameter_constraints,
                              "hidden_layer_sizes": [tuple, list],
                              "dropout": [tuple, list], "batch_norm": ["boolean"]}

    def __init__(self, *, n_factors=64, hidden_layer_sizes=(64,), dropout=(0.2, 0.5),
                 batch_norm=True, optimizer="adagrad", learning_rate=0.05, batch_size=128,
                 max_iter=100, l2_embeddings=0.0, l2_mlp=0.0, init_std=0.01,
                 sparse_gradients="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, scoring=None, warm_start=False,
                 random_state=None, verbose=0, device="auto", n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        if len(self.dropout) != 2 or not all(0 <= d < 1 for d in self.dropout):
            raise ValueError(f"dropout must be (on the bi-interaction pooling, on the hidden "
                             f"layers), each in [0, 1); got {self.dropout!r}")
        return NFMNet(n_features, self.n_factors, tuple(self.hidden_layer_sizes),
                      tuple(self.dropout), self.batch_norm, sparse=self._sparse_embeddings,
                      init_std=self.init_std)


_NFM_DOC = """

    ``y = w0 + sum_i w_i x_i + h^T MLP(BI(x))`` with the bi-interaction pooling
    ``BI(x) = sum_{i<j} x_i v_i * x_j v_j``. The defaults are the paper's (its code's
    settings for Frappe): 64 factors, one hidden layer of 64 ReLU units, batch norm,
    dropout 0.2 on the pooling and 0.5 on the hidden layer, AdaGrad at 0.05, batches of 128.

    Parameters
    ----------
    n_factors : int, default=64
    hidden_layer_sizes : tuple of int, default=(64,)
    dropout : (float, float), default=(0.2, 0.5)
        Dropout on the bi-interaction pooling and on each hidden layer.
    batch_norm : bool, default=True
        Batch norm on the pooling and on each hidden layer."""


@_doc
class NFMRegressor(NeuralRegressorMixin, _NFM):
    __doc__ = "Neural factorization machine (He & Chua, SIGIR 2017), squared loss." + _NFM_DOC
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import NFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> NFMRegressor(max_iter=2, random_state=0).fit(X, y).predict(X).shape
    (4,)
    """


@_doc
class NFMClassifier(NeuralClassifierMixin, _NFM):
    __doc__ = ("Neural factorization machine (He & Chua, SIGIR 2017), logistic loss, two "
               "classes." + _NFM_DOC)
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import NFMClassifier
    >>> X = np.eye(4); y = [0, 1, 0, 1]
    >>> NFMClassifier(max_iter=2, random_state=0).fit(X, y).predict_proba(X).shape
    (4, 2)
    """


class _DeepFM(BaseNeuralFM):
    _parameter_constraints = {**BaseNeuralFM._parameter_constraints,
                              "fields": "no_validation",
                              "hidden_layer_sizes": [tuple, list],
                              "dropout": [Interval(Real, 0, 1, closed="left")]}
    _uses_fields = True

    def __init__(self, *, fields=None, n_factors=10, hidden_layer_sizes=(400, 400, 400),
                 dropout=0.5, optimizer="adam", learning_rate=0.001, batch_size=256,
                 max_iter=100, l2_embeddings=0.0, l2_mlp=0.0, init_std=0.01,
                 sparse_gradients="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, scoring=None, warm_start=False,
                 random_state=None, verbose=0, device="auto", n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        return DeepFMNet(n_features, n_fields, self.n_factors, tuple(self.hidden_layer_sizes),
                         self.dropout, sparse=self._sparse_embeddings, init_std=self.init_std)


_DEEPFM_DOC = """

    The FM over the field embeddings ``e_j = v_i x_i`` (feature ``i`` of field ``j``; one
    feature per field and row) plus an MLP over ``[e_1, ..., e_m]``, sharing the embeddings.
    The defaults are the paper's: embeddings of 10, three hidden layers of 400 ReLU units,
    dropout 0.5, Adam.

    Parameters
    ----------
    fields : array-like of int, "auto", mapping, callable or None, default=None
        The field of every column, as :class:`fmlearn.FFMClassifier` takes it (a vector,
        a vocabulary, ``"auto"`` from ``ColumnTransformer`` names, ...); None: every
        column a field of its own (numeric features). A row may hold one feature per field.
    n_factors : int, default=10
    hidden_layer_sizes : tuple of int, default=(400, 400, 400)
    dropout : float, default=0.5
        Dropout after each hidden layer."""


@_doc
class DeepFMRegressor(NeuralRegressorMixin, _DeepFM):
    __doc__ = "DeepFM (Guo et al., IJCAI 2017), squared loss." + _DEEPFM_DOC
    _examples = """
    fields_ : ndarray of shape (n_features,)
        The field code of every column.
    n_fields_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import DeepFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> DeepFMRegressor(fields=[0, 0, 1, 1], max_iter=2, random_state=0).fit(X, y).n_fields_
    2
    """


@_doc
class DeepFMClassifier(NeuralClassifierMixin, _DeepFM):
    __doc__ = "DeepFM (Guo et al., IJCAI 2017), logistic loss, two classes." + _DEEPFM_DOC
    _examples = DeepFMRegressor._examples.replace("Regressor", "Classifier").replace(
        "np.arange(4.0)", "[0, 1, 1, 0]")


class _AFM(BaseNeuralFM):
    _parameter_constraints = {**BaseNeuralFM._parameter_constraints,
                              "fields": "no_validation",
                              "attention_size": [Interval(Integral, 1, None, closed="left")],
                              "dropout": [Interval(Real, 0, 1, closed="left")]}
    _uses_fields = True

    def __init__(self, *, fields=None, n_factors=256, attention_size=8, dropout=0.5,
                 optimizer="adagrad", learning_rate=0.1, batch_size=4096, max_iter=100,
                 l2_embeddings=0.0, l2_mlp=0.0, init_std=0.01, sparse_gradients="auto",
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5, tol=1e-4,
                 scoring=None, warm_start=False, random_state=None, verbose=0, device="auto",
                 n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        return AFMNet(n_features, n_fields, self.n_factors, self.attention_size, self.dropout,
                      sparse=self._sparse_embeddings, init_std=self.init_std)


_AFM_DOC = """

    ``y = w0 + sum_i w_i x_i + p^T sum_{i<j} a_ij (e_i * e_j)`` over the field embeddings
    ``e_j = v_i x_i`` (one feature per field and row), with the attention
    ``a_ij = softmax(h^T ReLU(W (e_i * e_j) + b))`` over the pairs. Defaults: the paper's
    256 factors and dropout 0.5 on the pair-wise interaction layer, an attention network of
    8 units, AdaGrad at 0.1 and batches of 4096 (the authors' example run); ``l2_mlp``
    penalizes the attention network and the projection.

    Parameters
    ----------
    fields : array-like of int, "auto", mapping, callable or None, default=None
        The field of every column, as :class:`DeepFMRegressor` takes it.
    n_factors : int, default=256
    attention_size : int, default=8
    dropout : float, default=0.5
        Dropout on the attention-pooled pairs."""


@_doc
class AFMRegressor(NeuralRegressorMixin, _AFM):
    __doc__ = ("Attentional factorization machine (Xiao et al., IJCAI 2017), squared loss."
               + _AFM_DOC)
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import AFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> AFMRegressor(fields=[0, 0, 1, 1], max_iter=2, random_state=0).fit(X, y).predict(X).shape
    (4,)
    """


@_doc
class AFMClassifier(NeuralClassifierMixin, _AFM):
    __doc__ = ("Attentional factorization machine (Xiao et al., IJCAI 2017), logistic loss, two "
               "classes." + _AFM_DOC)
    _examples = AFMRegressor._examples.replace("Regressor", "Classifier").replace(
        "np.arange(4.0)", "[0, 1, 1, 0]")


class _FFM(BaseNeuralFM):
    _parameter_constraints = {**BaseNeuralFM._parameter_constraints, "fields": "no_validation"}
    _uses_fields = True

    def __init__(self, *, fields=None, n_factors=4, optimizer="adagrad", learning_rate=0.2,
                 batch_size=256, max_iter=100, l2_embeddings=0.0, l2_mlp=0.0, init_std=0.1,
                 sparse_gradients="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, scoring=None, warm_start=False,
                 random_state=None, verbose=0, device="auto", n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        return FFMNet(n_features, n_fields, self.n_factors, sparse=self._sparse_embeddings,
                      init_std=self.init_std)


_FFM_DOC = """

    ``y = w0 + sum_i w_i x_i + sum_{i<j} <v_{i,f(j)}, v_{j,f(i)}> x_i x_j`` over the one
    feature of each field (:class:`fmlearn.FFMRegressor` takes several; this one trains on a
    GPU). Defaults after LIBFFM's: 4 factors, AdaGrad at 0.2.

    Parameters
    ----------
    fields : array-like of int, "auto", mapping, callable or None, default=None
        The field of every column, as :class:`DeepFMRegressor` takes it.
    n_factors : int, default=4"""


@_doc
class NeuralFFMRegressor(NeuralRegressorMixin, _FFM):
    __doc__ = "Field-aware FM (Juan et al., RecSys 2016) on PyTorch, squared loss." + _FFM_DOC
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import NeuralFFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> NeuralFFMRegressor(fields=[0, 0, 1, 1], max_iter=2, random_state=0).fit(X, y).n_fields_
    2
    """


@_doc
class NeuralFFMClassifier(NeuralClassifierMixin, _FFM):
    __doc__ = ("Field-aware FM (Juan et al., RecSys 2016) on PyTorch, logistic loss, two "
               "classes." + _FFM_DOC)
    _examples = NeuralFFMRegressor._examples.replace("Regressor", "Classifier").replace(
        "np.arange(4.0)", "[0, 1, 1, 0]")


class _IFM(BaseNeuralFM):
    _parameter_constraints = {**BaseNeuralFM._parameter_constraints,
                              "fields": "no_validation",
                              "hidden_layer_sizes": [tuple, list],
                              "dropout": [tuple, list], "batch_norm": ["boolean"]}
    _uses_fields = True

    def __init__(self, *, fields=None, n_factors=256, hidden_layer_sizes=(512, 256, 128),
                 dropout=(0.3, 0.2), batch_norm=True, optimizer="adagrad", learning_rate=0.01,
                 batch_size=2048, max_iter=100, l2_embeddings=0.0, l2_mlp=0.0, init_std=0.01,
                 sparse_gradients="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, scoring=None, warm_start=False,
                 random_state=None, verbose=0, device="auto", n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        if len(self.dropout) != 2 or not all(0 <= d < 1 for d in self.dropout):
            raise ValueError(f"dropout must be (on the FEN's hidden layers, on the pooled "
                             f"interactions), each in [0, 1); got {self.dropout!r}")
        return IFMNet(n_features, n_fields, self.n_factors, tuple(self.hidden_layer_sizes),
                      tuple(self.dropout), self.batch_norm, sparse=self._sparse_embeddings,
                      init_std=self.init_std)


_IFM_DOC = """

    The factor estimating network (FEN, an MLP with batch norm, ReLU and dropout) reads the
    field embeddings ``e_j = v_i x_i`` (feature ``i`` of field ``j``; one feature per field
    and row) concatenated and gives every field of the row an input-aware factor
    ``m_j = n_fields softmax(P FEN([e_1, ..., e_m]))_j``, which reweights its linear term and
    its embedding: ``y = w0 + sum_j m_j w_i x_i + sum_{j<l} <m_j e_j, m_l e_l>``, with
    dropout on the pooled pairs. The defaults are the authors' code's settings for Frappe:
    embeddings of 256, a FEN of (512, 256, 128) with batch norm, dropout 0.3 on its layers
    (theirs: 0.2, 0.3, 0.3) and 0.2 on the pooled pairs, AdaGrad at 0.01, batches of 2048.
    Their L2 penalty of 0.01 on all weights (against a summed, not averaged, batch loss) and
    their FM pre-training of the embeddings are left to the user (``l2_embeddings``,
    ``l2_mlp``, ``warm_start``).

    Parameters
    ----------
    fields : array-like of int, "auto", mapping, callable or None, default=None
        The field of every column, as :class:`DeepFMRegressor` takes it.
    n_factors : int, default=256
    hidden_layer_sizes : tuple of int, default=(512, 256, 128)
        The FEN's hidden layers.
    dropout : (float, float), default=(0.3, 0.2)
        Dropout after each FEN layer and on the pooled pairs.
    batch_norm : bool, default=True
        Batch norm on each FEN layer."""


@_doc
class IFMRegressor(NeuralRegressorMixin, _IFM):
    __doc__ = ("Input-aware factorization machine (Yu, Wang & Yuan, IJCAI 2019), squared loss."
               + _IFM_DOC)
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import IFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> reg = IFMRegressor(fields=[0, 0, 1, 1], n_factors=4, hidden_layer_sizes=(8,),
    ...                    max_iter=2, random_state=0).fit(X, y)
    >>> reg.predict(X).shape
    (4,)
    """


@_doc
class IFMClassifier(NeuralClassifierMixin, _IFM):
    __doc__ = ("Input-aware factorization machine (Yu, Wang & Yuan, IJCAI 2019), logistic "
               "loss, two classes." + _IFM_DOC)
    _examples = IFMRegressor._examples.replace("Regressor", "Classifier").replace(
        "np.arange(4.0)", "[0, 1, 1, 0]")


class _CFM(BaseNeuralFM):
    _parameter_constraints = {**BaseNeuralFM._parameter_constraints,
                              "fields": "no_validation", "field_groups": "no_validation",
                              "n_channels": [Interval(Integral, 1, None, closed="left")],
                              "attention_size": [Interval(Integral, 1, None, closed="left")],
                              "dropout": [Interval(Real, 0, 1, closed="left")]}
    _uses_fields = True

    def __init__(self, *, fields=None, field_groups=None, n_factors=16, n_channels=8,
                 attention_size=32, dropout=0.2, optimizer="adagrad", learning_rate=0.01,
                 batch_size=256, max_iter=100, l2_embeddings=0.0, l2_mlp=0.0, init_std=0.1,
                 sparse_gradients="auto", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, scoring=None, warm_start=False,
                 random_state=None, verbose=0, device="auto", n_jobs=None, dtype="float32"):
        keep_params(self, locals())

    def _network(self, n_features, n_fields):
        k = self.n_factors
        if k < 2 or k & (k - 1):
            raise ValueError(f"n_factors must be a power of 2 (the convolutions halve the "
                             f"embedding dimensions down to 1); got {k}")
        groups = None
        if self.field_groups is not None:
            groups = np.asarray(self.field_groups)
            if groups.shape != (n_fields,) or groups.dtype.kind not in "iu" or \
                    not np.array_equal(np.unique(groups), np.arange(groups.max(initial=-1) + 1)):
                raise ValueError(f"field_groups must give each of the {n_fields} fields a group "
                                 f"0, 1, ..., each used; got {self.field_groups!r}")
            groups = torch.from_numpy(groups.astype(np.int64))
        n_slots = n_fields if groups is None else int(groups.max()) + 1
        if n_slots < 2:
            raise ValueError(f"the interaction cube pairs fields (or field groups): it needs at "
                             f"least 2; got {n_slots} (X has {n_features} feature(s)).")
        return CFMNet(n_features, n_fields, k, self.n_channels, self.dropout, groups,
                      self.attention_size, sparse=self._sparse_embeddings, init_std=self.init_std)


_CFM_DOC = """

    The outer products ``e_a e_b^T`` of the field embeddings ``e_j = v_i x_i`` (feature ``i``
    of field ``j``; one feature per field and row) of every pair ``a < b`` are stacked into an
    interaction cube of shape ``(pairs, k, k)``, read by ``log2 k`` 3-D convolutions with
    ReLU (2x2 kernels of stride 2 over the embedding dimensions, 2 deep with stride 1 along
    the pairs, as the authors' code), then dropout and a linear prediction layer:
    ``y = w0 + sum_i w_i x_i + h^T conv(cube)``. ``field_groups`` pools the fields of each
    group by self-attention first, so the cube pairs groups (the paper's remedy for its
    cost). The paper's sizes are embeddings of 64 and six layers of 32 channels on a GPU
    (AdaGrad at 0.01, batches of 256, dropout 0.2, an attention of 32, as here); on
    Frappe's 10 fields (45 pairs, 202,027 training rows) they take about 8 hours per epoch
    on one CPU core, so the defaults are embeddings of 16 and 8 channels: about 7 minutes
    per epoch on one core, 15 seconds with ``field_groups`` of user, item and context
    (3 pairs; the paper's sizes with these groups: 15 minutes).

    Parameters
    ----------
    fields : array-like of int, "auto", mapping, callable or None, default=None
        The field of every column, as :class:`DeepFMRegressor` takes it.
    field_groups : array-like of int or None, default=None
        The group of every field (``fields_`` codes), groups numbered from 0; None: every
        field is its own group.
    n_factors : int, default=16
        A power of 2.
    n_channels : int, default=8
        Channels of every convolution.
    attention_size : int, default=32
        Width of the pooling attention (with ``field_groups``).
    dropout : float, default=0.2
        Dropout on the convolutions' output."""


@_doc
class CFMRegressor(NeuralRegressorMixin, _CFM):
    __doc__ = ("Convolutional factorization machine (Xin et al., IJCAI 2019), squared loss."
               + _CFM_DOC)
    _examples = """
    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.neural import CFMRegressor
    >>> X = np.eye(4); y = np.arange(4.0)
    >>> CFMRegressor(fields=[0, 0, 1, 1], max_iter=2, random_state=0).fit(X, y).predict(X).shape
    (4,)
    """


@_doc
class CFMClassifier(NeuralClassifierMixin, _CFM):
    __doc__ = ("Convolutional factorization machine (Xin et al., IJCAI 2019), logistic loss, two "
               "classes." + _CFM_DOC)
    _examples = CFMRegressor._examples.replace("Regressor", "Classifier").replace(
        "np.arange(4.0)", "[0, 1, 1, 0]")


@_doc
class CFMRanker(NeuralRankerMixin, _CFM):
    __doc__ = ("Convolutional factorization machine (Xin et al., IJCAI 2019) trained by BPR "
               "for top-k ranking, as the paper trains it." + _CFM_DOC.replace(
                   "    Parameters", """    ``fit(X, y, groups)`` pairs rows as :class:`fmlearn.FMRanker` does: within each
    group (a user, a context), every row with a lower relevance ``y`` than another is a
    candidate negative of it, one drawn afresh per row and epoch; the loss is
    ``-log sigmoid(y(preferred) - y(other))``. ``predict`` gives scores, ``score`` the
    AUC of the scores against ``y > 0``.

    Parameters"""))
    _examples = """
    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.neural import CFMRanker
    >>> users, items = np.repeat(np.arange(20), 10), np.tile(np.arange(10), 20)
    >>> X = sp.hstack([sp.eye(20, format="csr")[users], sp.eye(10, format="csr")[items]]).tocsr()
    >>> liked = (users % 2 == items % 2).astype(int)  # even users like even items
    >>> ranker = CFMRanker(fields=[0] * 20 + [1] * 10, n_factors=4, learning_rate=0.1,
    ...                    batch_size=32, max_iter=20, random_state=0).fit(X, liked, groups=users)
    >>> bool(ranker.score(X, liked) > 0.9)
    True
    """
