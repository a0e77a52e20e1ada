"""Types of the public API's annotations, for type checkers only.

The library's modules import this one under ``if TYPE_CHECKING:``, never when they run.
Where SciPy, pandas or scikit-learn have no stubs installed their names are ``Any``; with
``scipy-stubs`` and ``pandas-stubs`` the matrices and frames are checked too.
"""
from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import numpy
    import pandas
    import scipy.sparse

    from ._base import BaseFM
    from .model import FFMModel, FMModel, FMSamples, HOFMModel, MulticlassFMModel

#: A design matrix: an array, a SciPy sparse matrix or array of any format, or a DataFrame.
MatrixLike: TypeAlias = "ArrayLike | scipy.sparse.spmatrix | scipy.sparse.sparray | pandas.DataFrame"
#: A CSR matrix as the readers return it.
CSRMatrix: TypeAlias = "scipy.sparse.csr_matrix"
#: The parameters an estimator holds in ``model_``.
Model: TypeAlias = "FMModel | FFMModel | HOFMModel | MulticlassFMModel | FMSamples"
#: A fitted estimator (with one score per row) or a model, as recommend and serve take them.
Scorer: TypeAlias = "BaseFM | FMModel | FFMModel | HOFMModel | FMSamples"
#: A file name.
StrPath: TypeAlias = "str | PathLike[str]"
#: A file to read: its name or a binary file object.
Source: TypeAlias = "str | PathLike[str] | IO[bytes]"
#: ``random_state`` as scikit-learn takes it.
RandomStateLike: TypeAlias = "int | numpy.random.RandomState | None"
#: The floating types of the parameters.
FloatDType: TypeAlias = Literal["float32", "float64"]
#: The learning-rate schedules.
Schedule: TypeAlias = Literal["adagrad", "constant", "invscaling"]
#: The learners of the FM estimators.
Solver: TypeAlias = Literal["sgd", "sgda", "als", "mcmc", "adam", "ftrl", "vb"]
#: A validation score: None (the loss), a scikit-learn scorer name or a scorer.
Scoring: TypeAlias = "str | Callable[..., float] | None"

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    # scikit-learn's decorators as type checkers see them: they keep the signature.
    def fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[F], F]: ...

    def available_if(check: Callable[[Any], bool]) -> Callable[[F], F]: ...
