"""fmlearn: factorization machines for sparse data, with scikit-learn estimators."""
from ._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()  # before any kernel is defined

from ._classification import FMClassifier
from ._ffm import FFMClassifier, FFMRegressor
from ._ranking import FMRanker
from ._regression import FMRegressor
from .model import FFMModel, FMModel
from .persistence import ModelFileError, load, read_header, save

__all__ = ["FFMClassifier", "FFMModel", "FFMRegressor", "FMClassifier", "FMModel", "FMRanker",
           "FMRegressor", "ModelFileError", "load", "read_header", "save"]
__version__ = "0.1.0"
