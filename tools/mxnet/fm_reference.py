"""Reference runs of MXNet's sparse factorization machine, for ``solver="adam"``.

Run with the separate MXNet environment (never a dependency of fmlearn)::

    /work/mxvenv/bin/python tools/mxnet/fm_reference.py

It trains the model of MXNet's ``example/sparse/factorization_machine`` (the formulation
SageMaker's FM runs: ``w0`` (1,), row-sparse ``w`` (N, 1) and ``v`` (N, k), score
``w0 + x.w + 0.5 * sum((x.v)**2 - (x**2).(v**2))``, ``LinearRegressionOutput`` for a
regressor, ``LogisticRegressionOutput`` for a binary classifier) with a ``Module`` and
MXNet's Adam at base rate 1 and weight decay 1, the per-term rates and penalties as
``lr_mult`` / ``wd_mult`` (SageMaker's ``*_lr`` / ``*_wd``), ``rescale_grad = 1 /
batch_size`` (the Module's), lazy row-sparse updates, on a small one-hot MovieLens 100K
sample with one real-valued feature, from initial parameters drawn here. It writes
``tests/fixtures/mxnet/adam_<task>.npz`` (a few KB): the rows, the initial parameters,
the hyperparameters, and the test predictions after 1 and after 10 epochs. The real
feature is ``codes / 100`` in float32; the regressor's targets are the ``stars``, the
classifier's ``stars >= 4``.
"""
import os
import sys

import mxnet as mx
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "..", "shared", "data", "ml-100k")
OUT = os.path.join(ROOT, "tests", "fixtures", "mxnet")
N_USERS, N_ITEMS = 200, 150
N_FEATURES = N_USERS + N_ITEMS + 1  # one-hot user, one-hot item, one real value
N_TRAIN, N_TEST = 2000, 500
TASKS = {
    # clip_gradient acts on the first batches (the bias's gradient is about -3.5).
    "regressor": dict(k=4, batch_size=100, bias_lr=0.1, linear_lr=0.01, factors_lr=0.01,
                      bias_wd=0.01, linear_wd=0.001, factors_wd=0.0001, clip_gradient=0.5,
                      eps=1e-8, beta1=0.9, beta2=0.999,
                      bias_sigma=0.01, linear_sigma=0.01, factors_sigma=0.1),
    "binary_classifier": dict(k=4, batch_size=100, bias_lr=0.1, linear_lr=0.01,
                              factors_lr=0.01, bias_wd=0.01, linear_wd=0.001,
                              factors_wd=0.0001, clip_gradient=-1.0, eps=1e-6, beta1=0.9,
                              beta2=0.999, bias_sigma=0.01, linear_sigma=0.01,
                              factors_sigma=0.1),
}


def ratings(name, n):
    """The first ``n`` ratings of users < N_USERS and items < N_ITEMS in ``name``."""
    table = np.loadtxt(os.path.join(DATA, name), dtype=np.int64)[:, :3]
    keep = table[(table[:, 0] <= N_USERS) & (table[:, 1] <= N_ITEMS)][:n]
    assert keep.shape[0] == n, (name, keep.shape)
    return keep


def csr(users, items, values):
    """One-hot user and item, and the real value in the last column."""
    n = users.shape[0]
    indices = np.stack([users - 1, N_USERS + items - 1,
                        np.full(n, N_FEATURES - 1)], axis=1).ravel()
    data = np.stack([np.ones(n), np.ones(n), values], axis=1).ravel().astype(np.float32)
    indptr = np.arange(0, 3 * n + 1, 3)
    return mx.nd.sparse.csr_matrix((data, indices, indptr), shape=(n, N_FEATURES))


def model(task, hp):
    """MXNet's sparse FM symbol (example/sparse/factorization_machine/model.py)."""
    x = mx.symbol.Variable("data", stype="csr")
    v = mx.symbol.Variable("v", shape=(N_FEATURES, hp["k"]), stype="row_sparse",
                           lr_mult=hp["factors_lr"], wd_mult=hp["factors_wd"])
    w = mx.symbol.var("w", shape=(N_FEATURES, 1), stype="row_sparse",
                      lr_mult=hp["linear_lr"], wd_mult=hp["linear_wd"])
    w0 = mx.symbol.var("w0", shape=(1,), lr_mult=hp["bias_lr"], wd_mult=hp["bias_wd"])
    w1 = mx.symbol.broadcast_add(mx.symbol.dot(x, w), w0)
    v_s = mx.symbol._internal._square_sum(data=v, axis=1, keepdims=True)
    bd_sum = mx.sym.dot(x.square(), v_s)
    w2_squared = 0.5 * mx.symbol.square(data=mx.symbol.dot(x, v))
    score = mx.symbol.Concat(w1, w2_squared, dim=1).sum(axis=1, keepdims=True) - 0.5 * bd_sum
    y = mx.symbol.Variable("softmax_label")
    if task == "regressor":
        return mx.symbol.LinearRegressionOutput(data=score, label=y)
    return mx.symbol.LogisticRegressionOutput(data=score, label=y)


def auc(y, p):
    """Area under the ROC curve by ranks (ties get their mean rank)."""
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.shape[0])
    sorted_p = p[order]
    i = 0
    while i < p.shape[0]:
        j = i
        while j + 1 < p.shape[0] and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    n_pos = y.sum()
    return (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (y.shape[0] - n_pos))


def run(task, hp, seed):
    rng = np.random.default_rng(seed)
    train, test = ratings("u1.base", N_TRAIN), ratings("u1.test", N_TEST)
    codes = rng.integers(0, 200, N_TRAIN + N_TEST).astype(np.uint8)
    values = (codes / 100).astype(np.float32)  # the real feature, in [0, 2)
    stars = np.concatenate([train[:, 2], test[:, 2]]).astype(np.int8)
    target = (stars if task == "regressor" else stars >= 4).astype(np.float32)
    init = {"w0": (rng.standard_normal(1) * hp["bias_sigma"]).astype(np.float32),
            "w": (rng.standard_normal(N_FEATURES) * hp["linear_sigma"]).astype(np.float32),
            "v": (rng.standard_normal((N_FEATURES, hp["k"]))
                  * hp["factors_sigma"]).astype(np.float32)}
    X_train = csr(train[:, 0], train[:, 1], values[:N_TRAIN])
    X_test = csr(test[:, 0], test[:, 1], values[N_TRAIN:])
    it = mx.io.NDArrayIter(X_train, target[:N_TRAIN], hp["batch_size"], shuffle=False,
                           last_batch_handle="discard")
    test_it = mx.io.NDArrayIter(X_test, target[N_TRAIN:], hp["batch_size"], shuffle=False,
                                last_batch_handle="discard")
    mod = mx.mod.Module(symbol=model(task, hp), data_names=["data"],
                        label_names=["softmax_label"])
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    mod.init_params(arg_params={
        "w0": mx.nd.array(init["w0"]),
        "w": mx.nd.array(init["w"][:, None]).tostype("row_sparse"),
        "v": mx.nd.array(init["v"]).tostype("row_sparse")}, allow_missing=False)
    params = [("learning_rate", 1.0), ("wd", 1.0), ("beta1", hp["beta1"]),
              ("beta2", hp["beta2"]), ("epsilon", hp["eps"])]
    if hp["clip_gradient"] > 0:
        params.append(("clip_gradient", hp["clip_gradient"]))
    mod.init_optimizer(optimizer="adam", kvstore=None, optimizer_params=params)
    predictions = {}
    for epoch in range(1, 11):
        it.reset()
        for batch in it:
            mod.forward_backward(batch)
            mod.update()
        if epoch in (1, 10):
            test_it.reset()
            predictions[epoch] = mod.predict(test_it).asnumpy().ravel()
    y_test = target[N_TRAIN:]
    p = predictions[10]
    metric = (float(np.sqrt(np.mean((p - y_test) ** 2))) if task == "regressor"
              else float(auc(y_test, p)))
    out = os.path.join(OUT, f"adam_{task}.npz")
    np.savez_compressed(
        out, users=np.concatenate([train[:, 0], test[:, 0]]).astype(np.int16),
        items=np.concatenate([train[:, 1], test[:, 1]]).astype(np.int16), codes=codes,
        stars=stars, n_train=N_TRAIN, n_users=N_USERS, n_items=N_ITEMS,
        hyperparameters=np.array(sorted(hp.items()), dtype=[("name", "U16"), ("value", "f8")]),
        w0=init["w0"], w=init["w"], v=init["v"],
        predict_1=predictions[1], predict_10=predictions[10], metric_10=metric,
        mxnet_version=mx.__version__)
    print(f"{task}: test {'rmse' if task == 'regressor' else 'auc'} after 10 epochs "
          f"{metric:.5f}; {os.path.getsize(out)} bytes in {out}")


if __name__ == "__main__":
    for seed, (task, hp) in enumerate(TASKS.items()):
        run(task, hp, seed)
    sys.exit(0)
