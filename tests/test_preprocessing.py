"""Tables to FM input: multi-valued cells and the field of each output column."""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fmlearn.preprocessing import MultiValueEncoder, column_fields

FRAME = pd.DataFrame({
    "user": [1, 2, 3, 1, 2],
    "item": ["a", "b", "a", "c", "c"],
    "age": [20.0, 30.0, np.nan, 20.0, 30.0],
    "genres": ["Action|Comedy", "Comedy", None, "Drama|Action|Comedy", ""],
    "title": ["x y", "y z", "z", "x", "w"],
})


@pytest.mark.parametrize("normalize, weights", [(None, [1, 1, 1]), ("l1", [1 / 3] * 3),
                                                ("l2", [3 ** -0.5] * 3)])
def test_multi_value_cells_become_weighted_indicators(normalize, weights):
    enc = MultiValueEncoder(normalize=normalize).fit(FRAME[["genres"]])
    assert list(enc.get_feature_names_out()) == ["genres_Action", "genres_Comedy", "genres_Drama"]
    X = enc.transform(FRAME[["genres"]]).toarray()
    np.testing.assert_allclose(X[3], weights)
    np.testing.assert_allclose(X[2], 0)
    np.testing.assert_allclose(X[4], 0)


def test_lists_unseen_values_and_rare_values():
    tags = pd.DataFrame({"tags": [["a", "b"], ["a"], ["c"]]})
    enc = MultiValueEncoder(min_frequency=2).fit(tags)
    assert enc.vocabularies_ == [{"a": 0}]
    new = pd.DataFrame({"tags": [["a", "zzz"]]})
    np.testing.assert_array_equal(enc.transform(new).toarray(), [[1.0]])


def test_each_column_normalised_on_its_own():
    enc = MultiValueEncoder(normalize="l1").fit([["a|b", "x"]])
    np.testing.assert_allclose(enc.transform([["a|b", "x"]]).toarray(), [[0.5, 0.5, 1.0]])
    assert enc.field_widths() == [2, 1]


def test_column_fields_follow_the_transformers():
    ct = ColumnTransformer([
        ("ids", OneHotEncoder(drop="first"), ["user", "item"]),
        ("age", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]),
        ("genres", MultiValueEncoder(), ["genres"]),
        ("title", HashingVectorizer(n_features=8), "title"),
        ("raw", "passthrough", ["user"]),
    ]).fit(FRAME)
    fields = column_fields(ct)
    assert fields.shape == (ct.transform(FRAME).shape[1],)
    np.testing.assert_array_equal(
        fields, [0, 0, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5])


def test_infrequent_categories_share_one_column():
    ct = ColumnTransformer([("ids", OneHotEncoder(min_frequency=2), ["user", "item"])]).fit(FRAME)
    fields = column_fields(ct)
    assert fields.shape == (ct.transform(FRAME).shape[1],)
    np.testing.assert_array_equal(fields, [0, 0, 0, 1, 1, 1])
