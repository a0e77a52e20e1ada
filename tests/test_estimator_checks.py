"""scikit-learn's conformance checks for every estimator."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from fmlearn import FMClassifier, FMRegressor

# A weight of 2 scales a row's gradient; repeating the row gives two smaller steps at other
# points of the epoch. Stochastic solvers therefore differ (scikit-learn's own SGD estimators
# are exempted from this check for the same reason); test_estimators.py checks what does hold:
# zero weights remove a row's influence on the gradient steps.
STOCHASTIC = "per-sample SGD: a weighted row and a repeated row give different updates"


def expected_failures(estimator):
    return {"check_sample_weight_equivalence_on_dense_data": STOCHASTIC,
            "check_sample_weight_equivalence_on_sparse_data": STOCHASTIC}


@parametrize_with_checks([FMRegressor(random_state=0), FMClassifier(random_state=0)],
                         expected_failed_checks=expected_failures)
def test_sklearn_conformance(estimator, check):
    check(estimator)
