"""Dask's size estimates of the objects the workers hold and send: the sum of their arrays.

Dask sizes a task's result with ``dask.sizeof`` to account memory and to count transferred
bytes; without these it would take a dataclass of arrays for a few dozen bytes.

Examples
--------
>>> import numpy as np
>>> from dask.sizeof import sizeof
>>> from fmlearn.model import FMModel
>>> sizeof(FMModel(0.0, np.zeros(10), np.zeros((10, 4)))) >= 400
True
"""
import dataclasses

from dask.sizeof import sizeof

from ..model import FMModel
from ..solvers.als import Hyperparameters
from ..solvers.sgd import SGDState
from ._als import Shard, SweepState
from ._data import Partition
from ._mcmc import Average
from ._sgd import Slice, Steps


def _sum_of_fields(obj):
    return sum(sizeof(getattr(obj, f.name)) for f in dataclasses.fields(obj))


for _cls in (FMModel, SGDState, Hyperparameters, Partition, Slice, Steps, Shard,
             SweepState, Average):
    sizeof.register(_cls)(_sum_of_fields)
