"""FM estimators trained on a Dask cluster (``pip install fmlearn[dask]``).

Examples
--------
>>> from fmlearn.dask import DaskFMClassifier, DaskFMRegressor
>>> DaskFMRegressor(solver="als").solver
'als'
"""
from . import _sizes  # noqa: F401  (registers the size estimates Dask uses)
from ._estimators import DaskFMClassifier, DaskFMRegressor

__all__ = ["DaskFMClassifier", "DaskFMRegressor"]
