"""The SGD kernel's step is the analytic gradient, checked against finite differences of the loss."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm

from fmlearn.model import FMModel
from fmlearn.solvers.sgd import SGDSolver, SGDState

REG = (0.01, 0.02, 0.03)


def objective(theta, shapes, x, y, weight, loss, touched):
    """Weighted loss of one row plus the L2 penalty on the parameters the row touches."""
    n, k = shapes
    intercept, coef, factors = theta[0], theta[1:n + 1], theta[n + 1:].reshape(n, k)
    score = brute_force_fm(x, intercept, coef, factors)[0]
    data = 0.5 * (score - y) ** 2 if loss == "squared" else np.logaddexp(0, -y * score)
    penalty = REG[0] * intercept**2 + REG[1] * (coef[touched] ** 2).sum() \
        + REG[2] * (factors[touched] ** 2).sum()
    return weight * (data + 0.5 * penalty)


@pytest.mark.parametrize("loss, y", [("squared", 0.7), ("logistic", -1.0), ("logistic", 1.0)])
@pytest.mark.parametrize("weight", [1.0, 2.5])
def test_one_sgd_step_is_the_finite_difference_gradient(loss, y, weight):
    rng = np.random.default_rng(3)
    n, k = 6, 3
    x = sp.csr_matrix(np.array([[0.5, 0.0, -1.2, 0.0, 2.0, 0.3]]))
    touched = x.indices
    model = FMModel(0.2, rng.normal(size=n), rng.normal(size=(n, k)))
    theta = np.concatenate([[model.intercept], model.coef, model.factors.ravel()])
    # With one row and a constant unit step, theta_old - theta_new is the gradient.
    solver = SGDSolver(loss, "constant", 1.0, 0.25, *REG, None)
    solver.epoch(model, x, np.array([y]), np.array([weight]), SGDState.initial(model),
                 np.random.default_rng(0))
    step = theta - np.concatenate([[model.intercept], model.coef, model.factors.ravel()])

    eps = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (objective(up, (n, k), x, y, weight, loss, touched)
                      - objective(down, (n, k), x, y, weight, loss, touched)) / (2 * eps)
    np.testing.assert_allclose(step, numeric, rtol=1e-6, atol=1e-8)
    untouched = np.setdiff1d(np.arange(n), touched)
    assert np.all(step[1:n + 1][untouched] == 0)


def test_gradient_clipping_bounds_every_coordinate():
    rng = np.random.default_rng(4)
    model = FMModel(0.0, rng.normal(size=3), rng.normal(size=(3, 2)))
    before = np.concatenate([[model.intercept], model.coef, model.factors.ravel()])
    x = sp.csr_matrix(np.array([[100.0, -50.0, 80.0]]))
    SGDSolver("squared", "constant", 1.0, 0.25, 0.0, 0.0, 0.0, 0.5).epoch(
        model, x, np.array([1e4]), np.ones(1), SGDState.initial(model), np.random.default_rng(0))
    step = before - np.concatenate([[model.intercept], model.coef, model.factors.ravel()])
    np.testing.assert_allclose(np.abs(step), 0.5)


def test_adagrad_step_divides_by_the_root_of_the_accumulated_squares():
    model = FMModel(0.0, np.zeros(1), np.zeros((1, 0)))
    x = sp.csr_matrix(np.array([[2.0]]))
    state = SGDState.initial(model)
    # squared loss at score 0, target 3: gradient of w is -3 * 2 = -6, accumulator 1 + 36.
    SGDSolver("squared", "adagrad", 0.1, 0.25, 0.0, 0.0, 0.0, None).epoch(
        model, x, np.array([3.0]), np.ones(1), state, np.random.default_rng(0))
    np.testing.assert_allclose(model.coef, [0.1 * 6 / np.sqrt(37)])
    np.testing.assert_allclose(state.acc_coef, [37.0])


def test_target_range_stops_the_push_past_the_bound_on_the_targets_side():
    # Score 1.5 for target 1 in range [-1, 1]: clipped to 1, zero error, nothing moves.
    model = FMModel(1.5, np.zeros(2), np.zeros((2, 1)))
    x = sp.csr_matrix(np.array([[1.0, 1.0]]))
    solver = SGDSolver("squared", "constant", 0.1, 0.25, 0.0, 0.0, 0.0, None, target_range=(-1, 1))
    solver.epoch(model, x, np.array([1.0]), np.ones(1), SGDState.initial(model))
    assert model.intercept == 1.5 and not model.coef.any()
    # Target -1: the error is measured from the bound, 1 - (-1) = 2, not from 1.5.
    solver.epoch(model, x, np.array([-1.0]), np.ones(1), SGDState.initial(model))
    np.testing.assert_allclose(model.intercept, 1.5 - 0.1 * 2)


def test_invscaling_step_is_eta0_over_t_to_the_power_t():
    model = FMModel(0.0, np.zeros(1), np.zeros((1, 0)))
    state = SGDState.initial(model)
    state.step[0] = 99  # the 100th sample: eta = 0.5 / 100**0.5 = 0.05
    x = sp.csr_matrix(np.array([[2.0]]))
    SGDSolver("squared", "invscaling", 0.5, 0.5, 0.0, 0.0, 0.0, None).epoch(
        model, x, np.array([3.0]), np.ones(1), state)
    np.testing.assert_allclose(model.coef, [0.05 * 6])
    np.testing.assert_allclose(model.intercept, 0.05 * 3)
    assert state.step[0] == 100
