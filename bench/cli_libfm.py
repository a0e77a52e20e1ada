"""`fmlearn train` with libFM's flags on MovieLens 100K u1, beside the Python API with the same
seed: the same predictions and RMSE. Writes bench/results/cli_libfm.json."""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import require, write_results


def write_libfm(path, ratings, n_users):
    path.write_text("".join(f"{r} {u - 1}:1 {n_users + i - 1}:1\n" for u, i, r in ratings[:, :3]))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    base, test_file = require("ml-100k/u1.base", "ml-100k/u1.test")
    from fmlearn import FMRegressor
    from fmlearn.io import load_libsvm

    iterations = 20 if args.quick else 100
    api_dtype = np.float32  # -out prints each float32 prediction with its shortest repr
    train, test = np.loadtxt(base, dtype=np.int64), np.loadtxt(test_file, dtype=np.int64)
    n_users = int(max(train[:, 0].max(), test[:, 0].max()))
    n_features = n_users + int(max(train[:, 1].max(), test[:, 1].max()))
    with tempfile.TemporaryDirectory(prefix="fmlearn-cli-") as tmp:
        tmp = Path(tmp)
        write_libfm(tmp / "train.libfm", train, n_users)
        write_libfm(tmp / "test.libfm", test, n_users)
        (tmp / "groups.txt").write_text("0\n" * n_users + "1\n" * (n_features - n_users))
        command = ["-task", "r", "-train", tmp / "train.libfm", "-test", tmp / "test.libfm",
                   "-dim", "1,1,10", "-iter", str(iterations), "-method", "mcmc",
                   "-init_stdev", "0.1", "-meta", tmp / "groups.txt", "-seed", "1",
                   "-out", tmp / "pred.txt"]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fmlearn.cli", "train", *map(str, command)],
                       check=True)
        cli_seconds = time.perf_counter() - start
        cli_pred = np.loadtxt(tmp / "pred.txt", dtype=api_dtype)
        X, y = load_libsvm(tmp / "train.libfm", n_features=n_features)
        X_test, y_test = load_libsvm(tmp / "test.libfm", n_features=n_features)
    groups = np.r_[np.zeros(n_users, int), np.ones(n_features - n_users, int)]
    model = FMRegressor(solver="mcmc", n_factors=10, max_iter=iterations, init_std=0.1,
                        burn_in=0, random_state=1, tol=None, reg_intercept=0.0, reg_linear=0.0,
                        reg_factors=0.0)
    api_pred = model.fit(X, y, feature_groups=groups).predict(X_test)
    rmse = {name: float(np.sqrt(np.mean((pred - y_test) ** 2)))
            for name, pred in (("cli", cli_pred), ("python_api", api_pred))}
    print(f"u1 MCMC k=10, {iterations} iterations: CLI RMSE {rmse['cli']:.4f}, "
          f"Python API RMSE {rmse['python_api']:.4f}")
    write_results("cli_libfm" + ("_quick" if args.quick else ""), {
        "command": "fmlearn train " + " ".join(str(c) for c in command),
        "iterations": iterations, "rmse": rmse, "cli_seconds": cli_seconds,
        "identical_predictions": bool(np.array_equal(cli_pred, api_pred)),
        "max_abs_prediction_difference": float(np.max(np.abs(cli_pred - api_pred)))})


if __name__ == "__main__":
    main()
