"""fmlearn.neural on frappe beside DeepCTR-Torch: accuracy and seconds per epoch (issue 23).

Protocol: train on frappe.train.reconstructed.libfm, choose the candidate and the epoch on
frappe.validation.libfm (validation log-loss, or RMSE, after every epoch; training stops
after ``PATIENCE`` epochs without an improvement and the best epoch's network is kept),
report on frappe.test.libfm. The 10 fields are one-hot (one feature per field and row): a
CSR matrix with its field vector for fmlearn, one integer column per field for
DeepCTR-Torch. Classification: labels 0/1, test AUC and log-loss. Regression: the -1/+1
labels, squared loss, test RMSE of the predictions clipped to [-1, 1].

Each model both libraries have (FM -- DeepCTR-Torch's DeepFM without its MLP --, NFM, AFM,
DeepFM, IFM) is trained by both with the same architecture sizes, embedding size, batch
size, optimizer, learning rate and epoch budget (``MODELS``), and as many candidates each
(``CANDIDATES``: the L2 penalty on the embeddings, each library's own, chosen by the same
three-value sweep on NFM), their epochs alternating (ours, theirs, ours, ...) in this
process with ``THREADS`` torch threads, each epoch timed (wall and process CPU seconds;
validation scoring not included). fmlearn runs an epoch as a warm-started ``fit`` of one
epoch (its input checks included); its IFM regressor starts from a fitted FM, as the IFM paper's
does (``PRETRAINED``). CFM is fmlearn's only (DeepCTR-Torch has none). Seconds per epoch on a
quiet machine: ``--speed``.

    python bench/neural.py [--quick] [--models FM IFM ...] [--tasks classification ...]
                           [--max-epochs N] [--candidates N] [--threads N] [--ours-only]
    python bench/neural.py --l2-sweep      # NFM over L2_SWEEP: how CANDIDATES were chosen
    python bench/neural.py --speed 5       # seconds per epoch only, 5 alternating epochs each
    python bench/neural.py --device cuda   # seconds per epoch of FM, IFM and CFM on a GPU
    python bench/neural.py --paper --tasks regression --models IFM --ifm-paper-size  # k=256

``--quick``: 4,000 training rows, 1 epoch, one candidate, small embeddings (a check that the
script runs, seconds). ``--device cuda`` writes ``neural_cuda.json``: fmlearn's seconds per
epoch of FM, IFM and CFM over the training file at batch sizes 1,024 and 8,192.
"""
import argparse
import contextlib
import copy
import io
import time

import numpy as np
import torch
from common import load_frappe, peer, speedups, spread, summary_row, write_results
from ffm import FRAPPE_FIELD_STARTS
from sklearn.metrics import log_loss, roc_auc_score

import fmlearn.neural as ours

THREADS = 2
BATCH = 2048
PATIENCE = 5
MAX_EPOCHS = 100
STARTS = np.asarray(FRAPPE_FIELD_STARTS)
FIELDS = np.repeat(np.arange(len(STARTS) - 1), np.diff(STARTS))
# CFM's cube pairs field groups (the paper's self-attention pooling): user, item, context.
CFM_GROUPS = [0, 1] + [2] * 8
# Candidates per library, as many for each: Adam's learning rate and the L2 penalty on the
# embeddings, each library's own (fmlearn's on the rows a batch looks up, added to the batch's
# mean loss; DeepCTR-Torch's on the whole tables, added to the batch's summed loss), from a
# sweep of three values each on NFM classification (``--l2-sweep``).
L2_SWEEP = {"fmlearn": [dict(learning_rate=1e-3, l2_embeddings=v) for v in (1e-3, 1e-2, 1e-1)],
            "DeepCTR-Torch": [dict(learning_rate=1e-3, l2_reg_embedding=v)
                              for v in (1e-2, 1e-1, 1.0)]}
# each library's best two of its sweep (``--l2-sweep``), best first
CANDIDATES = {"fmlearn": [dict(learning_rate=1e-3, l2_embeddings=v) for v in (1e-2, 1e-3)],
              "DeepCTR-Torch": [dict(learning_rate=1e-3, l2_reg_embedding=v) for v in (1e-1, 1.0)]}
# The models without a hidden layer (FM, AFM) stall near the linear model under the NFM grid
# (fmlearn's FM: validation log-loss 0.299 against 0.200 for DeepCTR-Torch's, results/
# neural_classification_fm_nfm_grid.json): both libraries give them a lighter grid.
LIGHT_L2 = {"fmlearn": [dict(learning_rate=1e-3, l2_embeddings=v) for v in (1e-4, 0.0)],
            "DeepCTR-Torch": [dict(learning_rate=1e-3, l2_reg_embedding=v) for v in (1e-3, 0.0)]}
LIGHT_L2_MODELS = ("FM", "AFM")
N_CANDIDATES = len(CANDIDATES["fmlearn"])
# ``--paper``: fmlearn's models trained as their papers do (and as the estimators' defaults
# are) rather than by the shared settings, fmlearn alone: IFM's regressor pre-trained from an
# FM, AdaGrad at 0.01, no L2 (the IFM paper); NFM by AdaGrad (the NFM paper), at the shared
# learning rate and fmlearn's best L2 of the sweep.
PAPER_SETTINGS = {("regression", "IFM"): dict(optimizer="adagrad", learning_rate=0.01,
                                              l2_embeddings=0.0),
                  ("classification", "NFM"): dict(optimizer="adagrad", learning_rate=1e-3,
                                                  l2_embeddings=1e-2)}
# with ``--paper``, fmlearn's models that start from a fitted FM, as their papers do
# (``fit(init_model=...)``); the FM is fmlearn's SGD with bench/frappe_sgd.py's settings for
# the task (its k=256 choice).
PRETRAINED = {("regression", "IFM")}
PAPER = False  # set by --paper
FM_SETTINGS = {"regression": dict(eta0=0.2, reg_linear=1e-3, reg_factors=5e-3)}
# Per model: the embedding size, fmlearn's estimator name and parameters, DeepCTR-Torch's
# class name and parameters (None: fmlearn only). The papers' sizes where the CPU allows.
MODELS = {
    "FM": (64, "NeuralFM", {}, "DeepFM", dict(dnn_hidden_units=())),
    "NFM": (64, "NFM", dict(hidden_layer_sizes=(64,), dropout=(0.2, 0.5), batch_norm=True),
            "NFM", dict(dnn_hidden_units=(64,), bi_dropout=0.2, dnn_dropout=0.5)),
    "AFM": (64, "AFM", dict(fields=FIELDS, attention_size=8, dropout=0.5),
            "AFM", dict(attention_factor=8, afm_dropout=0.5, l2_reg_att=0.0)),
    "DeepFM": (10, "DeepFM", dict(fields=FIELDS, hidden_layer_sizes=(400, 400, 400),
                                  dropout=0.5),
               "DeepFM", dict(dnn_hidden_units=(400, 400, 400), dnn_dropout=0.5)),
    "IFM": (64, "IFM", dict(fields=FIELDS, hidden_layer_sizes=(256, 128), dropout=(0.3, 0.0),
                            batch_norm=True),
            "IFM", dict(dnn_hidden_units=(256, 128), dnn_dropout=0.3, dnn_use_bn=True)),
    # the paper's 64 x 32 channels take about 8 hours per epoch on a CPU core: the defaults
    "CFM": (16, "CFM", dict(fields=FIELDS, field_groups=CFM_GROUPS, n_channels=8,
                            dropout=0.2), None, None),
}
# The targets, and the published figures they come from.
TARGETS = {"regression_rmse_ifm_cfm": 0.3095, "classification_auc": 0.9857,
           "classification_logloss": 0.1285, "speedup_per_epoch": 1.5}
GPU_MODELS, GPU_BATCHES = ("FM", "IFM", "CFM"), (1024, 8192)


def field_columns(X):
    """The one feature of each field as DeepCTR-Torch's input: field name -> ids in the field."""
    ids = X.indices.reshape(X.shape[0], -1)
    if ids.shape[1] != len(STARTS) - 1 or not (FIELDS[ids] == np.arange(ids.shape[1])).all():
        raise ValueError("every frappe row holds one feature of each of the 10 fields in order")
    return {f"f{j}": (ids[:, j] - STARTS[j]).astype(np.int64) for j in range(ids.shape[1])}


class Ours:
    """fmlearn's estimator trained one epoch per call (warm start)."""

    library = "fmlearn"

    def __init__(self, model, task, k, params, device, seed, batch=BATCH):
        _, name, extra, _, _ = MODELS[model]
        cls = getattr(ours, name + ("Classifier" if task == "classification" else "Regressor"))
        self.est = cls(**(dict(n_factors=k, optimizer="adam", batch_size=batch, max_iter=1,
                                  warm_start=True, init_std=0.01, random_state=seed,
                                  device=device, n_jobs=THREADS)
                             | extra | params | paper_settings(task, model)))
        self.init_model = pretrained_fm(task, k) if PAPER and (task, model) in PRETRAINED \
            else None

    def epoch(self, data):
        self.est.fit(*data["csr"], init_model=self.init_model)
        self.init_model = None  # the first epoch starts from it; later ones continue

    def predict(self, data):
        est = self.est
        return est.predict_proba(data["csr"][0])[:, 1] if hasattr(est, "classes_") else \
            est.predict(data["csr"][0])

    def state(self):
        return copy.deepcopy(self.est.network_.state_dict())

    def restore(self, state):
        self.est.network_.load_state_dict(state)


class Theirs:
    """DeepCTR-Torch's model of the same name, one epoch per ``fit`` call."""

    library = "DeepCTR-Torch"

    def __init__(self, model, task, k, params, device, seed, batch=BATCH):
        import deepctr_torch.models as dc
        from deepctr_torch.inputs import SparseFeat

        _, _, _, name, extra = MODELS[model]
        columns = [SparseFeat(f"f{j}", int(STARTS[j + 1] - STARTS[j]), embedding_dim=k)
                   for j in range(len(STARTS) - 1)]
        binary = task == "classification"
        self.net = getattr(dc, name)(columns, columns, l2_reg_linear=0.0,
                                     l2_reg_embedding=params.get("l2_reg_embedding", 0.0),
                                     init_std=0.01, seed=seed, device=device,
                                     task="binary" if binary else "regression", **extra)
        self.net.compile(torch.optim.Adam(self.net.parameters(), lr=params["learning_rate"]),
                         "binary_crossentropy" if binary else "mse")
        self.batch = batch

    def epoch(self, data):
        with contextlib.redirect_stdout(io.StringIO()):  # fit prints the device
            self.net.fit(data["columns"], data["y"], batch_size=self.batch, epochs=1, verbose=0)

    def predict(self, data):
        return self.net.predict(data["columns"], batch_size=8192)[:, 0]

    def state(self):
        return copy.deepcopy(self.net.state_dict())

    def restore(self, state):
        self.net.load_state_dict(state)


def metrics(task, y, p):
    """Test (or validation) figures of predictions ``p``: AUC and log-loss, or clipped RMSE."""
    if task == "classification":
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, p))}
    return {"rmse": float(np.sqrt(np.mean((np.clip(p, -1, 1) - y) ** 2)))}


def train_side_by_side(learners, task, valid, max_epochs):
    """Train ``learners`` (name -> learner) one epoch each in turn until each has gone
    ``PATIENCE`` epochs without a better validation score; keep each one's best epoch.
    Returns per learner its validation curve, best epoch and seconds of every epoch."""
    key = "logloss" if task == "classification" else "rmse"
    runs = {name: {"validation": [], "wall": [], "cpu": [], "best": None, "stale": 0}
            for name in learners}
    for _ in range(max_epochs):
        active = [n for n in learners if runs[n]["stale"] < PATIENCE]
        if not active:
            break
        for name in active:
            run, learner = runs[name], learners[name]
            wall, cpu = time.perf_counter(), time.process_time()
            learner.epoch(valid["train"])
            run["wall"].append(time.perf_counter() - wall)
            run["cpu"].append(time.process_time() - cpu)
            score = metrics(task, valid["y"], learner.predict(valid))[key]
            run["validation"].append(score)
            print(f"  {name} epoch {len(run['validation'])}: validation {key} {score:.4f}, "
                  f"{run['wall'][-1]:.1f} s", flush=True)
            if run["best"] is None or score < run["best"][1]:
                run["best"], run["stale"] = (len(run["validation"]), score, learner.state()), 0
            else:
                run["stale"] += 1
    for name, learner in learners.items():
        learner.restore(runs[name]["best"][2])
    return runs


def compare(model, task, data, k, candidates, max_epochs, device, peers=True):
    """Both libraries (fmlearn's only without ``peers``) on ``model`` for every candidate;
    each library's best candidate on validation, reported on test, with the seconds of every
    epoch run."""
    libraries = [Ours] + ([Theirs] if MODELS[model][3] and peers else [])
    trials = []
    for i in range(len(candidates["fmlearn"])):
        params = {lib.library: candidates[lib.library][i] for lib in libraries}
        learners = {lib.library: lib(model, task, k, params[lib.library], device, 0)
                    for lib in libraries}
        runs = train_side_by_side(learners, task, {**data["valid"], "train": data["train"]},
                                  max_epochs)
        trials.append((params, learners, runs))
    out = {}
    for lib in libraries:
        name = lib.library
        params, learners, runs = min(trials, key=lambda t: t[2][name]["best"][1])
        run = runs[name]
        own = paper_settings(task, model) if name == "fmlearn" else {}
        out[name] = {"chosen": params[name] | own, "best_epoch": run["best"][0],
                     "epochs_run": len(run["validation"]),
                     "pretrained": name == "fmlearn" and PAPER and (task, model) in PRETRAINED,
                     **{f"test_{m}": v for m, v in metrics(
                         task, data["test"]["y"], learners[name].predict(data["test"])).items()},
                     "trials": [{"params": p[name] | own, "validation": r[name]["validation"],
                                 "seconds_per_epoch": spread(r[name]["wall"]),
                                 "cpu_seconds_per_epoch": spread(r[name]["cpu"])}
                                for p, _, r in trials]}
    if len(libraries) == 2:
        # epochs run by both in turn: the pairs of neighbouring epochs
        pairs = [(o, t) for _, _, r in trials
                 for o, t in zip(r["fmlearn"]["wall"], r["DeepCTR-Torch"]["wall"])]
        cpu_pairs = [(o, t) for _, _, r in trials
                     for o, t in zip(r["fmlearn"]["cpu"], r["DeepCTR-Torch"]["cpu"])]
        out["speedup_per_epoch"] = spread([t / o for o, t in pairs])
        out["cpu_speedup_per_epoch"] = spread([t / o for o, t in cpu_pairs])
        out["pairs"] = len(pairs)
    for name in out:
        if name in ("fmlearn", "DeepCTR-Torch"):
            epochs = [s for _, _, r in trials for s in r[name]["wall"]]
            cpu = [s for _, _, r in trials for s in r[name]["cpu"]]
            out[name]["seconds_per_epoch"] = spread(epochs)
            out[name]["cpu_seconds_per_epoch"] = spread(cpu)
    return out


def paper_settings(task, model):
    """fmlearn's own settings for ``model`` on ``task`` under ``--paper`` (none otherwise)."""
    return PAPER_SETTINGS.get((task, model), {}) if PAPER else {}


_FMS = {}


def pretrained_fm(task, k):
    """fmlearn's SGD FM of ``k`` factors on frappe's training file for ``task``, early-stopped
    on the validation file (fitted once per task and size, then reused)."""
    from fmlearn import FMClassifier, FMRegressor

    if (task, k) not in _FMS:
        (X, y), (Xv, yv), _ = load_frappe(np.float32)
        if task == "classification":
            y, yv = (y > 0).astype(np.float32), (yv > 0).astype(np.float32)
        cls = FMClassifier if task == "classification" else FMRegressor
        fm = cls(n_factors=k, init_std=0.1, max_iter=300, early_stopping=True,
                 n_iter_no_change=10, tol=0.0,
                 random_state=0, n_jobs=THREADS, dtype="float32", **FM_SETTINGS[task])
        _FMS[task, k] = fm.fit(X, y, eval_set=(Xv, yv))
    return _FMS[task, k]


def frappe_data(quick):
    """frappe's train, validation and test files as (X, y) pairs; the quick run keeps a
    few thousand rows of each."""
    parts = load_frappe(np.float32)
    if quick:
        parts = [(X[:n], y[:n]) for (X, y), n in zip(parts, (4000, 2000, 2000))]
    return parts


def task_data(parts, task):
    """Each part as fmlearn reads it (CSR, labels) and as DeepCTR-Torch does (field columns),
    with 0/1 labels for classification, -1/+1 for regression."""
    out = {}
    for name, (X, y) in zip(("train", "valid", "test"), parts):
        y = (y > 0).astype(np.float32) if task == "classification" else y.astype(np.float32)
        out[name] = {"csr": (X, y), "columns": field_columns(X), "y": y}
    return out


def summary(results):
    """Summary rows: each model's test figure, seconds per epoch and DeepCTR-Torch beside it."""
    rows = []
    for task, by_model in results.items():
        for model, res in by_model.items():
            ours_res, theirs = res["fmlearn"], res.get("DeepCTR-Torch")
            for metric in ("auc", "logloss") if task == "classification" else ("rmse",):
                peers = [] if theirs is None else [peer(
                    "DeepCTR-Torch", theirs[f"test_{metric}"],
                    theirs["seconds_per_epoch"]["median"], speedup=res["speedup_per_epoch"])]
                rows.append(summary_row("frappe", task, f"neural {model}", f"test {metric}",
                                        ours_res[f"test_{metric}"],
                                        ours_res["seconds_per_epoch"]["median"], "epoch", peers))
    return rows


def targets(results):
    """Which of the issue's targets this run meets."""
    out = {}
    reg = results.get("regression", {})
    best = [reg[m]["fmlearn"]["test_rmse"] for m in ("IFM", "CFM") if m in reg]
    if best:
        out["regression_rmse_ifm_cfm"] = {"best": min(best),
                                          "met": min(best) <= TARGETS["regression_rmse_ifm_cfm"]}
    clf = results.get("classification", {})
    if clf:
        auc = max(r["fmlearn"]["test_auc"] for r in clf.values())
        loss = min(r["fmlearn"]["test_logloss"] for r in clf.values())
        out["classification_auc"] = {"best": auc, "met": auc >= TARGETS["classification_auc"]}
        out["classification_logloss"] = {"best": loss,
                                         "met": loss <= TARGETS["classification_logloss"]}
    speed = {f"{task} {m}": r["speedup_per_epoch"]["median"]
             for task, by_model in results.items() for m, r in by_model.items()
             if "speedup_per_epoch" in r}
    if speed:
        out["speedup_per_epoch"] = {"median_by_model": speed, "met": all(
            s >= TARGETS["speedup_per_epoch"] for s in speed.values())}
    return out


def gpu_epochs(parts, repeats):
    """fmlearn's seconds per epoch on the GPU for ``GPU_MODELS`` at ``GPU_BATCHES``."""
    data = task_data(parts, "classification")
    out = {}
    for batch in GPU_BATCHES:
        for model in GPU_MODELS:
            learner = Ours(model, "classification", MODELS[model][0], CANDIDATES["fmlearn"][0],
                           "cuda", 0,
                           batch)
            learner.epoch(data["train"])  # warm-up
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                learner.epoch(data["train"])
                torch.cuda.synchronize()
                seconds.append(time.perf_counter() - start)
            out[f"{model}_batch_{batch}"] = spread(seconds)
            print(model, batch, out[f"{model}_batch_{batch}"], flush=True)
    return out


def epoch_speed(parts, repeats):
    """Seconds per epoch (wall and process CPU) of both libraries on every model they both
    have, over the whole training file: a warm-up epoch each, then ``repeats`` epochs each,
    alternating (ours, theirs, ours, ...), and the ratio of each neighbouring pair."""
    data = task_data(parts, "classification")["train"]
    out = {}
    for model in (m for m in MODELS if MODELS[m][3]):
        k = MODELS[model][0]
        learners = [lib(model, "classification", k, CANDIDATES[lib.library][0], "cpu", 0)
                    for lib in (Ours, Theirs)]
        wall, cpu = ([], []), ([], [])
        for r in range(repeats + 1):
            for i, learner in enumerate(learners):
                w, c = time.perf_counter(), time.process_time()
                learner.epoch(data)
                if r:  # the first epoch of each is the warm-up
                    wall[i].append(time.perf_counter() - w)
                    cpu[i].append(time.process_time() - c)
        out[model] = {"fmlearn": spread(wall[0]), "DeepCTR-Torch": spread(wall[1]),
                      "fmlearn_cpu": spread(cpu[0]), "DeepCTR-Torch_cpu": spread(cpu[1]),
                      "speedup": speedups(wall[0], wall[1]),
                      "cpu_speedup": speedups(cpu[0], cpu[1])}
        print(model, {key: round(v["median"], 3) for key, v in out[model].items()}, flush=True)
    return out


# The network's own compute, which both libraries run alike (matrix products, batch norm):
# what is left of an epoch when everything else is free. Dropout is not among them: fmlearn
# draws its masks on CPU by torch.rand (aten::uniform_), DeepCTR-Torch by aten::bernoulli_.
SHARED_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::native_batch_norm",
              "aten::native_batch_norm_backward")


def shared_share(parts, models, rows=40_000):
    """Per model, the share of fmlearn's epoch CPU time (one epoch over ``rows`` training
    rows, after a warm-up epoch, torch's profiler) spent in ``SHARED_OPS``."""
    from torch.profiler import profile

    data = task_data([(X[:rows], y[:rows]) for X, y in parts], "classification")["train"]
    out = {}
    for model in models:
        learner = Ours(model, "classification", MODELS[model][0], CANDIDATES["fmlearn"][0],
                       "cpu", 0)
        learner.epoch(data)
        with profile() as prof:
            learner.epoch(data)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        shared = sum(e.self_cpu_time_total for e in events if e.key in SHARED_OPS)
        out[model] = shared / total
        print(model, f"shared ops {out[model]:.2f} of the epoch's CPU time", flush=True)
    return out


def main():
    global THREADS, PAPER  # --threads: every learner's torch threads; --paper: PAPER_SETTINGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand rows, 1 epoch")
    parser.add_argument("--models", nargs="+", choices=list(MODELS),
                        help="the models to run (default: all; in regression IFM and CFM, the "
                             "issue's, unless named here)")
    parser.add_argument("--tasks", nargs="+", choices=["classification", "regression"],
                        default=["classification", "regression"])
    parser.add_argument("--max-epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--candidates", type=int, default=N_CANDIDATES,
                        help="try the first N candidates only")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU figure")
    parser.add_argument("--l2-sweep", action="store_true",
                        help="NFM classification over L2_SWEEP: how CANDIDATES were chosen")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads")
    parser.add_argument("--ours-only", action="store_true", help="fmlearn's models alone")
    parser.add_argument("--paper", action="store_true",
                        help="fmlearn alone, trained as PAPER_SETTINGS and PRETRAINED say")
    parser.add_argument("--ifm-paper-size", action="store_true",
                        help="IFM with the paper's frappe sizes: k=256, FEN 512-256-128")
    parser.add_argument("--speed", type=int, metavar="REPEATS",
                        help="only the seconds per epoch, REPEATS alternating epochs per model")
    parser.add_argument("--name", help="the results file's name (default: neural, neural_quick, "
                                       "neural_<task> when one task is run)")
    args = parser.parse_args()
    THREADS, PAPER = args.threads, args.paper
    if args.ifm_paper_size:
        _, name, extra, peer_name, peer_extra = MODELS["IFM"]
        MODELS["IFM"] = (256, name, extra | {"hidden_layer_sizes": (512, 256, 128)}, peer_name,
                         peer_extra | {"dnn_hidden_units": (512, 256, 128)})
    args.ours_only = args.ours_only or args.paper
    torch.set_num_threads(THREADS)
    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no GPU")
    parts = frappe_data(args.quick)
    if args.device != "cpu":
        write_results("neural_cuda", {
            "protocol": "fmlearn's seconds per epoch over frappe's training file (202,027 rows), "
                        "classification, Adam, after a warm-up epoch; median of 5",
            "device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "results": gpu_epochs(parts, 5)})
        return
    if args.speed:
        shares = shared_share(parts, [m for m in MODELS if MODELS[m][3]])
        write_results("neural_speed" + ("_quick" if args.quick else ""), {
            "protocol": f"seconds per epoch over frappe's training file (202,027 rows), "
                        f"classification, batch {BATCH}, Adam, {THREADS} torch threads, fmlearn "
                        f"and DeepCTR-Torch epochs alternating after a warm-up epoch each, "
                        f"{args.speed} each; speedup: DeepCTR-Torch's seconds over fmlearn's for "
                        f"each neighbouring pair; models {models_text()}",
            "results": epoch_speed(parts, args.speed),
            "shared_ops": SHARED_OPS, "shared_share_of_fmlearn_epoch_cpu": shares})
        return
    max_epochs = 1 if args.quick else args.max_epochs
    grid = L2_SWEEP if args.l2_sweep else CANDIDATES
    n = 1 if args.quick else len(grid["fmlearn"]) if args.l2_sweep else args.candidates
    candidates = {lib: c[:n] for lib, c in grid.items()}
    light = {lib: c[:n] for lib, c in LIGHT_L2.items()}
    if args.l2_sweep:
        args.tasks, args.models = ["classification"], ["NFM"]
    results = {}
    protocol = (__doc__.split("\n\n")[1].replace("\n", " ")
                + f" Batch size {BATCH}, Adam, at most {max_epochs} epochs, patience {PATIENCE}, "
                  f"candidates {candidates} ({light} for {LIGHT_L2_MODELS}), {THREADS} "
                  f"threads; " + (f"fmlearn alone, its own settings {PAPER_SETTINGS}, "
                                  f"pre-trained from an FM: {sorted(PRETRAINED)}; "
                                  if PAPER else "")
                + f"models {models_text()}"
                + (" QUICK: 4,000/2,000/2,000 rows, embeddings of 8." if args.quick else "")
                + (f" REDUCED from the full protocol ({MAX_EPOCHS} epochs, {N_CANDIDATES} "
                   "candidates) to fit the shared machine's CPU time."
                   if not args.quick and (max_epochs, n) != (MAX_EPOCHS, len(grid["fmlearn"]))
                   else ""))
    name = args.name or "neural" + ("_quick" if args.quick else "") + (
        f"_{args.tasks[0]}" if len(args.tasks) == 1 else "")
    for task in args.tasks:
        data = task_data(parts, task)
        # regression: the target is for IFM and CFM; others when named (beside
        # DeepCTR-Torch's, a reference for what the training file allows)
        models = args.models or [m for m in MODELS
                                 if task == "classification" or m in ("IFM", "CFM")]
        results[task] = {}
        for model in models:
            k = 8 if args.quick else MODELS[model][0]
            grid = light if model in LIGHT_L2_MODELS and not args.l2_sweep else candidates
            res = compare(model, task, data, k, grid, max_epochs, args.device,
                          peers=not args.ours_only)
            results[task][model] = res
            print(task, model, {lib: {m: round(v, 4) for m, v in r.items()
                                      if m.startswith("test_")} | {
                "s/epoch": round(r["seconds_per_epoch"]["median"], 2)}
                for lib, r in res.items() if isinstance(r, dict) and "chosen" in r},
                "speedup", res.get("speedup_per_epoch"), flush=True)
            write(name, protocol, results)  # after every model: a long run keeps its part


def write(name, protocol, results):
    """Write ``bench/results/<name>.json`` with the results so far."""
    import deepctr_torch
    write_results(name, {
        "data": "frappe (train reconstructed, NFM validation/test)", "protocol": protocol,
        "versions": {"torch": torch.__version__, "deepctr-torch": deepctr_torch.__version__},
        "targets": TARGETS, "met": targets(results), "results": results}, summary(results))


def models_text():
    """The models' sizes and parameters in words (for the results' protocol)."""
    return "; ".join(
        f"{m}: k={k}, fmlearn {name} {dict((p, v) for p, v in ex.items() if p != 'fields')}"
        + (f", DeepCTR-Torch {peer_name} {peer_ex}" if peer_name else "")
        for m, (k, name, ex, peer_name, peer_ex) in MODELS.items())

if __name__ == "__main__":
    main()
