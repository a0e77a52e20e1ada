"""SageMaker's FM defaults through ``solver="adam"`` beside our SGD's: accuracy and speed.

A SageMaker user's job as ``fmlearn train`` maps it (:func:`fmlearn.cli.sagemaker.estimator_spec`:
every hyperparameter at SageMaker's default but ``num_factors=64`` and ``epochs``), next to
fmlearn's SGD at its defaults (``n_factors=64``, ``early_stopping=True``: frappe's validation
file as ``eval_set``, MovieLens the 10 % split), seeds 0 .. SEEDS - 1.

- frappe: ``binary_classifier`` / ``FMClassifier`` on frappe.train.reconstructed.libfm, test
  AUC and log-loss on frappe.test.libfm (5382 features).
- MovieLens 100K u1: ``regressor`` / ``FMRegressor`` on user and item one-hot, test RMSE on
  u1.test.
- Seconds per epoch on frappe (k=64): Adam (batches of 1000) and SGD, ``n_jobs`` 1 and 2,
  REPEATS fits of EPOCHS epochs each, the four in turn (the machine's load shifts), after a
  warm-up fit (compilation excluded).

    python bench/sagemaker_defaults.py
"""
import numpy as np
from common import alternate, load_frappe, spread, write_results
from defaults import movielens
from sklearn.metrics import log_loss, roc_auc_score

from fmlearn import FMClassifier, FMRegressor
from fmlearn.cli.sagemaker import estimator_spec

K = 64
SEEDS = 3
SAGEMAKER_EPOCHS = (1, 10, 50)  # 1 is SageMaker's default
EPOCHS, REPEATS = 3, 5


def sagemaker(predictor_type, n_features, epochs, seed):
    spec, warnings = estimator_spec({"predictor_type": predictor_type, "num_factors": str(K),
                                     "feature_dim": str(n_features), "epochs": str(epochs)})
    assert not warnings
    return spec.estimator().set_params(random_state=seed)


def score(est, X_test, y_test):
    if isinstance(est, FMRegressor):
        return {"rmse": float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))}
    proba = est.predict_proba(X_test)[:, 1]
    return {"auc": float(roc_auc_score(y_test, proba)), "log_loss": float(log_loss(y_test, proba))}


def accuracy(name, predictor_type, train, test, eval_set, Estimator):
    rows = {}
    for epochs in SAGEMAKER_EPOCHS:
        runs = [score(sagemaker(predictor_type, train[0].shape[1], epochs, seed).fit(*train),
                      *test) for seed in range(SEEDS)]
        rows[f"sagemaker_defaults_epochs_{epochs}"] = {m: spread([r[m] for r in runs])
                                                       for m in runs[0]}
    runs, epochs_run = [], []
    for seed in range(SEEDS):
        est = Estimator(n_factors=K, early_stopping=True, random_state=seed)
        est.fit(*train, eval_set=eval_set)
        runs.append(score(est, *test))
        epochs_run.append(est.n_iter_)
    rows["sgd_defaults_early_stopping"] = {**{m: spread([r[m] for r in runs]) for m in runs[0]},
                                           "epochs": epochs_run}
    for row, values in rows.items():
        print(name, row, {m: v["median"] if isinstance(v, dict) else v
                          for m, v in values.items()}, flush=True)
    return rows


def seconds_per_epoch(X, y):
    fits = {}
    for solver in ("adam", "sgd"):
        for n_jobs in (1, 2):
            est = FMClassifier(solver=solver, n_factors=K, max_iter=1, tol=None, n_jobs=n_jobs,
                               random_state=0).fit(X[:2000], y[:2000])
            fits[f"{solver}_n_jobs_{n_jobs}"] = est.set_params(max_iter=EPOCHS).fit
    _, seconds = alternate({name: lambda fit=fit: fit(X, y) for name, fit in fits.items()},
                           REPEATS)
    out = {name: spread([s / EPOCHS for s in times]) for name, times in seconds.items()}
    for name, values in out.items():
        print("frappe seconds per epoch", name, values, flush=True)
    return out


def main():
    train, valid, test = load_frappe()
    ml_train, ml_test = movielens("u1.base"), movielens("u1.test")
    results = {
        "k": K, "seeds": SEEDS,
        "frappe": accuracy("frappe", "binary_classifier", train, test, valid, FMClassifier),
        "movielens_u1": accuracy("movielens", "regressor", ml_train, ml_test, None,
                                 FMRegressor),
        "frappe_seconds_per_epoch": seconds_per_epoch(*train),
    }
    write_results("sagemaker_defaults", results)


if __name__ == "__main__":
    main()
