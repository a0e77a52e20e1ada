"""Amazon SageMaker's Factorization Machines: models in and out.

:func:`load_model` reads a ``model.tar.gz`` trained by SageMaker's built-in FM as a fitted
:class:`~fmlearn.FMRegressor` or :class:`~fmlearn.FMClassifier`; :func:`save_model` writes
one that MXNet and SageMaker FM readers load. The names are imported when first used, so
importing this package loads nothing else.
"""
import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_WHERE = {"load_model": ".artifact", "read_header": ".artifact", "save_model": ".artifact"}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .artifact import load_model, read_header, save_model


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fmlearn.sagemaker' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
