"""fmlearn: factorization machines for sparse data, with scikit-learn estimators."""
from ._classification import FMClassifier
from ._regression import FMRegressor
from .model import FMModel
from .persistence import ModelFileError, load, read_header, save
from .recommend import Recommender, recommend, similar_items

__all__ = ["FMClassifier", "FMModel", "FMRegressor", "ModelFileError", "Recommender", "load",
           "read_header", "recommend", "save", "similar_items"]
__version__ = "0.1.0"
