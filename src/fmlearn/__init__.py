"""fmlearn: factorization machines for sparse data, with scikit-learn estimators."""
from ._classification import FMClassifier
from ._regression import FMRegressor
from .model import FMModel

__all__ = ["FMClassifier", "FMModel", "FMRegressor"]
__version__ = "0.1.0"
