"""From tables to FM input: multi-valued columns, hashed raw tokens, and the field of each output column."""
import math
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, normalize
from sklearn.utils import murmurhash3_32
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data


class _RawCells:
    """Transformers of raw cells: strings, categories and missing values."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags


class MultiValueEncoder(_RawCells, TransformerMixin, BaseEstimator):
    """Encode columns holding several values per cell ("Action|Comedy", tag lists) as indicators.

    Each input column gets its own vocabulary (scikit-learn's ``CountVectorizer``
    with the values split at ``separator``); a cell's values become ones in
    their columns, optionally normalised per cell as libFM does for implicit
    feedback, so that a movie with many genres does not outweigh one with few.

    Parameters
    ----------
    separator : str, default="|"
        What separates the values within a cell. Cells may also be lists or
        tuples of values; missing cells (None, NaN) have no value.
    normalize : {"l1", "l2"} or None, default=None
        Scale each cell's indicators to sum to one (``"l1"``: 1/n each) or to
        unit length (``"l2"``: 1/sqrt(n) each, as in SVD++).
    min_frequency : int, default=1
        Values seen in fewer training cells are ignored.

    Attributes
    ----------
    vocabularies_ : list of dict
        For each input column, each value's output column within that column's block.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when fitted on a DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> genres = pd.DataFrame({"genres": ["Action|Comedy", "Comedy", None]})
    >>> enc = MultiValueEncoder(normalize="l1").fit(genres)
    >>> enc.get_feature_names_out()
    array(['genres_Action', 'genres_Comedy'], dtype=object)
    >>> enc.transform(genres).toarray()
    array([[0.5, 0.5],
           [0. , 1. ],
           [0. , 0. ]])
    """

    _parameter_constraints: dict = {
        "separator": [str],
        "normalize": [StrOptions({"l1", "l2"}), None],
        "min_frequency": [int],
    }

    def __init__(self, separator="|", normalize=None, min_frequency=1):
        self.separator = separator
        self.normalize = normalize
        self.min_frequency = min_frequency

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn each column's values.

        Examples
        --------
        >>> MultiValueEncoder().fit([["a|b"], ["c"]]).vocabularies_
        [{'a': 0, 'b': 1, 'c': 2}]
        """
        columns = self._columns(X, reset=True)
        self.vocabularies_ = []
        for column in columns:
            vectorizer = self._vectorizer()
            try:
                vectorizer.fit(column)
            except ValueError:  # no value reaches min_frequency
                vectorizer.vocabulary_ = {}
            self.vocabularies_.append(dict(sorted(vectorizer.vocabulary_.items(),
                                                  key=lambda item: item[1])))
        return self

    def transform(self, X):
        """Indicators of each cell's values, a CSR matrix with one block of columns per input column.

        Values not seen in ``fit`` are ignored.

        Examples
        --------
        >>> MultiValueEncoder().fit([["a|b"]]).transform([["b|z"]]).toarray()
        array([[0., 1.]])
        """
        check_is_fitted(self)
        blocks = []
        for column, vocabulary in zip(self._columns(X, reset=False), self.vocabularies_):
            vectorizer = self._vectorizer(vocabulary=vocabulary or {"": 0})
            block = vectorizer.transform(column).astype(np.float64)
            blocks.append(block if vocabulary else block[:, :0])
        X = sp.hstack(blocks, format="csr")
        if self.normalize is None:
            return X
        # Normalised per input cell, so each block separately.
        starts = np.cumsum([0] + [len(v) for v in self.vocabularies_])
        return sp.hstack([normalize(X[:, a:b], norm=self.normalize) for a, b in
                          zip(starts[:-1], starts[1:])], format="csr")

    def get_feature_names_out(self, input_features=None):
        """``"<column>_<value>"`` for every output column.

        Examples
        --------
        >>> MultiValueEncoder().fit([["x|y"]]).get_feature_names_out(["tags"])
        array(['tags_x', 'tags_y'], dtype=object)
        """
        check_is_fitted(self)
        if input_features is None:
            input_features = getattr(self, "feature_names_in_",
                                     [f"x{i}" for i in range(self.n_features_in_)])
        return np.array([f"{name}_{value}" for name, vocabulary in
                         zip(input_features, self.vocabularies_) for value in vocabulary],
                        dtype=object)

    def field_widths(self):
        """The number of output columns of each input column (for :func:`column_fields`).

        Examples
        --------
        >>> MultiValueEncoder().fit([["a|b", "c"]]).field_widths()
        [2, 1]
        """
        check_is_fitted(self)
        return [len(v) for v in self.vocabularies_]

    def _vectorizer(self, vocabulary=None):
        separator = self.separator
        return CountVectorizer(
            tokenizer=lambda cell: [v for v in cell.split(separator) if v],
            token_pattern=None, lowercase=False, binary=True, vocabulary=vocabulary,
            min_df=1 if vocabulary else self.min_frequency)

    def _columns(self, X, reset):
        X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=reset)
        return [[_as_text(cell, self.separator) for cell in X[:, j]] for j in range(X.shape[1])]


def _as_text(cell, separator):
    if isinstance(cell, (list, tuple, np.ndarray)):
        return separator.join(str(v) for v in cell)
    if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
        return ""
    return str(cell)


def column_fields(column_transformer):
    """The field of every output column of a fitted ``ColumnTransformer``.

    A field-aware FM learns one latent vector per feature and field; this gives
    each output column its field: one field per input column of a
    ``OneHotEncoder`` or :class:`MultiValueEncoder`, one per output column of a
    transformer that keeps its width (scalers, ``"passthrough"``), and one for
    the whole output of any other transformer (hashing, text vectorizers).
    The last step of a ``Pipeline`` decides.

    Parameters
    ----------
    column_transformer : sklearn.compose.ColumnTransformer, fitted

    Returns
    -------
    fields : ndarray of int64, shape (n_output_columns,)
        Field ids 0, 1, ... in the order of the output columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.preprocessing import OneHotEncoder, StandardScaler
    >>> frame = pd.DataFrame({"user": [1, 2, 3], "item": ["a", "b", "a"], "age": [20., 30., 40.]})
    >>> ct = ColumnTransformer([("ids", OneHotEncoder(), ["user", "item"]),
    ...                         ("num", StandardScaler(), ["age"])]).fit(frame)
    >>> column_fields(ct)
    array([0, 0, 0, 1, 1, 2])
    """
    check_is_fitted(column_transformer)
    n_out = sum(s.stop - s.start for s in column_transformer.output_indices_.values())
    fields = np.empty(n_out, dtype=np.int64)
    next_field = 0
    for name, transformer, _ in column_transformer.transformers_:
        block = column_transformer.output_indices_[name]
        width = block.stop - block.start
        if width == 0:
            continue
        widths = _field_widths(transformer, width)
        fields[block] = next_field + np.repeat(np.arange(len(widths)), widths)
        next_field += len(widths)
    return fields


def _field_widths(transformer, width):
    if isinstance(transformer, Pipeline):
        transformer = transformer.steps[-1][1]
    if isinstance(transformer, OneHotEncoder):
        return [_one_hot_width(transformer, j) for j in range(len(transformer.categories_))]
    if isinstance(transformer, (MultiValueEncoder, FieldHasher)):
        return transformer.field_widths()
    n_in = getattr(transformer, "n_features_in_", None)
    if transformer == "passthrough" or n_in == width:
        return [1] * width
    return [width]


def _one_hot_width(encoder, j):
    width = len(encoder.categories_[j])
    infrequent = getattr(encoder, "infrequent_categories_", None)
    if infrequent is not None and infrequent[j] is not None:
        width -= len(infrequent[j]) - 1
    if encoder.drop_idx_ is not None and encoder.drop_idx_[j] is not None:
        width -= 1
    return width


class FieldHasher(_RawCells, TransformerMixin, BaseEstimator):
    """Hash each column's raw values into a block of columns of its own: a fixed width, no vocabulary.

    For click logs whose categories have no bound (Criteo's). Each input column
    is a field with its own block of output columns; the value ``v`` of column
    ``c`` becomes a one in column ``murmurhash3_32("c-v") % width`` of the
    block, so a row has one non-zero per field, equal values in different
    columns never share a column, and values first seen at ``transform`` need no
    refit. Count columns are binned as in the LIBFFM Criteo winning solution: a
    count ``v > 2`` becomes the token ``int(log(v) ** 2)``, any other ``"SP<v>"``.
    A missing value (None, NaN, ``""``) is a token of its own.

    Parameters
    ----------
    n_features : int, default=2**20
        The output width, split into one block per input column of
        ``n_features // n_columns`` columns (the first ``n_features % n_columns``
        blocks get one more).
    counts : "auto", array-like of column names or positions, or None, default="auto"
        The count columns. ``"auto"`` takes the numeric columns of a DataFrame
        (all columns of a numeric array); None treats every value as a token.

    Attributes
    ----------
    fields_ : ndarray of int64, shape (n_features,)
        The field (input column) of every output column, for ``FFMClassifier(fields=...)``.
    count_columns_ : ndarray of bool, shape (n_columns,)
        Which input columns are binned as counts.
    n_collisions_ : int
        Distinct (column, token) pairs of the training data that share an output
        column with another: the number of distinct pairs minus the number of
        output columns they reach.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when fitted on a DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"I1": [0.0, 30.0, None], "C1": ["68fd1e64", "05db9164", None]})
    >>> hasher = FieldHasher(n_features=20).fit(frame)
    >>> hasher.count_columns_
    array([ True, False])
    >>> hasher.transform(frame).indices.reshape(-1, 2)   # each row's column in each field
    array([[ 6, 10],
           [ 1, 13],
           [ 7, 14]], dtype=int32)
    >>> hasher.fields_
    array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    """

    _parameter_constraints: dict = {
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "counts": [StrOptions({"auto"}), "array-like", None],
    }

    def __init__(self, n_features=2**20, counts="auto"):
        self.n_features = n_features
        self.counts = counts

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the columns, which of them are counts, and count the collisions.

        Examples
        --------
        >>> FieldHasher(n_features=2).fit([["a", "b"], ["c", "b"]]).n_collisions_
        1
        """
        columns = self._columns(X, reset=True)
        self.count_columns_ = self._count_columns(X, columns)
        if self.n_features < self.n_features_in_:
            raise ValueError(f"n_features={self.n_features} is smaller than the number of "
                             f"columns ({self.n_features_in_}); each column needs one at least")
        widths = self.field_widths()
        self.fields_ = np.repeat(np.arange(len(widths), dtype=np.int64), widths)
        self.n_collisions_ = 0
        for (name, column), is_count, width in zip(columns, self.count_columns_, widths):
            codes, tokens, buckets = self._hash(name, column, is_count, width)
            seen = {tokens[code]: buckets[code] for code in np.unique(codes)}
            self.n_collisions_ += len(seen) - len(set(seen.values()))
        return self

    def transform(self, X):
        """A CSR matrix of ones, one per input column and row.

        Examples
        --------
        >>> hasher = FieldHasher(n_features=20, counts=None).fit([["a", "b"]])
        >>> hasher.transform([["a", "b"], ["never seen", None]]).indices.reshape(-1, 2)
        array([[ 1, 18],
               [ 9, 12]], dtype=int32)
        """
        check_is_fitted(self)
        columns = self._columns(X, reset=False)
        widths = self.field_widths()
        starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
        n = len(columns[0][1])
        indices = np.empty((n, len(columns)), dtype=np.int64)
        for j, ((name, column), is_count, width) in enumerate(
                zip(columns, self.count_columns_, widths)):
            codes, _, buckets = self._hash(name, column, is_count, width)
            indices[:, j] = starts[j] + buckets[codes]
        return sp.csr_matrix((np.ones(indices.size), indices.ravel(), np.arange(n + 1) * len(columns)),
                             shape=(n, self.n_features))

    def get_feature_names_out(self, input_features=None):
        """``"<column>_<i>"`` for the i-th output column of each input column's block.

        Examples
        --------
        >>> FieldHasher(n_features=3).fit([[1.0, 2.0]]).get_feature_names_out(["I1", "I2"])
        array(['I1_0', 'I1_1', 'I2_0'], dtype=object)
        """
        check_is_fitted(self)
        input_features = _check_feature_names_in(self, input_features)
        return np.array([f"{name}_{i}" for name, width in zip(input_features, self.field_widths())
                         for i in range(width)], dtype=object)

    def field_widths(self):
        """The number of output columns of each input column (for :func:`column_fields`).

        Examples
        --------
        >>> FieldHasher(n_features=5).fit([["a", "b"]]).field_widths()
        [3, 2]
        """
        check_is_fitted(self, "n_features_in_")
        share, extra = divmod(self.n_features, self.n_features_in_)
        return [share + (j < extra) for j in range(self.n_features_in_)]

    def _count_columns(self, X, columns):
        dtypes = X.dtypes if hasattr(X, "dtypes") else [column.dtype for _, column in columns]
        if isinstance(self.counts, str):
            return np.array([pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d)
                             for d in dtypes])
        mask = np.zeros(len(columns), dtype=bool)
        names = list(getattr(X, "columns", range(len(columns))))
        for column in [] if self.counts is None else self.counts:
            if column not in names:
                raise ValueError(f"counts names column {column!r}, which X does not have")
            mask[names.index(column)] = True
        return mask

    def _columns(self, X, reset):
        array = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=reset)
        names = getattr(self, "feature_names_in_", [f"x{j}" for j in range(array.shape[1])])
        return [(str(name), array[:, j]) for j, name in enumerate(names)]

    @staticmethod
    def _hash(name, column, is_count, width):
        """Each row's code, the distinct tokens and their buckets; code -1 (missing) is the last, ""."""
        if is_count:
            numbers = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce").to_numpy(float)
            bad = np.flatnonzero(~np.isfinite(numbers) & ~pd.isna(pd.Series(column, dtype=object))
                                 .to_numpy())
            if len(bad):
                raise ValueError(f"column {name!r}, row {bad[0]}: {str(column[bad[0]])!r} is not a "
                                 "finite count")
            codes, uniques = pd.factorize(numbers)
            tokens = [_count_token(v) for v in uniques]
        else:
            codes, uniques = pd.factorize(pd.Series(column, dtype=object))
            tokens = [str(v) for v in uniques]
        tokens.append("")
        buckets = np.array([murmurhash3_32(f"{name}-{token}", positive=True) % width
                            for token in tokens], dtype=np.int64)
        return codes, tokens, buckets


def _count_token(value):
    """LIBFFM's Criteo binning: int(log(v)**2) above 2, "SP<v>" otherwise."""
    if value > 2:
        return str(int(math.log(value) ** 2))
    return f"SP{int(value) if float(value).is_integer() else value}"
