"""What the Dask learners share: epochs retried after a lost worker, the rest left to the local
learner."""
import copy
import dataclasses
import warnings
from concurrent.futures import CancelledError
from uuid import uuid4

import numpy as np
from distributed import KilledWorker

from ..model import FMModel

# Raised on the driver when a worker dies under a task or with the only copy of its input:
# a dead connection (an OSError), a task that killed workers, a future whose data is gone.
LOST_WORKER_ERRORS = (KilledWorker, CancelledError, OSError, TimeoutError)


def share(client, *values, worker=None, key=None):
    """A future of ``values`` for the tasks of one round, made on ``worker`` if it is alive
    (anywhere if None), named ``key`` (Dask's if None).

    Not ``client.scatter``: after a worker died, a broadcast scatter could wait forever.
    A task that returns its arguments keeps them in the scheduler's task spec, so if the
    worker holding the result dies, Dask recomputes it; dependent tasks fetch it from
    whichever worker holds it.
    """
    return client.submit(_pass, *values, pure=False, key=key, **_on(worker))


def _pass(*values):
    return values


def _same(value):
    return value


def tree_share(client, homes, name, *values):
    """Futures of ``values`` on each worker of ``homes`` (addresses; None for unknown),
    sent by doubling: the driver uploads one copy (:func:`share`) to the first worker, then
    at each level every worker holding a copy passes it to one that has none, so ``W``
    workers have it after ``ceil(log2 W)`` levels, the driver sends it once and no link
    carries more than one copy per level. The copies prefer their worker but may run on
    another (a worker that died is no obstacle). Tasks are named ``{name}-{level}-{i}-...``.
    Returns ``{address: future}``.
    """
    token = uuid4().hex
    workers = list(dict.fromkeys(homes))
    copies = {workers[0]: share(client, *values, worker=workers[0], key=f"{name}-0-0-{token}")}
    level = 0
    while len(copies) < len(workers):
        level += 1
        holders = list(copies)
        for i, (source, target) in enumerate(zip(holders, workers[len(holders):])):
            copies[target] = client.submit(_same, copies[source], key=f"{name}-{level}-{i}-"
                                           f"{token}", **_on(target))
    return copies


def _on(worker):
    """Dask's arguments preferring ``worker`` (anywhere if None)."""
    return {} if worker is None else {"workers": [worker], "allow_other_workers": True}


def model_rows(client, model, touched):
    """What each partition gets of ``model``: ``(ids, rows, n_features)``, the parameter
    rows of the features ``touched[p]`` its rows hold, or, when those rows together would
    outnumber the model's, the model shared once for all (:func:`share`): the driver sends
    at most the model. :func:`whole_model` turns either into the model on the worker.

    Examples
    --------
    >>> model = FMModel(0.5, np.arange(4.0), np.ones((4, 2)))
    >>> (ids, rows, n), = model_rows(None, model, [np.array([1, 3])])
    >>> ids.tolist(), rows.coef.tolist(), n
    ([1, 3], [1.0, 3.0], 4)
    >>> whole_model((ids, rows, n)).coef.tolist()
    [0.0, 1.0, 0.0, 3.0]
    """
    if sum(t.shape[0] for t in touched) > model.n_features:
        return [share(client, model.copy())] * len(touched)
    return [(t, FMModel(model.intercept, model.coef[t], model.factors[t]), model.n_features)
            for t in touched]


def whole_model(rows):
    """The model of :func:`model_rows`'s entry for a partition: the shared model, or one
    with the partition's rows in place and zeros in the rows it does not hold."""
    if len(rows) == 1:
        return rows[0]
    ids, part, n_features = rows
    coef = np.zeros(n_features, dtype=part.coef.dtype)
    factors = np.zeros((n_features, part.factors.shape[1]), dtype=part.factors.dtype)
    coef[ids], factors[ids] = part.coef, part.factors
    return FMModel(part.intercept, coef, factors)


def add_rows(a, b):
    """The sum of two row sets ``(ids, *arrays)``: their ids united (sorted), the rows of
    each array at one id added.

    Examples
    --------
    >>> ids, v = add_rows((np.array([0, 2]), np.array([1.0, 2.0])),
    ...                   (np.array([2, 5]), np.array([10.0, 20.0])))
    >>> ids.tolist(), v.tolist()
    ([0, 2, 5], [1.0, 12.0, 20.0])
    """
    ids = np.concatenate([a[0], b[0]])
    if ids.shape[0] == 0:
        return a
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return (ids[starts],) + tuple(np.add.reduceat(np.concatenate([x, y])[order], starts, axis=0)
                                  for x, y in zip(a[1:], b[1:]))


def tree_sum(client, futures, add, name):
    """A future of ``futures`` combined by ``add`` pairwise on the workers, level by level
    (``ceil(log2 P)`` levels, each task named ``{name}-{level}-{i}-...``), so that the
    driver receives one result: O(model), not one per partition."""
    token = uuid4().hex
    level = 0
    while len(futures) > 1:
        pairs = [client.submit(add, a, b, key=f"{name}-{level}-{i}-{token}")
                 for i, (a, b) in enumerate(zip(futures[::2], futures[1::2]))]
        futures = pairs + futures[2 * len(pairs):]
        level += 1
    return futures[0]


def restore(target, saved):
    """Copy the fields of the dataclass ``saved`` into ``target`` in place (arrays by value)."""
    for f in dataclasses.fields(saved):
        value = getattr(saved, f.name)
        if isinstance(value, np.ndarray):
            getattr(target, f.name)[...] = value
        else:
            setattr(target, f.name, copy.copy(value))


@dataclasses.dataclass
class DistributedSolver:
    """A learner whose epochs run on the workers holding a ``PartitionedData``.

    ``epoch`` runs ``run_epoch`` of the subclass; if a worker is lost during it, the
    model, the solver state and the random generator are put back as they were when
    the epoch began (the last combined model) and the epoch runs again, up to
    ``max_retries`` times. Validation scores and results come from ``local``, the
    in-memory learner of the same estimator.
    """

    local: object
    max_retries: int = 3
    retries: int = 0

    def current(self, fitted, state):
        return self.local.current(fitted, state)

    def decision(self, model, state, X, n_jobs=None):
        return self.local.decision(model, state, X, n_jobs)

    def result(self, model, state):
        return self.local.result(model, state)

    def epoch(self, model, data, y, sample_weight, state, rng=None):
        """One epoch over ``data`` (``y`` and ``sample_weight`` live in its partitions);
        return the summed weighted training loss."""
        saved = (model.copy(), copy.deepcopy(state), copy.deepcopy(rng.bit_generator.state)
                 if rng is not None else None)
        for attempt in range(self.max_retries + 1):
            try:
                return self.run_epoch(model, data, state, rng)
            except LOST_WORKER_ERRORS as exc:
                if attempt == self.max_retries:
                    raise RuntimeError(f"the epoch failed {attempt + 1} times on the cluster; "
                                       f"last error: {type(exc).__name__}: {exc}") from exc
                warnings.warn(f"Retrying the epoch from the last combined model after "
                              f"{type(exc).__name__}: {exc}", RuntimeWarning)
                self.retries += 1
                restore(model, saved[0])
                restore(state, saved[1])
                if rng is not None:
                    rng.bit_generator.state = copy.deepcopy(saved[2])

    def run_epoch(self, model, data, state, rng):
        raise NotImplementedError
