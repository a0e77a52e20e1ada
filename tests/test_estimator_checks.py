"""scikit-learn's conformance checks for every estimator and learner."""
import importlib.util

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fmlearn import (FFMClassifier, FFMRegressor, FMClassifier, FMOrdinalRegressor, FMRanker,
                     FMRegressor, FwFMClassifier, FwFMRegressor)
from fmlearn.dask import DaskFMClassifier, DaskFMRegressor
from fmlearn.preprocessing import FieldHasher, MultiValueEncoder

# A weight of 2 scales a row's gradient; repeating the row gives two smaller steps at other
# points of the epoch. Stochastic solvers therefore differ (scikit-learn's own SGD estimators
# are exempted from this check for the same reason); test_estimators.py checks what does hold:
# zero weights remove a row's influence on the gradient steps.
STOCHASTIC = "per-sample SGD: a weighted row and a repeated row give different updates"
SAMPLED = ("probit Gibbs sampling: a repeated row draws its own latent target, so the chain "
           "differs from the weighted one (regression MCMC passes this check exactly)")
BATCHED = ("mini-batch Adam: a repeated row moves the batch boundaries and counts twice in "
           "its batch's mean gradient, where a weighted row counts once")
PAIRED = ("BPR samples pairs: a repeated row is also drawn as other rows' lower-ranked partner, "
          "which a weight on the preferred row does not do")


class AlternateFields:
    """FFM fields resolved at each fit from the names: every other column. A class for its
    repr, which names the test ids alike in every process (pytest-xdist's workers compare
    them; a function's repr holds its address)."""

    def __call__(self, names):
        return [j % 2 for j in range(len(names))]

    def __repr__(self):
        return "alternate_fields"


alternate_fields = AlternateFields()


ESTIMATORS = [cls(random_state=0, solver=solver) for cls in (FMRegressor, FMClassifier)
              for solver in ("sgd", "sgda", "als", "mcmc", "ftrl", "vb")] + [
    # SageMaker's rates and batch size are made for many batches an epoch; these small data
    # sets fit in one.
    cls(random_state=0, solver="adam", batch_size=16, lr_linear=0.01, lr_factors=0.01)
    for cls in (FMRegressor, FMClassifier)] + [
    FMRegressor(order=3, random_state=0), FMClassifier(order=3, random_state=0),
    FFMRegressor(random_state=0), FFMClassifier(random_state=0), FMRanker(random_state=0),
    FFMClassifier(fields=alternate_fields, random_state=0),
    FwFMRegressor(random_state=0), FwFMClassifier(fields=alternate_fields, random_state=0),
    FFMRegressor(solver="ftrl", random_state=0), FFMClassifier(solver="ftrl", random_state=0),
    FwFMRegressor(solver="ftrl", random_state=0), FwFMClassifier(solver="ftrl", random_state=0),
    # In-memory input fits in this process; test_dask.py checks the cluster fits.
    DaskFMRegressor(random_state=0, solver="als"), DaskFMClassifier(random_state=0),
    FMOrdinalRegressor(random_state=0),
    MultiValueEncoder(), FieldHasher(n_features=64)]
# The neural estimators share one base: every CI run checks a regressor and a classifier
# of it (about 3 s each on 2 cores); `make test-slow` checks the other thirteen too.
SLOW_ESTIMATORS = []
if importlib.util.find_spec("torch") is not None:  # fmlearn.neural, with the neural extra
    from fmlearn import neural
    NEURAL = {"random_state": 0, "batch_size": 32, "max_iter": 15, "learning_rate": 0.02,
              "optimizer": "adam"}
    ESTIMATORS += [neural.NeuralFMRegressor(**NEURAL),
                   neural.DeepFMClassifier(hidden_layer_sizes=(8,), n_factors=4, **NEURAL)]
    SLOW_ESTIMATORS = [neural.NeuralFMClassifier(**NEURAL)] + [
        cls(hidden_layer_sizes=(8,), n_factors=4, **NEURAL)
        for cls in (neural.NFMRegressor, neural.NFMClassifier, neural.DeepFMRegressor)] + [
        cls(attention_size=4, n_factors=4, **NEURAL)
        for cls in (neural.AFMRegressor, neural.AFMClassifier)] + [
        cls(**NEURAL) for cls in (neural.NeuralFFMRegressor, neural.NeuralFFMClassifier)] + [
        cls(hidden_layer_sizes=(8,), n_factors=4, **NEURAL)
        for cls in (neural.IFMRegressor, neural.IFMClassifier)] + [
        cls(n_factors=4, n_channels=2, **NEURAL)
        for cls in (neural.CFMRegressor, neural.CFMClassifier, neural.CFMRanker)]


def expected_failures(estimator):
    reason = {"sgd": STOCHASTIC, "sgda": STOCHASTIC, "ftrl": STOCHASTIC, "adam": BATCHED, "bpr": PAIRED, "mcmc": SAMPLED if isinstance(estimator, (FMClassifier, FMOrdinalRegressor)) else None
              }.get(getattr(estimator, "solver", None) or getattr(estimator, "optimizer", None))
    if reason is None:
        return {}
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(SLOW_ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_conformance_of_the_other_neural_estimators(estimator, check):
    check(estimator)
