"""Fuzz every input surface for a count or a time, surviving crashes; write bench/results/fuzz.json.

Each target (``fuzz_targets/``) gives valid seed inputs, a ``mutate(data, rng)`` that
changes one, and a ``run(data)`` that feeds the input to fmlearn and compares what comes
out with an independent reference. The inputs are drawn in a child process, input ``i``
of a target from the generator seeded with ``(seed, i)``, so the parent can draw any of
them again. The child says which input it starts before running it; the parent waits
for its verdict at most ``--timeout`` seconds and watches the child's memory, so every
input ends in one of:

``clean_error``  refused with the documented error (a clear ``ValueError`` or the
                 module's own error type);
``correct``      accepted, and the result equals the reference;
``wrong_value``  a result that differs from the reference, or a bad input accepted;
``other_exception``  any other exception;
``crash``        the child died of a signal (it is restarted after that input);
``hang``         no verdict within ``--timeout`` seconds (the child is killed);
``blowup``       a ``MemoryError``, or the child's resident memory grew past
                 ``--memory-mib`` above what it held after its warm-up.

Failing inputs are kept in ``bench/results/fuzz_failures/<target>-<i>.bin``.
Targets: ``csr`` (hand-built matrices into every learner), ``model_files``,
``sagemaker_models`` (SageMaker FM ``model.tar.gz``, their MXNet parameter files), the readers
``libsvm``, ``ffm`` and ``recordio``, and the server per content type
(``server_json``, ``server_jsonlines``, ``server_csv``, ``server_recordio``,
``server_recommend``): each request goes to the app, then ``/ping`` and a known request
must still be answered. ``worker_rss_mib`` gives each worker's resident memory after
its warm-up and after its last input: for the server targets, the app's memory before
and after the fuzz.

    python bench/fuzz.py --count 10000            # every target, 10,000 inputs each
    python bench/fuzz.py --targets csr --seconds 60
"""
import argparse
import importlib
import json
import os
import platform
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
KINDS = ("clean_error", "correct", "wrong_value", "other_exception", "crash", "hang", "blowup")
BAD = KINDS[2:]

SAME = {kind: kind for kind in KINDS}
# target name -> (module, seeds function, mutate function, run function, {its kinds -> ours})
TARGETS = {
    "libsvm": ("fuzz_targets.readers", "libsvm_seeds", "mutate", "run_libsvm", SAME),
    "ffm": ("fuzz_targets.readers", "ffm_seeds", "mutate", "run_ffm", SAME),
    "recordio": ("fuzz_targets.readers", "recordio_seeds", "mutate", "run_recordio", SAME),
    **{f"server_{kind}": ("fuzz_targets.server", f"seeds:{kind}", "mutate:keep_type",
                          "run_request", SAME)
       for kind in ("json", "jsonlines", "csv", "recordio", "recommend")},
    "csr": ("fuzz_targets.csr", "seed_inputs", "mutate", "run_csr",
            {"refused": "clean_error", "correct": "correct", "wrong": "wrong_value",
             "exception": "other_exception"}),
    "sagemaker_models": ("fuzz_targets.sagemaker_models", "seed_files", "mutate", "run_model",
                         SAME),
    "model_files": ("fuzz_targets.model_files", "seed_files", "mutate", "run_model_file",
                    {"refused": "clean_error", "correct": "correct", "wrong": "wrong_value",
                     "exception": "other_exception", "unpickled": "wrong_value"}),
}


_SERVER_KINDS = ("json", "jsonlines", "csv", "recordio", "recommend")


def _server_kind(server, data):
    """Which of ``_SERVER_KINDS`` a request is: /recommend, else its Content-Type's media type."""
    path, content_type, _, _ = server.parse(data)
    if path == "/recommend":
        return "recommend"
    media = server.MEDIA.get((content_type or "").split(";")[0].strip().lower())
    return {server.JSON: "json", server.JSONLINES: "jsonlines", server.CSV: "csv",
            server.RECORDIO: "recordio"}.get(media)


def _server_target(server, kind):
    """Seeds and a mutator for the requests of one content type (or /recommend): a mutation
    that moves a request to another type (a swapped header or path) is drawn again."""
    rng = np.random.default_rng(1)
    seeds = {name: data for name, data in server.request_seeds().items()
             if _server_kind(server, data) == kind}
    for n in range(8):
        seeds[f"random-{n}"] = server.random_request_of(rng, _SERVER_KINDS.index(kind))

    def mutate(data, rng):
        for _ in range(20):
            changed = server.mutate(data, rng)
            if _server_kind(server, changed) == kind:
                return changed
        return data
    return seeds, mutate


def load_target(name):
    """The target's (seeds, mutate, run, kinds) with its module imported."""
    module, seeds, mutate, run, kinds = TARGETS[name]
    mod = importlib.import_module(module)
    if seeds.startswith("seeds:"):
        seeds, mutate = _server_target(mod, seeds.split(":")[1])
        return seeds, mutate, getattr(mod, run), kinds
    return getattr(mod, seeds)(), getattr(mod, mutate), getattr(mod, run), kinds


def draw(seeds, mutate, seed, i):
    """Input ``i``: one or two mutations of a seed input, from the generator ``(seed, i)``;
    the second is skipped when the mutator cannot read what the first one broke."""
    rng = np.random.default_rng([seed, i])
    names = sorted(seeds)
    data = seeds[names[rng.integers(len(names))]]
    for n in range(1 + int(rng.random() < 0.3)):
        try:
            data = mutate(data, rng)
        except Exception:  # noqa: BLE001 -- a mutator may not parse what it broke before
            if n == 0:
                raise
    return data


def worker(name, seed, start, stop):
    """The child: run inputs ``start..stop-1`` of ``name``, one JSON line before and after each."""
    import warnings
    warnings.simplefilter("ignore")
    seeds, mutate, run, kinds = load_target(name)
    for data in seeds.values():  # warm-up: compile, import, fit the reference models
        run(data)
    me = psutil.Process()
    print(json.dumps({"ready": True, "rss": me.memory_info().rss}), flush=True)
    for i in range(start, stop):
        data = draw(seeds, mutate, seed, i)
        print(json.dumps({"start": i}), flush=True)
        try:
            outcome = run(data)
            kind, detail = kinds.get(outcome.kind, "other_exception"), outcome.detail
        except MemoryError as exc:
            kind, detail = "blowup", repr(exc)
        except Exception as exc:  # noqa: BLE001 -- the target's own checks failed
            kind, detail = "other_exception", repr(exc)
        print(json.dumps({"done": i, "kind": kind, "detail": detail[:500]}), flush=True)
    print(json.dumps({"finished": True, "rss": me.memory_info().rss}), flush=True)


def _keep(name, seed, i, kind, detail, failures):
    seeds, mutate, _, _ = load_target(name)
    folder = RESULTS / "fuzz_failures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{i}.bin"
    path.write_bytes(draw(seeds, mutate, seed, i))
    failures.append({"input": i, "kind": kind, "detail": detail, "file": str(path.relative_to(HERE))})


def fuzz(name, count, seconds, seed, timeout, memory_mib):
    """Run ``count`` inputs of ``name`` (or as many as ``seconds`` allow); return its summary."""
    counts = dict.fromkeys(KINDS, 0)
    failures = []
    memory = []  # per worker: resident MiB after its warm-up and after its last input
    i, began = 0, time.perf_counter()
    errors = tempfile.TemporaryFile("w+")  # the workers' stderr, shown if a warm-up fails
    while i < count and time.perf_counter() - began < seconds:
        child = subprocess.Popen([sys.executable, __file__, "--worker", name, "--seed", str(seed),
                                  "--start", str(i), "--stop", str(count)],
                                 stdout=subprocess.PIPE, stderr=errors, text=True, cwd=HERE)
        proc = psutil.Process(child.pid)
        sel = selectors.DefaultSelector()
        sel.register(child.stdout, selectors.EVENT_READ)
        baseline, current, deadline = None, None, time.perf_counter() + 600  # warm-up
        while True:
            if time.perf_counter() - began >= seconds and current is None:
                child.kill()
                break
            ready = sel.select(timeout=0.2)
            if ready:
                line = child.stdout.readline()
                if not line:  # the child died
                    child.wait()
                    if current is not None:
                        counts["crash"] += 1
                        _keep(name, seed, current, "crash", f"exit {child.returncode}", failures)
                        i = current + 1
                    elif baseline is None:
                        errors.seek(0)
                        raise RuntimeError(f"{name}: the worker died during its warm-up:\n"
                                           + errors.read()[-3000:])
                    break
                msg = json.loads(line)
                if "ready" in msg:
                    baseline = msg["rss"]
                    memory.append([baseline >> 20, None])
                elif "finished" in msg:
                    memory[-1][1] = msg["rss"] >> 20
                    child.wait()
                    break
                elif "start" in msg:
                    current, deadline = msg["start"], time.perf_counter() + timeout
                else:
                    counts[msg["kind"]] += 1
                    if msg["kind"] in BAD:
                        _keep(name, seed, msg["done"], msg["kind"], msg["detail"], failures)
                    i, current = msg["done"] + 1, None
                continue
            grown = baseline is not None and proc.memory_info().rss - baseline > memory_mib << 20
            if time.perf_counter() > deadline or grown:
                child.kill()
                child.wait()
                if current is None:
                    raise RuntimeError(f"{name}: the worker hung during its warm-up")
                kind = "blowup" if grown else "hang"
                counts[kind] += 1
                _keep(name, seed, current, kind, f"after {timeout} s" if kind == "hang"
                      else f"resident memory grew by more than {memory_mib} MiB", failures)
                i = current + 1
                break
        sel.close()
    elapsed = time.perf_counter() - began
    total = sum(counts.values())
    print(f"{name}: {total} inputs in {elapsed:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in counts.items() if v), flush=True)
    return {"inputs": total, "seconds": round(elapsed, 1), "counts": counts,
            "failures": failures[:50], "seed": seed, "worker_rss_mib": memory}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=float("inf"),
                        help="stop each target after this long, whatever the count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for one input")
    parser.add_argument("--memory-mib", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz.json")
    parser.add_argument("--worker")
    parser.add_argument("--start", type=int)
    parser.add_argument("--stop", type=int)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.seed, args.start, args.stop)
        return
    results = {"machine": platform.platform(), "cpus": os.cpu_count(), "targets": {}}
    if args.out.exists():  # targets run separately add up in one file
        results["targets"] = json.loads(args.out.read_text()).get("targets", {})
    for name in args.targets.split(","):
        results["targets"][name] = fuzz(name, args.count, args.seconds, args.seed, args.timeout,
                                        args.memory_mib)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    bad = {n: {k: r["counts"][k] for k in BAD if r["counts"][k]}
           for n, r in results["targets"].items()}
    print("no failures" if not any(bad.values()) else f"failures: {bad}")


if __name__ == "__main__":
    main()
