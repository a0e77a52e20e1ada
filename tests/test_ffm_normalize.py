"""normalize="auto" of the field-aware estimators: fits without and with instance
normalisation on the same split and start, keeps the better on validation."""
import numpy as np
import pytest

from fmlearn import FFMClassifier

FIELDS = [0] * 8 + [1] * 6


def rows(scaled):
    """One-hot rows of two fields whose label is a pair effect; ``scaled`` multiplies each row
    by a random factor the label does not depend on (normalising undoes it)."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 8, 3000), rng.integers(0, 6, 3000)
    X = np.hstack([np.eye(8)[a], np.eye(6)[b]])
    if scaled:
        X *= rng.lognormal(0.0, 1.5, 3000)[:, None]
    return X, ((a + b) % 3 == 0).astype(int)


def explicit(normalize, **params):
    """The explicit fit "auto" makes for ``normalize``: its random_state drawn from 0."""
    seed = np.random.RandomState(0).randint(2**31)
    return FFMClassifier(fields=FIELDS, n_factors=4, normalize=normalize, random_state=seed,
                         **params)


@pytest.mark.parametrize("scaled, chosen", [(False, False), (True, True)])
def test_auto_keeps_the_better_validation_score(scaled, chosen):
    X, y = rows(scaled)
    auto = FFMClassifier(fields=FIELDS, n_factors=4, normalize="auto", early_stopping=True,
                         random_state=0).fit(X, y)
    fits = {b: explicit(b, early_stopping=True).fit(X, y) for b in (False, True)}
    better = max(fits, key=lambda b: fits[b].best_validation_score_)
    assert better is chosen and auto.normalize_ is chosen and auto.model_.normalize is chosen
    assert auto.get_params()["normalize"] == "auto"
    assert auto.best_validation_score_ == fits[chosen].best_validation_score_
    np.testing.assert_array_equal(auto.predict_proba(X), fits[chosen].predict_proba(X))


def test_auto_with_eval_set_compares_last_scores_and_warm_starts_the_kept_fit():
    X, y = rows(True)
    auto = FFMClassifier(fields=FIELDS, n_factors=4, normalize="auto", max_iter=3, tol=None,
                         warm_start=True, random_state=0).fit(X[:2000], y[:2000],
                                                               eval_set=(X[2000:], y[2000:]))
    fits = {b: explicit(b, max_iter=3, tol=None).fit(X[:2000], y[:2000],
                                                     eval_set=(X[2000:], y[2000:]))
            for b in (False, True)}
    chosen = max(fits, key=lambda b: fits[b].validation_scores_[-1])
    assert auto.normalize_ is chosen
    auto.fit(X[:2000], y[:2000])  # continues the kept model: three more epochs, same choice
    assert auto.n_iter_ == 3 and auto.t_ == 6 * 2000 and auto.normalize_ is chosen


def test_auto_needs_validation_data_and_a_full_fit():
    X, y = rows(False)
    clf = FFMClassifier(fields=FIELDS, normalize="auto", max_iter=2)
    with pytest.raises(ValueError, match="normalize='auto' chooses on validation data: pass "
                                         "eval_set or set early_stopping=True"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="normalize='auto' is chosen by fit on validation data; "
                                         "partial_fit needs normalize=True or False"):
        clf.partial_fit(X, y, classes=[0, 1])
