"""fmlearn: factorization machines for sparse data, with scikit-learn estimators.

The public names are imported when first used (PEP 562), so ``import fmlearn`` and
the command line start without loading scikit-learn, SciPy and pandas.
"""
import importlib
from typing import TYPE_CHECKING, Any

from ._numba_cache import configure as _configure_numba_cache

_configure_numba_cache()  # before any kernel is defined

# public name -> the module that defines it
_WHERE = {
    "FMClassifier": "._classification", "FFMClassifier": "._ffm", "FFMRegressor": "._ffm",
    "FMOrdinalRegressor": "._ordinal", "FMRanker": "._ranking", "FMRegressor": "._regression", "FFMModel": ".model",
    "FMModel": ".model", "ModelFileError": ".persistence", "load": ".persistence",
    "read_header": ".persistence", "save": ".persistence", "FwFMClassifier": "._fwfm",
    "FwFMRegressor": "._fwfm", "FwFMModel": ".fwfm_model", "RelationBlock": ".relations",
    "FMRecommender": "._recommender",
}
__all__ = sorted(_WHERE)
__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see
    from ._classification import FMClassifier
    from ._ffm import FFMClassifier, FFMRegressor
    from ._ordinal import FMOrdinalRegressor
    from ._fwfm import FwFMClassifier, FwFMRegressor
    from ._ranking import FMRanker
    from ._recommender import FMRecommender
    from ._regression import FMRegressor
    from .fwfm_model import FwFMModel
    from .model import FFMModel, FMModel
    from .persistence import ModelFileError, load, read_header, save
    from .relations import RelationBlock


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fmlearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
