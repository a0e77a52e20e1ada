"""FM estimators trained on a Dask cluster (``pip install fmlearn[dask]``).

Examples
--------
>>> from fmlearn.dask import DaskFMClassifier, DaskFMRegressor
>>> DaskFMRegressor(solver="als").solver
'als'
"""
from ._estimators import DaskFMClassifier, DaskFMRegressor

__all__ = ["DaskFMClassifier", "DaskFMRegressor"]
