"""Factorization machines and their neural members on PyTorch, on the CPU or a GPU.

Needs the ``neural`` extra (``pip install fmlearn[neural]``). The estimators take what the
other fmlearn estimators take (scipy CSR, arrays, DataFrames) and train on mini-batches of
the CSR rows, never densifying the features: ``NeuralFM*`` (Rendle's FM), ``NeuralFFM*``
(Juan et al. 2016), ``NFM*`` (He & Chua 2017), ``AFM*`` (Xiao et al. 2017), ``DeepFM*``
(Guo et al. 2017), ``IFM*`` (Yu et al. 2019) and ``CFM*`` (Xin et al. 2019, with the BPR
``CFMRanker``).
:func:`fmlearn.persistence.save` and :func:`fmlearn.persistence.load` write and read them
in fmlearn's model file format, without pickle (:mod:`fmlearn.neural.persistence`).

Examples
--------
>>> import numpy as np
>>> from fmlearn.neural import NeuralFMClassifier
>>> X = np.eye(4); y = [0, 1, 0, 1]
>>> NeuralFMClassifier(max_iter=2, random_state=0).fit(X, y).classes_
array([0, 1])
"""
from ._models import (AFMClassifier, AFMRegressor, CFMClassifier, CFMRanker, CFMRegressor,
                      DeepFMClassifier, DeepFMRegressor, IFMClassifier, IFMRegressor,
                      NeuralFFMClassifier, NeuralFFMRegressor, NeuralFMClassifier,
                      NeuralFMRegressor, NFMClassifier, NFMRegressor)

__all__ = ["AFMClassifier", "AFMRegressor", "CFMClassifier", "CFMRanker", "CFMRegressor",
           "DeepFMClassifier", "DeepFMRegressor", "IFMClassifier", "IFMRegressor",
           "NFMClassifier", "NFMRegressor", "NeuralFFMClassifier", "NeuralFFMRegressor",
           "NeuralFMClassifier", "NeuralFMRegressor"]
