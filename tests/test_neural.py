"""fmlearn.neural: the networks against the papers' equations, gradients, learning, devices."""
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch", reason="fmlearn.neural needs PyTorch (the neural extra)")

from fmlearn.neural import (AFMClassifier, AFMRegressor, CFMClassifier,  # noqa: E402
                            CFMRanker, CFMRegressor, DeepFMClassifier, DeepFMRegressor,
                            IFMClassifier, IFMRegressor, NeuralFFMClassifier, NeuralFFMRegressor,
                            NeuralFMClassifier, NeuralFMRegressor, NFMClassifier, NFMRegressor)
from fmlearn.neural._base import resolve_device, torch_threads  # noqa: E402
from fmlearn.neural._data import Batches, field_slots  # noqa: E402
from fmlearn.neural._modules import (AFMNet, CFMNet, DeepFMNet, FFMNet, FMNet,  # noqa: E402
                                     IFMNet, NFMNet)


def one_hot_fields(rng, n, cardinalities):
    """A CSR of one-hot fields (one feature per field per row) and each column's field."""
    offsets = np.concatenate([[0], np.cumsum(cardinalities)])
    cols = np.stack([offsets[f] + rng.integers(c, size=n) for f, c in enumerate(cardinalities)], 1)
    X = sp.csr_matrix((rng.random(cols.size) + 0.5, cols.ravel(), np.arange(0, cols.size + 1,
                                                                            len(cardinalities))),
                      shape=(n, offsets[-1]))
    return X, np.repeat(np.arange(len(cardinalities)), cardinalities)


def params(net):
    return {name: p.detach().numpy().astype(np.float64) for name, p in net.named_parameters()}


def numpy_fm(X, w0, w, V):
    """Rendle (2010), eq. 1, summed over the pairs directly."""
    X = X.toarray()
    out = w0 + X @ w
    for i in range(X.shape[1]):
        for j in range(i + 1, X.shape[1]):
            out = out + V[i] @ V[j] * X[:, i] * X[:, j]
    return out


def numpy_mlp(h, net, prefix):
    """Linear -> BatchNorm (running statistics) -> ReLU per layer, then the projection (all its
    outputs: numpy_mlp_outputs; the first: numpy_mlp)."""
    return numpy_mlp_outputs(h, net, prefix)[:, 0]


def numpy_mlp_outputs(h, net, prefix):
    layers = [m for m in net.get_submodule(prefix)]
    for m in layers:
        if isinstance(m, torch.nn.Linear):
            h = h @ m.weight.detach().double().numpy().T
            if m.bias is not None:
                h = h + m.bias.detach().double().numpy()
        elif isinstance(m, torch.nn.BatchNorm1d):
            h = (h - m.running_mean.double().numpy()) / np.sqrt(m.running_var.double().numpy()
                                                                 + m.eps)
            h = h * m.weight.detach().double().numpy() + m.bias.detach().double().numpy()
        elif isinstance(m, torch.nn.ReLU):
            h = np.maximum(h, 0)
    return h


def test_fm_forward_matches_rendle():
    rng = np.random.default_rng(0)
    X = sp.random(20, 6, density=0.5, format="csr", random_state=1)
    reg = NeuralFMRegressor(n_factors=3, init_std=0.5, max_iter=2, learning_rate=0.1,
                            batch_size=7, random_state=0).fit(X, rng.random(20))
    p = params(reg.network_)
    want = numpy_fm(X, p["linear.bias"][0], p["linear.weight.weight"][:, 0], p["factors.weight"])
    np.testing.assert_allclose(reg.predict(X), want * reg.y_scale_ + reg.y_mean_, rtol=1e-5,
                               atol=1e-5)


def test_nfm_forward_matches_he_and_chua():
    """Eq. 3-5: w0 + <w, x> + h^T MLP(BN(sum_{i<j} x_i v_i * x_j v_j)), in inference mode."""
    rng = np.random.default_rng(1)
    X = sp.random(30, 6, density=0.5, format="csr", random_state=2)
    clf = NFMClassifier(n_factors=4, hidden_layer_sizes=(5, 3), init_std=0.5, max_iter=2,
                        batch_size=8, random_state=0).fit(X, rng.integers(2, size=30))
    p, Xd = params(clf.network_), X.toarray()
    V = p["factors.weight"]
    pooled = sum(Xd[:, [i]] * V[i] * Xd[:, [j]] * V[j] for i in range(6) for j in range(i + 1, 6))
    bn = clf.network_.pool[0]
    pooled = (pooled - bn.running_mean.double().numpy()) / np.sqrt(bn.running_var.double().numpy()
                                                                   + bn.eps)
    pooled = pooled * p["pool.0.weight"] + p["pool.0.bias"]
    want = p["linear.bias"][0] + Xd @ p["linear.weight.weight"][:, 0] + numpy_mlp(
        pooled, clf.network_, "mlp")
    np.testing.assert_allclose(clf.decision_function(X), want, rtol=1e-5, atol=1e-5)


def test_deepfm_forward_matches_guo():
    """y = y_FM + y_DNN over the field embeddings e_j = v_i x_i, in inference mode."""
    rng = np.random.default_rng(2)
    X, fields = one_hot_fields(rng, 25, [3, 4, 2])
    reg = DeepFMRegressor(fields=fields, n_factors=3, hidden_layer_sizes=(6, 4), init_std=0.5,
                          max_iter=2, batch_size=8, random_state=0).fit(X, rng.random(25))
    p = params(reg.network_)
    fm = numpy_fm(X, p["linear.bias"][0], p["linear.weight.weight"][:, 0], p["factors.weight"])
    Xd = X.toarray()
    e = np.stack([Xd[:, fields == f] @ p["factors.weight"][fields == f] for f in range(3)], 1)
    want = fm + numpy_mlp(e.reshape(25, -1), reg.network_, "mlp")
    np.testing.assert_allclose(reg.predict(X), want * reg.y_scale_ + reg.y_mean_, rtol=1e-5,
                               atol=1e-5)


def test_ffm_forward_matches_juan():
    """Eq. 3: w0 + <w, x> + sum_{i<j} <v_{i, f(j)}, v_{j, f(i)}> x_i x_j."""
    rng = np.random.default_rng(8)
    X, fields = one_hot_fields(rng, 25, [3, 4, 2])
    reg = NeuralFFMRegressor(fields=fields, n_factors=3, init_std=0.5, max_iter=2, batch_size=8,
                             random_state=0).fit(X, rng.random(25))
    p, Xd = params(reg.network_), X.toarray()
    V = p["factors.weight"].reshape(len(fields), 3, 3)   # (feature, toward field, factor)
    want = p["linear.bias"][0] + Xd @ p["linear.weight.weight"][:, 0]
    for i in range(len(fields)):
        for j in range(i + 1, len(fields)):
            want = want + V[i, fields[j]] @ V[j, fields[i]] * Xd[:, i] * Xd[:, j]
    np.testing.assert_allclose(reg.predict(X), want * reg.y_scale_ + reg.y_mean_, rtol=1e-5,
                               atol=1e-5)


def test_afm_forward_matches_xiao():
    """Eq. 3-5: w0 + <w, x> + p^T sum_{i<j} a_ij (v_i * v_j) x_i x_j, a = softmax over the pairs
    of h^T ReLU(W (v_i * v_j) x_i x_j + b), in inference mode."""
    rng = np.random.default_rng(7)
    X, fields = one_hot_fields(rng, 25, [3, 4, 2, 2])
    reg = AFMRegressor(fields=fields, n_factors=3, attention_size=4, init_std=0.5, max_iter=2,
                       batch_size=8, random_state=0).fit(X, rng.random(25))
    p, Xd = params(reg.network_), X.toarray()
    V, want = p["factors.weight"], []
    for x in Xd:
        active = np.flatnonzero(x)
        pairs = np.array([V[i] * V[j] * x[i] * x[j] for a, i in enumerate(active)
                          for j in active[a + 1:]])
        logits = np.maximum(pairs @ p["attention.0.weight"].T + p["attention.0.bias"], 0) \
            @ p["attention.2.weight"][0]
        a = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        want.append(p["linear.bias"][0] + x @ p["linear.weight.weight"][:, 0]
                    + p["projection.weight"][0] @ (a[:, None] * pairs).sum(0))
    np.testing.assert_allclose(reg.predict(X), np.array(want) * reg.y_scale_ + reg.y_mean_,
                               rtol=1e-5, atol=1e-5)


def test_ifm_forward_matches_yu():
    """Eq. 5-9: m_x = h softmax(P FEN([v_1 x_1, ..., v_h x_h])), then the FM over m_i w_i x_i
    and m_i v_i x_i, in inference mode."""
    rng = np.random.default_rng(12)
    X, fields = one_hot_fields(rng, 25, [3, 4, 2])
    reg = IFMRegressor(fields=fields, n_factors=3, hidden_layer_sizes=(6, 4), init_std=0.5,
                       max_iter=2, batch_size=8, random_state=0).fit(X, rng.random(25))
    p, Xd = params(reg.network_), X.toarray()
    V, w = p["factors.weight"], p["linear.weight.weight"][:, 0]
    e = np.stack([Xd[:, fields == f] @ V[fields == f] for f in range(3)], 1)   # (rows, fields, k)
    U = numpy_mlp_outputs(e.reshape(25, -1), reg.network_, "fen")
    m = 3 * np.exp(U) / np.exp(U).sum(1, keepdims=True)
    want = p["linear.bias"][0] + (Xd * w * m[:, fields]).sum(1)
    for a in range(3):
        for b in range(a + 1, 3):
            want = want + m[:, a] * m[:, b] * (e[:, a] * e[:, b]).sum(1)
    np.testing.assert_allclose(reg.predict(X), want * reg.y_scale_ + reg.y_mean_, rtol=1e-5,
                               atol=1e-5)


def numpy_conv3d(cube, weight, bias):
    """A 3-D convolution of stride (1, 2, 2), no padding, written out: cube (channels, depth,
    k, k), weight (out, in, deep, 2, 2)."""
    out_c, _, deep, _, _ = weight.shape
    depth, k = cube.shape[1] - deep + 1, cube.shape[2] // 2
    out = np.empty((out_c, depth, k, k))
    for c in range(out_c):
        for d in range(depth):
            for i in range(k):
                for j in range(k):
                    patch = cube[:, d:d + deep, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
                    out[c, d, i, j] = bias[c] + (weight[c] * patch).sum()
    return out


@pytest.mark.parametrize("groups", [None, np.array([0, 0, 1, 2])])
def test_cfm_forward_matches_xin(groups):
    """Eq. 3-8: the cube of outer products e_a e_b^T over the pairs a < b (of the fields, or of
    their attention-pooled groups), 3-D convolutions with ReLU, the prediction layer."""
    rng = np.random.default_rng(13)
    X, fields = one_hot_fields(rng, 12, [3, 4, 2, 2])
    reg = CFMRegressor(fields=fields, field_groups=groups, n_factors=4, n_channels=3,
                       attention_size=5, init_std=0.5, max_iter=2, batch_size=4,
                       random_state=0).fit(X, rng.random(12))
    p, Xd, net = params(reg.network_), X.toarray(), reg.network_
    V, w = p["factors.weight"], p["linear.weight.weight"][:, 0]
    convs = [m for m in net.conv if isinstance(m, torch.nn.Conv3d)]
    want = []
    for x in Xd:
        e = np.stack([x[fields == f] @ V[fields == f] for f in range(4)])   # (fields, k)
        if groups is not None:
            a = np.tanh(e @ p["attention.0.weight"].T) @ p["attention.2.weight"][0]
            e = np.stack([(np.exp(a[groups == g]) / np.exp(a[groups == g]).sum()) @ e[groups == g]
                          for g in range(3)])
        cube = np.stack([np.outer(e[i], e[j]) for i in range(len(e)) for j in range(i + 1, len(e))])
        h = cube[None]
        for conv in convs:
            h = np.maximum(numpy_conv3d(h, conv.weight.detach().double().numpy(),
                                        conv.bias.detach().double().numpy()), 0)
        want.append(p["linear.bias"][0] + x @ w + h.reshape(-1) @ p["projection.weight"][0])
    np.testing.assert_allclose(reg.predict(X), np.array(want) * reg.y_scale_ + reg.y_mean_,
                               rtol=1e-5, atol=1e-5)


NETWORKS = [
    lambda: (FMNet(6, 3, sparse=False, init_std=0.5), False),
    lambda: (IFMNet(6, 2, 3, (4,), (0.0, 0.0), True, sparse=False, init_std=0.5), True),
    lambda: (CFMNet(6, 2, 4, 2, 0.0, None, 3, sparse=False, init_std=0.5), True),
    lambda: (CFMNet(6, 3, 4, 2, 0.0, torch.tensor([0, 1, 1]), 3, sparse=False, init_std=0.5),
             3),
    lambda: (NFMNet(6, 3, (4,), (0.0, 0.0), True, sparse=False, init_std=0.5), False),
    lambda: (DeepFMNet(6, 2, 3, (4,), 0.0, sparse=False, init_std=0.5), True),
    lambda: (AFMNet(6, 2, 3, 4, 0.0, sparse=False, init_std=0.5), True),
    lambda: (FFMNet(6, 2, 3, sparse=False, init_std=0.5), True)]


@pytest.mark.parametrize("make", NETWORKS)
def test_gradients_match_finite_differences(make):
    net, slots = make()
    net = net.double().train()
    if slots:  # True: 2 fields, or their number
        n = 2 if slots is True else slots
        inputs = (torch.tensor([[0, 3, 1], [1, 5, 2], [2, 4, 0]])[:, :n],
                  torch.tensor([[1.0, 0.5, 0.8], [2.0, 1.0, 1.2], [0.3, 1.5, 0.9]],
                               dtype=torch.float64)[:, :n])
    else:
        inputs = (torch.tensor([0, 2, 1, 3, 5, 4, 2]),
                  torch.tensor([1.0, 0.5, 2.0, 1.0, 0.3, 1.5, 0.7], dtype=torch.float64),
                  torch.tensor([0, 0, 1, 1, 1, 2, 2]), 3)
    names = [n for n, _ in net.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())

    def f(*ps):
        return torch.func.functional_call(net, dict(zip(names, ps)), inputs)

    with torch_threads(1):  # as the estimators run; several threads only slow tiny networks
        assert torch.autograd.gradcheck(f, values, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("make", NETWORKS)
def test_values_none_is_every_value_one(make):
    # One-hot batches come without values (Batches gives None): the same scores and
    # gradients as values of 1, without the products.
    net, slots = make()
    net = net.double().eval()
    if slots:
        ids = torch.tensor([[0, 3, 1], [1, 5, 2], [2, 4, 0]])[:, :2 if slots is True else slots]
        rest, ones = (), torch.ones(ids.shape, dtype=torch.float64)
    else:
        ids, rest = torch.tensor([0, 2, 1, 3, 5, 4, 2]), (torch.tensor([0, 0, 1, 1, 1, 2, 2]), 3)
        ones = torch.ones(7, dtype=torch.float64)
    grads = []
    for values in (ones, None):
        net.zero_grad()
        out = net(ids, values, *rest)
        out.sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in net.parameters()
                                     if p.grad is not None]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=0)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-15, atol=1e-15)


def test_batches_of_one_hot_rows_carry_no_values():
    X = sp.csr_matrix(np.array([[1.0, 0, 1], [0, 1, 1]], dtype=np.float32))
    (bag, _), = Batches(X, np.arange(2)).cut(2, "cpu")
    (slot, _), = Batches(X, np.arange(2), slots=field_slots(X, np.array([0, 0, 1]), 2)).cut(
        2, "cpu")
    assert bag[1] is None and slot[1] is None
    X.data[0] = 2.0  # one value that is not 1: all of them travel
    (bag, _), = Batches(X, np.arange(2)).cut(2, "cpu")
    assert bag[1].tolist() == [2.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("cls,kw", [
    (NeuralFMRegressor, {"n_factors": 4, "learning_rate": 0.05}),
    (NFMRegressor, {"n_factors": 8, "hidden_layer_sizes": (16,), "dropout": (0.0, 0.0)}),
    (DeepFMRegressor, {"fields": np.repeat([0, 1], 2), "n_factors": 4,
                       "hidden_layer_sizes": (16,), "dropout": 0.0, "learning_rate": 0.01}),
    (AFMRegressor, {"fields": np.repeat([0, 1], 2), "n_factors": 8, "dropout": 0.0}),
    (NeuralFFMRegressor, {"fields": np.repeat([0, 1], 2), "learning_rate": 0.1}),
    (IFMRegressor, {"fields": np.repeat([0, 1], 2), "n_factors": 8, "hidden_layer_sizes": (8,),
                    "dropout": (0.0, 0.0), "optimizer": "adam", "learning_rate": 0.01}),
    (CFMRegressor, {"fields": np.repeat([0, 1], 2), "n_factors": 4, "n_channels": 4,
                    "dropout": 0.0, "optimizer": "adam", "learning_rate": 0.02})])
def test_learns_a_planted_interaction_no_linear_model_can(cls, kw):
    """XOR of two binary fields: +1 when they agree, -1 when not; additive models score R² 0."""
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(0)
    a, b = rng.integers(2, size=400), rng.integers(2, size=400)
    X = sp.csr_matrix((np.ones(800), np.stack([a, 2 + b], 1).ravel(), np.arange(0, 801, 2)),
                      shape=(400, 4))
    y = np.where(a == b, 1.0, -1.0)
    assert LinearRegression().fit(X, y).score(X, y) < 0.05
    reg = cls(batch_size=32, max_iter=60, random_state=0, **kw).fit(X, y)
    assert reg.score(X, y) > 0.95


@pytest.mark.parametrize("cls", [NeuralFMClassifier, NFMClassifier, DeepFMClassifier,
                                 AFMClassifier, NeuralFFMClassifier, IFMClassifier, CFMClassifier])
def test_cpu_fits_are_reproducible_with_random_state(cls):
    rng = np.random.default_rng(3)
    X = rng.random((60, 5)); y = rng.integers(2, size=60)
    kw = {"max_iter": 3, "batch_size": 16, "random_state": 7, "device": "cpu"}
    if cls in (NFMClassifier, DeepFMClassifier, IFMClassifier):
        kw["hidden_layer_sizes"] = (8,)
    if cls in (IFMClassifier, CFMClassifier):
        kw["n_factors"] = 4
    one, two = cls(**kw).fit(X, y), cls(**kw).fit(X, y)
    assert one.loss_curve_ == two.loss_curve_
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))
    assert cls(**{**kw, "random_state": 8}).fit(X, y).loss_curve_ != one.loss_curve_


def test_sparse_gradients_update_only_the_rows_a_batch_holds():
    X = sp.csr_matrix(np.hstack([np.eye(4), np.zeros((4, 6))]))
    for optimizer in ("adam", "adagrad"):
        reg = NeuralFMRegressor(optimizer=optimizer, max_iter=1, random_state=0, l2_embeddings=0.1,
                                sparse_gradients=True)
        before = reg.fit(X[:, :4].toarray() @ np.eye(4, 10), [1.0, 2, 3, 4])
        factors = before.network_.factors.weight.detach().clone()
        before.set_params(warm_start=True).fit(X[:2], [1.0, 2])
        after = before.network_.factors.weight.detach()
        assert before.network_.factors.weight.grad.is_sparse
        assert torch.equal(after[2:], factors[2:]) and not torch.equal(after[:2], factors[:2])


def test_sparse_gradients_auto_takes_them_when_the_tables_outgrow_a_batch(tmp_path):
    from fmlearn import load, save
    rng = np.random.default_rng(14)
    X = sp.random(64, 300, density=0.02, format="csr", random_state=0)  # 6 entries a row
    y = rng.random(64)
    small = NeuralFMRegressor(batch_size=32, max_iter=1).fit(X, y)      # 300 <= 2 * 32 * 6
    large = NeuralFMRegressor(batch_size=16, max_iter=1).fit(X, y)      # 300 > 2 * 16 * 6
    assert not small.sparse_gradients_ and large.sparse_gradients_
    assert [type(o).__name__ for o in small._optimizers] == ["Adam"]
    assert [type(o).__name__ for o in large._optimizers] == ["SparseAdam", "Adam"]
    assert not small.network_.factors.sparse and large.network_.factors.sparse
    loaded = load(save(large, tmp_path / "large.fm"))
    assert loaded.sparse_gradients_ and loaded.network_.factors.sparse
    assert not NeuralFMRegressor(batch_size=16, max_iter=1,
                                 sparse_gradients=False).fit(X, y).sparse_gradients_


def test_one_feature_per_field_is_checked():
    X = sp.csr_matrix(np.array([[1.0, 0, 1], [1, 1, 0]]))
    with pytest.raises(ValueError, match=r"^row 1 of X holds two features \(columns 0 and 1\) "
                                         r"of field 0; this model takes one feature per field\.$"):
        DeepFMRegressor(fields=[0, 0, 1], max_iter=1).fit(X, [1.0, 2])


def test_fields_auto_reads_column_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"ids__user_1": [1.0, 0], "ids__user_2": [0, 1.0], "num__age": [0.3, 0.5]})
    reg = DeepFMRegressor(fields="auto", hidden_layer_sizes=(4,), max_iter=1).fit(X, [1.0, 2])
    assert reg.n_fields_ == 2 and reg.fields_.tolist() == [0, 0, 1]


def test_early_stopping_keeps_the_best_epoch():
    rng = np.random.default_rng(4)
    X = rng.random((200, 6)); y = X[:, 0] * X[:, 1] + rng.normal(0, 0.3, 200)
    Xv, yv = rng.random((100, 6)), rng.random(100)  # noise: the best epoch is an early one
    reg = NeuralFMRegressor(learning_rate=0.05, max_iter=40, n_iter_no_change=3,
                            random_state=0).fit(X, y, eval_set=(Xv, yv))
    best = int(np.argmax(reg.validation_scores_))
    assert reg.n_iter_ == best + 4 < 40
    assert reg.score(Xv, yv) == pytest.approx(reg.best_validation_score_, abs=1e-6)


def test_warm_start_and_partial_fit_continue():
    rng = np.random.default_rng(5)
    X = rng.random((50, 4)); y = rng.integers(2, size=50)
    clf = NeuralFMClassifier(max_iter=2, random_state=0, warm_start=True).fit(X, y).fit(X, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    part = NeuralFMClassifier(random_state=0).partial_fit(X[:10], y[:10], classes=[0, 1])
    assert part.partial_fit(X, y).n_iter_ == 2
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        NeuralFMClassifier().fit(X, np.arange(50) % 3)


def test_device_cpu_and_moving_a_fitted_model():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    X = np.eye(3); y = [1.0, 2, 3]
    reg = NFMRegressor(max_iter=2, hidden_layer_sizes=(4,), device="cpu", random_state=0).fit(X, y)
    before = reg.predict(X)
    assert reg.to("cpu") is reg and reg.device == "cpu"
    assert next(reg.network_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(reg.predict(X), before)
    reg.set_params(warm_start=True, device="auto").fit(X, y)  # moved back at the next fit
    assert reg.n_iter_ == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("make", [
    lambda: NeuralFMRegressor(),
    lambda: IFMRegressor(fields=[0, 1, 1], n_factors=4, hidden_layer_sizes=(8,)),
    lambda: CFMRegressor(fields=[0, 1, 2], field_groups=np.array([0, 1, 1]), n_factors=4)])
def test_cuda_fit_and_move_to_cpu(make):
    X = np.eye(3); y = [1.0, 2, 3]
    reg = make().set_params(max_iter=2, device="cuda", random_state=0).fit(X, y)
    on_gpu = reg.predict(X)
    np.testing.assert_allclose(reg.to("cpu").predict(X), on_gpu, rtol=1e-6)
    reg.set_params(warm_start=True).fit(X, y)  # the optimizer state moved with the network
    reg.to("cuda").fit(X, y)
    assert reg.n_iter_ == 6


def test_n_jobs_sets_torch_threads_only_inside_fit():
    before = torch.get_num_threads()
    reg = NeuralFMRegressor(max_iter=1, n_jobs=1, random_state=0).fit(np.eye(2), [0.0, 1])
    reg.predict(np.eye(2))
    assert torch.get_num_threads() == before


def test_importing_fmlearn_does_not_import_torch():
    code = ("import sys, importlib.util, fmlearn, fmlearn.persistence\n"
            "if importlib.util.find_spec('fastapi'):\n    import fmlearn.serve\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("cls", [NeuralFMRegressor, NeuralFMClassifier, NFMRegressor,
                                 NFMClassifier, DeepFMRegressor, DeepFMClassifier, AFMRegressor,
                                 AFMClassifier, NeuralFFMRegressor, NeuralFFMClassifier,
                                 IFMRegressor, IFMClassifier, CFMRegressor, CFMClassifier,
                                 CFMRanker])
def test_save_load_round_trip_is_exact(cls, tmp_path):
    from fmlearn.persistence import load, read_header, save
    rng = np.random.default_rng(6)
    X, fields = one_hot_fields(rng, 40, [3, 3, 2])
    y = np.where(rng.random(40) > 0.5, "u", "v") if "Classifier" in cls.__name__ else \
        rng.random(40) if "Regressor" in cls.__name__ else rng.integers(3, size=40)
    kw = {"fields": fields} if cls._uses_fields else {}
    if cls in (NFMRegressor, NFMClassifier, DeepFMRegressor, DeepFMClassifier, IFMRegressor,
               IFMClassifier):
        kw["hidden_layer_sizes"] = (8, 4)
    if cls in (IFMRegressor, IFMClassifier, CFMRegressor, CFMClassifier, CFMRanker):
        kw["n_factors"] = 4
    if cls is CFMRanker:
        kw["field_groups"] = np.array([0, 1, 1])
    est = cls(max_iter=3, batch_size=16, random_state=0, **kw).fit(X, y, eval_set=(X, y))
    path = save(est, tmp_path / "net.fm")
    header = read_header(path)
    assert header["estimator"] == cls.__name__ and header["model_kind"] == "torch-state"
    with np.load(path, allow_pickle=False) as npz:  # arrays only
        assert "network.factors.weight.npy" in npz.zip.namelist()
    loaded = load(path)
    assert type(loaded) is cls and repr(loaded.get_params()) == repr(est.get_params())
    for attr in ("loss_curve_", "validation_scores_", "best_validation_score_", "n_iter_",
                 "n_features_in_"):
        assert getattr(loaded, attr) == getattr(est, attr)
    out = "predict_proba" if "Classifier" in cls.__name__ else "predict"
    np.testing.assert_array_equal(getattr(loaded, out)(X), getattr(est, out)(X))
    assert save(loaded, tmp_path / "again.fm") and \
        (tmp_path / "again.fm").read_bytes() == (tmp_path / "net.fm").read_bytes()


@pytest.mark.parametrize("cls,kw", [(NeuralFMClassifier, {}),
                                    (NFMRegressor, {"hidden_layer_sizes": (4,)}),
                                    (NeuralFMRegressor, {"sparse_gradients": False})])
def test_a_loaded_estimator_warm_starts_as_the_saved_one(cls, kw, tmp_path):
    from fmlearn.persistence import load, save
    rng = np.random.default_rng(9)
    X = rng.random((40, 5)); y = rng.integers(2, size=40)
    est = cls(max_iter=2, batch_size=8, warm_start=True, random_state=0, **kw).fit(X, y)
    loaded = load(save(est, tmp_path / "net.fm"))
    est.fit(X, y); loaded.fit(X, y)
    assert loaded.loss_curve_ == est.loss_curve_
    out = "predict" if "Regressor" in cls.__name__ else "predict_proba"
    np.testing.assert_array_equal(getattr(loaded, out)(X), getattr(est, out)(X))


def test_a_tensor_that_does_not_fit_the_architecture_is_refused(tmp_path):
    import zipfile
    from fmlearn.persistence import ModelFileError, load, save
    reg = NeuralFMRegressor(n_factors=2, max_iter=1, random_state=0).fit(np.eye(3), [1.0, 2, 3])
    path = save(reg, tmp_path / "fm.fm")
    bad = NeuralFMRegressor(n_factors=3, max_iter=1, random_state=0).fit(np.eye(3), [1.0, 2, 3])
    other = save(bad, tmp_path / "other.fm")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(other) as swap, \
            zipfile.ZipFile(tmp_path / "mixed.fm", "w") as out:
        for name in src.namelist():
            out.writestr(name, (swap if name == "network.factors.weight.npy" else src).read(name))
    with pytest.raises(ModelFileError, match=r"array 'network.factors.weight'"):
        load(tmp_path / "mixed.fm")


def test_verbose_shows_a_progress_bar(capsys):
    NeuralFMRegressor(max_iter=2, verbose=1, random_state=0).fit(np.eye(3), [1.0, 2, 3])
    assert "epoch 2" in capsys.readouterr().err


def test_early_stopping_holds_out_validation_fraction():
    rng = np.random.default_rng(10)
    X = rng.random((100, 4)); y = rng.random(100)   # noise: the held-out score stops improving
    reg = NeuralFMRegressor(early_stopping=True, validation_fraction=0.2, n_iter_no_change=2,
                            learning_rate=0.05, max_iter=50, random_state=0).fit(X, y)
    assert len(reg.validation_scores_) == reg.n_iter_ < 50
    assert reg.best_validation_score_ == max(reg.validation_scores_)


def test_l2_penalties_shrink_their_parameter_groups():
    rng = np.random.default_rng(11)
    X = rng.random((80, 4)); y = rng.random(80)
    kw = {"hidden_layer_sizes": (8,), "max_iter": 20, "random_state": 0, "dropout": (0.0, 0.0)}

    def norms(**l2):
        net = NFMRegressor(**kw, **l2).fit(X, y).network_
        return (float(net.factors.weight.norm()), float(net.mlp[0].weight.norm()))
    free, emb, mlp = norms(), norms(l2_embeddings=0.1), norms(l2_mlp=0.1)
    assert emb[0] < free[0] and mlp[1] < free[1]


def grouped_preferences(rng, n_users=30, n_items=12):
    """Every user with every item, one field each; odd users like odd items, even users even
    ones (an interaction: no item is liked more than another over all users)."""
    users, items = np.repeat(np.arange(n_users), n_items), np.tile(np.arange(n_items), n_users)
    X = sp.hstack([sp.eye(n_users, format="csr")[users], sp.eye(n_items, format="csr")[items]])
    fields = np.repeat([0, 1], [n_users, n_items])
    return X.tocsr(), (users % 2 == items % 2).astype(int), users, fields


def test_cfm_ranker_pairs_rows_within_groups_and_learns_the_preferences():
    from sklearn.metrics import roc_auc_score
    X, liked, users, fields = grouped_preferences(np.random.default_rng(14))
    ranker = CFMRanker(fields=fields, n_factors=4, n_channels=4, optimizer="adam",
                       learning_rate=0.02, batch_size=32, max_iter=30, random_state=0)
    ranker._rng, ranker._groups = np.random.default_rng(0), users
    pairs = ranker._pairs(liked.astype(float))
    assert (users[pairs[:, 0]] == users[pairs[:, 1]]).all()
    assert (liked[pairs[:, 0]] > liked[pairs[:, 1]]).all()
    assert sorted(pairs[:, 0]) == np.flatnonzero(liked).tolist()  # each liked row once
    scores = ranker.fit(X, liked, groups=users).predict(X).reshape(30, 12)
    per_user = [roc_auc_score(row, s) for row, s in zip(liked.reshape(30, 12), scores)]
    assert np.mean(per_user) > 0.95
    assert ranker.loss_curve_[-1] < ranker.loss_curve_[0] < np.log(2) + 0.1


def test_cfm_ranker_checks_its_groups_and_early_stopping():
    X, liked, users, fields = grouped_preferences(np.random.default_rng(15), 4, 3)
    with pytest.raises(ValueError, match=r"groups must give one group per row: X has 12 rows"):
        CFMRanker(fields=fields, n_factors=2, max_iter=1).fit(X, liked, groups=users[:5])
    with pytest.raises(ValueError, match=r"^CFMRanker's early stopping needs eval_set"):
        CFMRanker(fields=fields, early_stopping=True).fit(X, liked, groups=users)
    ranker = CFMRanker(fields=fields, n_factors=2, max_iter=3, n_iter_no_change=1,
                       random_state=0).fit(X, liked, groups=users, eval_set=(X, liked))
    assert ranker.best_validation_score_ == max(ranker.validation_scores_)


@pytest.mark.parametrize("kw,message", [
    ({"n_factors": 6}, r"^n_factors must be a power of 2 \(the convolutions halve the embedding "
                       r"dimensions down to 1\); got 6$"),
    ({"field_groups": [0, 2, 2]}, r"^field_groups must give each of the 3 fields a group 0, 1, "
                                  r"\.\.\., each used; got \[0, 2, 2\]$"),
    ({"field_groups": [0, 0]}, r"^field_groups must give each of the 3 fields"),
    ({"field_groups": [0, 0, 0]}, r"^the interaction cube pairs fields \(or field groups\): it "
                                  r"needs at least 2; got 1 \(X has 3 feature\(s\)\)\.$")])
def test_cfm_checks_its_sizes_and_groups(kw, message):
    with pytest.raises(ValueError, match=message):
        CFMRegressor(max_iter=1, **kw).fit(np.eye(3), [1.0, 2, 3])


@pytest.mark.parametrize("cls", [IFMClassifier, CFMRegressor])
def test_fmlearn_serve_answers_as_predict_does(cls, tmp_path):
    """A neural model file behind ``fmlearn serve``'s app: JSON (dense and sparse), JSON lines
    and CSV requests get predict's (or predict_proba's) answers; two features of one field
    are a 400 naming the instance."""
    import asyncio
    import json
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from fmlearn.persistence import save
    from fmlearn.serve import create_app
    rng = np.random.default_rng(16)
    X, fields = one_hot_fields(rng, 60, [3, 4, 2])
    X = X.astype(np.float32)
    classifier = cls is IFMClassifier
    y = rng.integers(2, size=60) if classifier else rng.random(60)
    kw = {"hidden_layer_sizes": (8,)} if classifier else {"n_channels": 2}
    est = cls(fields=fields, n_factors=4, max_iter=2, batch_size=16, random_state=0, **kw)
    app = create_app(save(est.fit(X, y), tmp_path / "net.fm"))
    rows = X[:5].toarray()
    sparse = [{"data": {"features": {"keys": np.flatnonzero(r).tolist(), "shape": [9],
                                     "values": r[r != 0].tolist()}}} for r in rows]
    bodies = {"application/json": json.dumps({"instances": [{"features": r.tolist()}
                                                            for r in rows]}),
              "application/jsonlines": "\n".join(json.dumps(s) for s in sparse) + "\n",
              "text/csv": "".join(",".join(map(repr, r.tolist())) + "\n" for r in rows)}
    twice = rows[:2].copy()
    twice[1, :3] = [1.0, 1.0, 0.0]   # two features of field 0

    async def talk():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            answers = [await client.post("/invocations", content=body,
                                         headers={"Content-Type": media})
                       for media, body in bodies.items()]
            bad = await client.post("/invocations", json={"instances": [
                {"features": r.tolist()} for r in twice]})
            return answers, bad

    answers, bad = asyncio.run(talk())
    want = est.predict_proba(rows)[:, 1] if classifier else est.predict(rows)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"] if "predictions" in answer.text else [
            json.loads(line) for line in answer.text.splitlines()]
        np.testing.assert_array_equal([p["score"] for p in predictions], want)
        if classifier:
            assert [p["predicted_label"] for p in predictions] == (want >= 0.5).astype(int).tolist()
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("instance 1 holds two features (columns 0 and 1) of "
                                          "field 0")


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_keeps_a_share_one_minus_p_of_entries_scaled_by_its_inverse(p):
    from fmlearn.neural._modules import _Dropout
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    out = _Dropout(p)(x)
    kept = out.detach() != 0
    n = x.numel()
    assert abs(kept.sum().item() - n * (1 - p)) < 5 * (n * p * (1 - p)) ** 0.5  # binomial
    assert torch.equal(out.detach()[kept], torch.full((int(kept.sum()),), 1 / (1 - p)))
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # the gradient is the mask times the scale
    torch.manual_seed(0)
    assert torch.equal(_Dropout(p)(torch.ones(n)), out.detach())  # the seed fixes the mask
    assert torch.equal(_Dropout(p).eval()(x), x)
    assert torch.equal(_Dropout(1.0)(x), torch.zeros(n))


def test_cfm_ranker_with_pooled_field_groups_learns():
    """A context field pooled with the user by attention: the cube pairs (user, item) groups.
    With torch's default start of the convolutions every ReLU died here and nothing was
    learned (still so without dropout). No dropout: on 600 rows dropout 0.2 on the four
    channels left a constant ranker for 4 (bernoulli_ masks) and 8 (rand masks) of 24 seeds,
    none without it."""
    from sklearn.metrics import roc_auc_score
    users, items = np.repeat(np.arange(40), 15), np.tile(np.arange(15), 40)
    context = np.random.default_rng(1).integers(3, size=users.size)
    onehot = sp.eye(58, format="csr")
    X = (onehot[users] + onehot[40 + items] + onehot[55 + context]).tocsr()
    liked = (users % 3 == items % 3).astype(int)
    ranker = CFMRanker(fields=np.repeat([0, 1, 2], [40, 15, 3]), field_groups=np.array([0, 1, 0]),
                       n_factors=8, n_channels=4, init_std=0.5, dropout=0.0, optimizer="adam",
                       learning_rate=0.02, batch_size=16, max_iter=16,
                       random_state=0).fit(X, liked, groups=users)
    scores = ranker.predict(X).reshape(40, 15)
    assert np.mean([roc_auc_score(row, s) for row, s in zip(liked.reshape(40, 15), scores)]) > 0.95


def test_adagrad_fits_raise_no_warning():
    import warnings
    X, fields = one_hot_fields(np.random.default_rng(19), 20, [2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # torch warned at AdaGrad's first sparse step
        NeuralFFMRegressor(fields=fields, max_iter=1, random_state=0).fit(X, np.arange(20.0))


def test_init_model_starts_the_network_from_a_fitted_fm():
    from fmlearn import FMClassifier, FMRegressor
    rng = np.random.default_rng(12)
    X = sp.csr_matrix(rng.random((80, 6)) * (rng.random((80, 6)) < 0.5))
    y = 3.0 + X @ rng.normal(size=6) + rng.normal(0, 0.1, 80)
    fm = FMRegressor(n_factors=3, max_iter=5, init_std=0.3, random_state=0).fit(X, y)
    # a step too small to move it: the network predicts what the FM does (scaled units)
    net = NeuralFMRegressor(n_factors=3, learning_rate=1e-12, max_iter=1, dtype="float64",
                            random_state=0).fit(X, y, init_model=fm)
    np.testing.assert_allclose(net.predict(X), fm.predict(X), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(NeuralFMRegressor(n_factors=3, learning_rate=1e-12, max_iter=1,
                                                 dtype="float64").fit(X, y, init_model=fm.model_)
                               .predict(X), fm.predict(X), rtol=1e-7, atol=1e-9)
    labels = (y > np.median(y)).astype(int)
    fmc = FMClassifier(n_factors=3, max_iter=5, init_std=0.3, random_state=0).fit(X, labels)
    clf = NeuralFMClassifier(n_factors=3, learning_rate=1e-12, max_iter=1,
                             dtype="float64").fit(X, labels, init_model=fmc)
    np.testing.assert_allclose(clf.predict_proba(X), fmc.predict_proba(X), atol=1e-9)
    # IFM and DeepFM start as the FM: a zero output layer above the embeddings
    one_per_field = sp.csr_matrix(np.eye(6)[rng.integers(3, size=80) * 2]
                                  + np.eye(6)[rng.integers(3, size=80) * 2 + 1])
    fields = [0, 1, 0, 1, 0, 1]
    twin = FMRegressor(n_factors=3, max_iter=5, init_std=0.3, random_state=0).fit(one_per_field, y)
    for cls in (IFMRegressor, DeepFMRegressor):
        net = cls(fields=fields, n_factors=3, hidden_layer_sizes=(4,), learning_rate=1e-12,
                  max_iter=1, dtype="float64", random_state=0).fit(one_per_field, y,
                                                                   init_model=twin)
        np.testing.assert_allclose(net.predict(one_per_field), twin.predict(one_per_field),
                                   rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("est, message", [
    (NeuralFMRegressor(n_factors=4, max_iter=1), r"factors of shape \(6, 4\); got \(\), \(6,\) "
                                                 r"and \(6, 3\)"),
    (NeuralFFMRegressor(n_factors=3, max_iter=1), "has no factor vector of n_factors=3"),
])
def test_init_model_must_fit_the_network(est, message):
    from fmlearn import FMRegressor
    rng = np.random.default_rng(13)
    X, y = rng.random((30, 6)), rng.random(30)
    fm = FMRegressor(n_factors=3, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y, init_model=fm)
