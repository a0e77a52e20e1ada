"""FFM fields resolved at each fit from the feature names: Pipeline, cross_val_score, GridSearchCV."""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fmlearn import FFMClassifier, FFMRegressor
from fmlearn.persistence import ModelFileError, load, save
from fmlearn.preprocessing import column_fields

PARAMS = {"n_factors": 2, "max_iter": 3, "tol": None, "random_state": 0}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 240
    # Rare users: folds and subsets see different sets of them, so the one-hot width changes.
    df = pd.DataFrame({"user_id": rng.zipf(1.6, n) % 60, "item": rng.choice(list("abcdef"), n),
                       "age": rng.normal(40, 10, n)})
    y = ((df.user_id % 3 == 0) ^ (df.item < "c")).astype(int).to_numpy()
    return df, y


def encoder(**kwargs):
    return ColumnTransformer(
        [("ids", OneHotEncoder(sparse_output=False, handle_unknown="ignore", **kwargs),
          ["user_id", "item"]), ("num", StandardScaler(), ["age"])]).set_output(transform="pandas")


def by_hand(ct, df, y, cls=FFMClassifier):
    """The FFM fitted on the encoder's output with the fields computed by hand."""
    return cls(fields=column_fields(ct), **PARAMS).fit(ct.transform(df), y)


def assert_same_model(a, b):
    np.testing.assert_array_equal(a.fields_, b.fields_)
    for name in ("intercept_", "coef_", "factors_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_pipeline_refit_with_another_width(frame):
    df, y = frame
    pipe = make_pipeline(encoder(), FFMClassifier(fields="auto", **PARAMS))
    widths = []
    for rows in (slice(None), slice(0, 60)):
        pipe.fit(df[rows], y[rows])
        ct, ffm = pipe[0], pipe[-1]
        widths.append(ffm.n_features_in_)
        assert_same_model(ffm, by_hand(ct, df[rows], y[rows]))
        assert list(ffm.field_names_) == ["ids__user_id", "ids__item", "num__age"]
        assert pipe.predict_proba(df).shape == (len(df), 2)
    assert widths[0] != widths[1]


def test_cross_val_score_gives_the_folds_by_hand(frame):
    df, y = frame
    folds = KFold(4, shuffle=True, random_state=0)
    pipe = make_pipeline(encoder(), FFMClassifier(fields="auto", **PARAMS))
    scores = cross_val_score(pipe, df, y, cv=folds, scoring="neg_log_loss", error_score="raise")
    expected, widths = [], set()
    for train, test in folds.split(df):
        ct = encoder().fit(df.iloc[train])
        ffm = by_hand(ct, df.iloc[train], y[train])
        widths.add(ffm.n_features_in_)
        proba = ffm.predict_proba(ct.transform(df.iloc[test]))
        expected.append(np.mean(np.log(proba[np.arange(len(test)), y[test]])))
    assert len(widths) > 1
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_grid_search_over_the_encoders_width(frame):
    df, y = frame
    pipe = make_pipeline(encoder(), FFMClassifier(fields="auto", **PARAMS))
    search = GridSearchCV(pipe, {"columntransformer__ids__max_categories": [3, None]}, cv=3,
                          scoring="neg_log_loss", error_score="raise").fit(df, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert_same_model(best[-1], by_hand(best[0], df, y))


def test_mapping_takes_the_longest_key(frame):
    df, y = frame
    fields = {"ids__user": "user", "ids__user_id": "uid", "ids": "other", "num__age": "other"}
    pipe = make_pipeline(encoder(), FFMRegressor(fields=fields, **PARAMS)).fit(df, y)
    names = pipe[0].get_feature_names_out()
    expected = ["uid" if n.startswith("ids__user_id_") else "other" for n in names]
    ffm = pipe[-1]
    assert list(ffm.field_names_[ffm.fields_]) == expected


def test_callable_gets_the_names_or_x0(frame):
    df, y = frame
    X = encoder().fit_transform(df)
    ffm = FFMClassifier(fields=lambda names: [n.rstrip("0123456789").split("_")[0] for n in names], **PARAMS)
    ffm.fit(X, y)
    assert list(ffm.field_names_) == ["ids", "num"]
    ffm.fit(X.to_numpy(), y)
    assert list(ffm.field_names_) == ["x"]
    assert_same_model(ffm, FFMClassifier(**PARAMS).fit(X.to_numpy(), y))


def test_auto_on_a_frame_and_an_array(frame):
    df, y = frame
    X = pd.get_dummies(df[["item"]]).astype(float).assign(age=df.age)
    ffm = FFMClassifier(fields="auto", **PARAMS).fit(X, y)
    assert list(ffm.field_names_) == ["item", "age"]
    assert list(FFMClassifier(fields=[7, 7, 3, 3, 3, 3, 5], **PARAMS).fit(X, y).field_names_) \
        == [3, 5, 7]


def test_errors_name_the_column(frame):
    df, y = frame
    X = encoder().fit_transform(df)
    with pytest.raises(ValueError, match=r"no key of the mapping is feature 'num__age' "
                                         r"\(column \d+\) .* e\.g\. 'num__age'"):
        FFMClassifier(fields={"ids": 0}, **PARAMS).fit(X, y)
    with pytest.raises(ValueError, match="fields='auto' takes the fields from the feature names, "
                                         "and X has none"):
        FFMClassifier(fields="auto", **PARAMS).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match=r"the field of feature 'ids__item_a' \(column \d+\) is "
                                         r"None"):
        FFMClassifier(fields=lambda names: [None if n == "ids__item_a" else 0 for n in names],
                      **PARAMS).fit(X, y)
    with pytest.raises(ValueError, match=f"X has {X.shape[1]} features, it gave 2"):
        FFMClassifier(fields=lambda names: [0, 1], **PARAMS).fit(X, y)
    with pytest.raises(ValueError, match="X has 7 features, fields has shape"):
        FFMClassifier(fields=[0, 1], **PARAMS).fit(X.iloc[:, :7], y)


def test_model_files_keep_the_resolved_fields(frame, tmp_path):
    df, y = frame
    X = encoder().fit_transform(df)
    for fields in ("auto", {"ids__user_id": 0, "ids__item": 1, "num": 2}):
        ffm = FFMClassifier(fields=fields, **PARAMS).fit(X, y)
        loaded = load(save(ffm, tmp_path / "ffm.fm"))
        assert loaded.get_params() == ffm.get_params()
        assert list(loaded.field_names_) == list(ffm.field_names_)
        np.testing.assert_array_equal(loaded.predict_proba(X), ffm.predict_proba(X))
    ffm.set_params(fields=lambda names: [0] * len(names))
    with pytest.raises(ModelFileError, match=r"set_params\(fields=estimator.fields_\)"):
        save(ffm, tmp_path / "ffm.fm")
