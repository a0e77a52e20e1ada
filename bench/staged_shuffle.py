"""Do staged rows train as well as a shuffled copy? Validation curves on rows sorted by user.

A fit whose rows take more than ``COPY_ROWS_BYTES`` stages them (a group of blocks of 256
rows at a time, in a random order of blocks, the group's rows scattered at random) instead of
training on a copy shuffled row by row. Rows stored in an order that matters, here MovieLens
100K's u1.base sorted by user and item, are where the two could differ. For ``SEEDS`` seeds
each, this fits ``FMRegressor`` (k=16, AdaGrad, ``EPOCHS`` epochs, no early stopping, the
features renumbered by frequency as a large model's are) over a copy and staged (both forced
whatever the size), scoring u1.test after every epoch, and writes the RMSE curves, their
means and the best epoch of each fit to bench/results/staged_shuffle.json.

    python bench/staged_shuffle.py
"""
import numpy as np
from common import movielens, write_results

from fmlearn import FMRegressor
from fmlearn.solvers import sgd

EPOCHS = 30
SEEDS = 3


def main():
    (X, y), (X_test, y_test) = movielens("u1.base"), movielens("u1.test")
    # Renumber whatever the model's size, as a model beyond the caches is.
    sgd.OUT_OF_CACHE_BYTES, sgd.RENUMBER_FROM_VISITS_PER_FEATURE = 0, 0
    curves = {}
    for name, copy_bytes in (("copy", 2**62), ("staged", 0)):
        sgd.COPY_ROWS_BYTES = copy_bytes
        sgd.COPY_ROWS_SHARE = 1.0 if copy_bytes else 0.0
        runs = []
        for seed in range(SEEDS):
            est = FMRegressor(n_factors=16, max_iter=EPOCHS, tol=None, random_state=seed)
            est.fit(X, y, eval_set=(X_test, y_test))
            runs.append([-s for s in est.validation_scores_])  # RMSE
        curves[name] = runs
        best = [min(r) for r in runs]
        print(f"{name}: best test RMSE per seed {np.round(best, 4).tolist()}, mean curve at "
              f"epochs 1, 5, 10, 30: {np.round(np.mean(runs, 0)[[0, 4, 9, -1]], 4).tolist()}",
              flush=True)
    write_results("staged_shuffle", {
        "data": "ml-100k u1.base (sorted by user, item) -> u1.test", "n_factors": 16,
        "epochs": EPOCHS, "seeds": SEEDS, "rmse": curves,
        "mean_rmse": {k: np.mean(v, 0).tolist() for k, v in curves.items()},
        "best_rmse": {k: [min(r) for r in v] for k, v in curves.items()}})


if __name__ == "__main__":
    main()
