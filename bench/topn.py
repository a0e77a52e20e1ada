"""Top-10 from an interaction matrix on MovieLens 100K u1: FMRecommender against implicit's ALS
and BPR, each tuned on a validation split with the same budget of settings, all scored by one
metric function. Writes bench/results/topn.json.

Protocol: every u1.base rating is an interaction (binary); for each user with u1.test ratings
of 4 or 5, those are the relevant items, and the user's u1.base items are filtered out of her
top 10. Cold items: 10 % of the items (fixed seed) are left out of training entirely and ranked
from their genres alone, against ranking them by their genres' popularity. Tuning: 10 % of each user's u1.base interactions (fixed seed) held out; each learner
tries its 4 settings on the rest, the best by precision@10 there is refitted on all of u1.base
and scored once on u1.test. Timing: the chosen fits alternate (A B C A B C ...), min/median/max
seconds; fmlearn and implicit use 2 threads. LightFM does not build from PyPI here (its sdist
fails to build a wheel), so its WARP is not in the comparison; the synthetic 10^8-interaction
catalogue of issue 21 is left to a bigger machine.

    python bench/topn.py [--repeats 3]
"""
import argparse

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from common import alternate, require, speedups, spread, summary_row, write_results

from fmlearn import FMRecommender
from fmlearn.recommend import ndcg_at_k, precision_at_k

SHAPE, K, THREADS = (943, 1682), 10, 2


def matrix(users, items):
    return sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=SHAPE)


def score(recommend, train, relevant):
    """precision@10 and NDCG@10 of ``recommend(users, train)``'s lists for the users with
    relevant items."""
    users = np.flatnonzero(np.diff(relevant.indptr))
    top = recommend(users, train)
    return {"precision@10": precision_at_k(top, relevant[users], K),
            "ndcg@10": ndcg_at_k(top, relevant[users], K)}


def ours(settings, item_features=None):
    def fit(train):
        return FMRecommender(max_iter=20, n_jobs=THREADS, random_state=0,
                             **settings).fit(train, item_features=item_features)

    def recommend(model, users, train):
        return model.recommend(users, N=K)[0]
    return fit, recommend, 20


def implicit_learner(kind, settings):
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    cls, epochs = {"als": (AlternatingLeastSquares, 15),
                   "bpr": (BayesianPersonalizedRanking, 100)}[kind]

    def fit(train):
        model = cls(iterations=epochs, num_threads=THREADS, random_state=0, **settings)
        with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, not BLAS's
            model.fit(train, show_progress=False)
        return model

    def recommend(model, users, train):
        return model.recommend(users, train[users], N=K, filter_already_liked_items=True)[0]
    return fit, recommend, epochs


def cold_items(base, relevant, genres, settings):
    """Items held out of training entirely (10 %, fixed seed): the model learns on the other
    items' interactions with genres as item features, then ranks the cold items for each user
    from their genres alone, against ranking them by how often their genres occur in the
    training interactions (the most-popular genres)."""
    cold = np.random.default_rng(1).random(SHAPE[1]) < 0.1
    warm_ids = np.flatnonzero(~cold)
    new_id = np.full(SHAPE[1], -1)
    new_id[warm_ids] = np.arange(warm_ids.shape[0])
    keep = ~cold[base[:, 1] - 1]
    train = sp.csr_matrix((np.ones(keep.sum(), np.float32),
                           (base[keep, 0] - 1, new_id[base[keep, 1] - 1])),
                          shape=(SHAPE[0], warm_ids.shape[0]))
    model = FMRecommender(max_iter=20, n_jobs=THREADS, random_state=0, **settings)
    model.fit(train, item_features=genres[warm_ids])
    cold_ids = np.flatnonzero(cold)
    held = relevant[:, cold_ids].tocsr()
    users = np.flatnonzero(np.diff(held.indptr))
    top, _ = model.recommend(users, N=K, items=warm_ids.shape[0] + np.arange(cold_ids.shape[0]),
                             item_features=genres[cold_ids])
    top -= warm_ids.shape[0]
    genre_counts = np.asarray(train.sum(axis=0)).ravel() @ genres[warm_ids]
    by_genres = np.argsort(-(genres[cold_ids] @ genre_counts), kind="stable")[:K]
    return {"n_cold_items": int(cold_ids.shape[0]), "n_users": int(users.shape[0]),
            "fmlearn_warp_genres": {"precision@10": precision_at_k(top, held[users], K),
                                    "ndcg@10": ndcg_at_k(top, held[users], K)},
            "most_popular_genres": {
                "precision@10": precision_at_k(np.tile(by_genres, (len(users), 1)), held[users], K),
                "ndcg@10": ndcg_at_k(np.tile(by_genres, (len(users), 1)), held[users], K)}}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    base_path, test_path, items_path = require("ml-100k/u1.base", "ml-100k/u1.test",
                                               "ml-100k/u.item")
    base, test = np.loadtxt(base_path, dtype=np.int64), np.loadtxt(test_path, dtype=np.int64)
    genres = np.loadtxt(items_path, delimiter="|", usecols=range(5, 24), encoding="latin-1")
    train = matrix(base[:, 0] - 1, base[:, 1] - 1)
    good = test[test[:, 2] >= 4]
    relevant = matrix(good[:, 0] - 1, good[:, 1] - 1)
    held = np.random.default_rng(0).random(len(base)) < 0.1
    tune_train = matrix(base[~held, 0] - 1, base[~held, 1] - 1)
    tune_valid = matrix(base[held, 0] - 1, base[held, 1] - 1)

    budgets = {  # 4 settings each
        "fmlearn_warp": lambda s: ours({"loss": "warp", **s}),
        "fmlearn_warp_genres": lambda s: ours({"loss": "warp", **s}, genres),
        "implicit_als": lambda s: implicit_learner("als", s),
        "implicit_bpr": lambda s: implicit_learner("bpr", s),
    }
    grids = {
        "fmlearn_warp": [{"n_factors": f, "eta0": e} for f in (32, 64) for e in (0.05, 0.02)],
        "implicit_als": [{"factors": f, "regularization": r} for f in (32, 64)
                         for r in (0.01, 0.1)],
        "implicit_bpr": [{"factors": f, "learning_rate": r} for f in (32, 64)
                         for r in (0.01, 0.05)],
    }
    grids["fmlearn_warp_genres"] = grids["fmlearn_warp"]
    results, chosen = {}, {}
    for name, make in budgets.items():
        tried = []
        for settings in grids[name]:
            fit, recommend, _ = make(settings)
            model = fit(tune_train)
            tried.append((score(lambda u, t: recommend(model, u, t), tune_train,
                                tune_valid)["precision@10"], settings))
        best = max(tried, key=lambda t: t[0])[1]
        chosen[name] = make(best)
        results[name] = {"settings": best, "validation": [t for t, _ in tried]}
        print(name, "chose", best, flush=True)

    counts = np.asarray(train.sum(axis=0)).ravel()
    popular = np.argsort(-counts, kind="stable")

    def most_popular(users, seen):
        return np.array([[i for i in popular[:K + seen[u].nnz] if i not in set(seen[u].indices)]
                         [:K] for u in users])
    results["most_popular"] = score(most_popular, train, relevant)

    models, seconds = alternate({name: (lambda f=fit: f(train))
                                 for name, (fit, _, _) in chosen.items()}, args.repeats)
    for name, (fit, recommend, epochs) in chosen.items():
        model = models[name]
        results[name].update(score(lambda u, t: recommend(model, u, t), train, relevant))
        results[name]["fit_seconds"] = spread(seconds[name])
        results[name]["epochs"] = epochs
        results[name]["seconds_per_epoch"] = spread([s / epochs for s in seconds[name]])
        print(name, {k: v for k, v in results[name].items() if k != "validation"}, flush=True)
    results["cold_items"] = cold_items(base, relevant, genres,
                                       results["fmlearn_warp_genres"]["settings"])
    print("cold items", results["cold_items"], flush=True)
    results["fit_speedup_vs_implicit_bpr"] = speedups(seconds["fmlearn_warp"],
                                                      seconds["implicit_bpr"])
    results["fit_speedup_vs_implicit_als"] = speedups(seconds["fmlearn_warp"],
                                                      seconds["implicit_als"])
    ours_ = results["fmlearn_warp"]
    peers = [{"name": f"implicit {kind.upper()}", "value": results[f"implicit_{kind}"]["precision@10"],
              "seconds": results[f"implicit_{kind}"]["fit_seconds"]["median"],
              "source": "same run",
              "speedup": results[f"fit_speedup_vs_implicit_{kind}"]} for kind in ("als", "bpr")]
    write_results("topn" + ("_quick" if args.quick else ""), {"protocol": __doc__.split("\n\n")[1], "threads": THREADS,
                           "repeats": args.repeats, "results": results},
                  [summary_row("MovieLens 100K u1", "top-10 from interactions",
                               "FMRecommender (WARP)", "precision@10", ours_["precision@10"],
                               ours_["fit_seconds"]["median"], "fit", peers)])


if __name__ == "__main__":
    main()
