"""Bad input raises ValueError naming the problem, before any kernel runs."""
import numpy as np
import pytest
import scipy.sparse as sp

from fmlearn import FMClassifier, FMRegressor

X = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.5], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
Y = np.array([1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
@pytest.mark.parametrize("fmt", ["dense", "csr", "dok"])
def test_non_finite_X(value, word, fmt):
    bad = X.copy()
    bad[1, 2] = value
    bad = bad if fmt == "dense" else sp.csr_matrix(bad).asformat(fmt)
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        FMRegressor().fit(bad, Y)


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_y(value, word):
    with pytest.raises(ValueError, match=f"Input y contains {word}"):
        FMRegressor().fit(X, [1.0, value, 2.0, 3.0])


def test_y_too_large_for_float32():
    with pytest.raises(ValueError, match="too large for the model dtype float32"):
        FMRegressor().fit(X, [1.0, 1e300, 2.0, 3.0])


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[4, 3\]"):
        FMRegressor().fit(X, Y[:3])


def test_predict_with_another_feature_count():
    reg = FMRegressor(max_iter=2).fit(X, Y)
    with pytest.raises(ValueError, match="X has 2 features, but FMRegressor is expecting 3"):
        reg.predict(X[:, :2])


def test_empty_X():
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        FMRegressor().fit(np.empty((0, 3)), [])


def test_single_class():
    with pytest.raises(ValueError, match="only one class: 'a'"):
        FMClassifier().fit(X, ["a"] * 4)


def test_more_than_two_classes_with_a_binary_learner():
    with pytest.raises(ValueError, match="Only binary classification is supported.*3 classes"):
        FMClassifier(solver="als").fit(X, [0, 1, 2, 1])


def test_non_numeric_y_for_the_regressor():
    with pytest.raises(ValueError, match="FMRegressor needs numeric targets; y holds 'a', which is not a number"):
        FMRegressor().fit(X, ["a", "b", "c", "d"])


def test_continuous_y_for_the_classifier():
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        FMClassifier().fit(X, Y + 0.5)


def test_negative_sample_weight():
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        FMRegressor().fit(X, Y, sample_weight=[1, -1, 1, 1])


def test_all_zero_sample_weight():
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        FMRegressor().fit(X, Y, sample_weight=np.zeros(4))


def test_partial_fit_needs_classes_first():
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        FMClassifier().partial_fit(X, [0, 1, 0, 1])


def test_partial_fit_label_outside_classes():
    with pytest.raises(ValueError, match=r"labels \[7\] that are not among the classes \[0, 1\]"):
        FMClassifier().partial_fit(X, [0, 1, 7, 1], classes=[0, 1])


def test_invalid_parameter_names_the_parameter():
    with pytest.raises(ValueError, match="'learning_rate' parameter of FMRegressor must be"):
        FMRegressor(learning_rate="fast").fit(X, Y)


def test_divergence_names_the_remedy_and_keeps_the_previous_model():
    reg = FMRegressor(learning_rate="constant", eta0=1e3, max_iter=50, random_state=0,
                      dtype="float64")
    with pytest.raises(ValueError, match="Floating-point overflow at epoch .*Lower eta0"):
        reg.fit(X * 1e3, Y * 1e6)
    assert not hasattr(reg, "n_iter_")
    assert not hasattr(reg, "model_")  # a fresh fit trains its new model in place


def test_partial_fit_updates_in_place_and_a_diverging_pass_resets():
    reg = FMRegressor(learning_rate="constant", eta0=1e-3, random_state=0)
    model = reg.partial_fit(X, Y).model_
    assert reg.partial_fit(X, Y).model_ is model
    reg.set_params(eta0=1e3)
    with pytest.raises(ValueError, match="Floating-point overflow at epoch 1: the parameters are no "
                                         "longer finite. partial_fit updates the parameters in "
                                         "place, so the estimator was reset to unfitted."):
        reg.partial_fit(X * 1e3, Y * 1e6)
    assert not hasattr(reg, "model_")
    assert np.isfinite(reg.partial_fit(X, Y).predict(X)).all()


def test_zero_threads():
    with pytest.raises(ValueError, match="n_jobs == 0 has no meaning"):
        FMRegressor(n_jobs=0).fit(X, Y)
