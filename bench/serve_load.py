"""Load test of the HTTP server (``fmlearn.serve``): requests/s and latency on loopback.

Saves an FMClassifier with n_factors=64 and 100,000 features, starts the server in its own
process (``fmlearn.serve.serve``, one uvicorn worker) and drives it from a load generator in
a third process: ``--connections`` keep-alive connections, each sending its next request as
soon as the previous answer arrived (a closed loop), for ``--seconds`` of single-row JSON
requests (SageMaker's sparse form, 10 non-zeros of 100,000), then of 1,000-row requests.
Every answer is checked for status 200 and the number of predictions; the first few hundred
are compared with ``predict_proba`` of the saved model.

The load generator is a minimal HTTP/1.1 client over asyncio streams (prepared request
bytes, Content-Length framing), not httpx: httpx spends several times more CPU per request
than the server, and on a 2-core machine the generator shares the cores with the server.
Both processes' CPU time is reported, so the split of the two cores is visible.

    python bench/serve_load.py [--quick] [--seconds 30] [--connections 32] [--rate 2000]

uvicorn uses httptools and uvloop when they are installed (``uvicorn[standard]``), else its
pure-Python h11 parser and asyncio's loop; the results record which.
"""
import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_FEATURES = 100_000
N_FACTORS = 64
NNZ = 10
HERE = Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(path):
    """Fit a small FMClassifier on random sparse rows (fit quality is beside the point) and save it."""
    import scipy.sparse as sp

    from fmlearn import FMClassifier, save
    rng = np.random.default_rng(0)
    n = 20_000
    X = sp.csr_matrix((rng.random(n * NNZ).astype(np.float32),
                       rng.integers(0, N_FEATURES, n * NNZ),
                       np.arange(0, n * NNZ + 1, NNZ)), shape=(n, N_FEATURES))
    y = rng.random(n) < 0.3
    clf = FMClassifier(n_factors=N_FACTORS, max_iter=1, init_std=0.05, random_state=0).fit(X, y)
    save(clf, path)
    return clf


def request_rows(rng, n_rows):
    keys = np.sort(rng.choice(N_FEATURES, size=(n_rows, NNZ)), axis=1)
    values = np.round(rng.random((n_rows, NNZ)), 4)
    return keys, values


def json_body(keys, values):
    instances = [{"data": {"features": {"keys": k.tolist(), "shape": [N_FEATURES],
                                        "values": v.tolist()}}} for k, v in zip(keys, values)]
    return json.dumps({"instances": instances}).encode()


def http_request(body, port):
    return (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


# --- the load generator (runs in its own process) ------------------------------------------------
async def _exchange(reader, writer, request):
    """Send one request and read its answer: (status line bytes, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return head, await reader.readexactly(length)


async def _connection(port, requests, n_rows, deadline, warmup_end, stats, offset, interval):
    """One keep-alive connection: closed loop (``interval`` None) or one request per ``interval`` s.

    At a fixed rate, latency is measured from the moment the request was due, so a slow
    answer that delays the next request counts against the server (no coordinated omission).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop_start = time.perf_counter()
    due = loop_start + (offset % 997) / 997 * (interval or 0)
    i = offset
    try:
        while True:
            now = time.perf_counter()
            if interval is not None and due > now:
                await asyncio.sleep(due - now)
            start = due if interval is not None else time.perf_counter()
            sent = time.perf_counter()
            if sent >= deadline:
                break
            request_index = i % len(requests)
            i += 1
            try:
                head, body = await _exchange(reader, writer, requests[request_index])
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                stats["errors"] += 1
                stats["error_examples"].append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            end = time.perf_counter()
            if interval is not None:
                due += interval
            ok = head[9:12] == b"200" and body.count(b'"score"') == n_rows
            if sent >= warmup_end:
                stats["latencies"].append(end - start)
                stats["service"].append(end - sent)
                if not ok:
                    stats["errors"] += 1
                    if len(stats["error_examples"]) < 5:
                        stats["error_examples"].append((head[:12] + body[:200]).decode("latin-1"))
            if len(stats["answers"]) < 200 and n_rows == 1:
                stats["answers"].append((request_index, body.decode()))
    finally:
        writer.close()


async def _generate(port, requests, n_rows, seconds, warmup, connections, rate):
    stats = {"latencies": [], "service": [], "errors": 0, "error_examples": [], "answers": []}
    start = time.perf_counter()
    warmup_end = start + warmup
    deadline = warmup_end + seconds
    interval = connections / rate if rate else None
    await asyncio.gather(*(_connection(port, requests, n_rows, deadline, warmup_end, stats,
                                       c * 7919, interval) for c in range(connections)))
    return stats


def _percentiles(seconds):
    ms = np.asarray(seconds) * 1e3
    if not ms.size:
        return None
    return {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def generate(args):
    """Entry point of the load generator process: writes its figures as JSON to stdout."""
    requests = [bytes.fromhex(line) for line in Path(args.requests).read_text().split()]
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    try:  # the generator's own cost matters on 2 cores: uvloop's loop is cheaper when installed
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    stats = run(_generate(args.port, requests, args.rows, args.seconds, args.warmup,
                          args.connections, args.rate))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    n = len(stats["latencies"])
    result = {"connections": args.connections, "target_rate": args.rate, "requests": n,
              "errors": stats["errors"], "error_examples": stats["error_examples"][:5],
              "requests_per_second": n / args.seconds, "rows_per_second": n * args.rows / args.seconds,
              "latency_ms": _percentiles(stats["latencies"]),
              "generator_cpu_share": cpu / wall, "answers": stats["answers"]}
    if args.rate:
        result["service_latency_ms"] = _percentiles(stats["service"])
    json.dump(result, sys.stdout)


# --- the driver ------------------------------------------------------------------------------------
def run_phase(port, server, requests, n_rows, seconds, warmup, connections, workdir, rate=None):
    import psutil
    path = Path(workdir) / f"requests-{n_rows}.txt"
    path.write_text("\n".join(r.hex() for r in requests))
    proc = psutil.Process(server.pid)
    before = proc.cpu_times()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--generate", "--port", str(port),
                          "--requests", str(path), "--rows", str(n_rows), "--seconds",
                          str(seconds), "--warmup", str(warmup), "--connections",
                          str(connections)] + (["--rate", str(rate)] if rate else []),
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    result = json.loads(out.stdout)
    after = proc.cpu_times()
    user, system = after.user - before.user, after.system - before.system
    result["server_cpu_share"] = (user + system) / wall
    result["server_cpu_user_system_seconds"] = [user, system]
    # CPU per answered request over the whole phase (warm-up included, so slightly high).
    answered = result["requests_per_second"] * wall
    result["server_cpu_microseconds_per_request"] = (user + system) / max(1.0, answered) * 1e6
    return result


def wait_ready(port, server, timeout=60):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer /ping in time")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 s phases instead of 30 s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=None,
                        help="requests/s of the fixed-rate phase (default 2000)")
    parser.add_argument("--name", help="results file name under bench/results (without .json; "
                                        "default serve_load, serve_load_quick with --quick)")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        return generate(args)
    sys.path.insert(0, str(HERE))
    from common import write_results

    seconds = args.seconds or (5.0 if args.quick else 30.0)
    load_before = os.getloadavg()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as workdir:
        model_path = str(Path(workdir) / "model.fm")
        clf = make_model(model_path)
        port = free_port()
        code = ("import sys; from fmlearn.serve import serve; "
                f"serve({model_path!r}, port={port}, log_level='warning')")
        server = subprocess.Popen([sys.executable, "-c", code])
        try:
            t0 = time.perf_counter()
            wait_ready(port, server)
            startup = time.perf_counter() - t0
            keys, values = request_rows(rng, 1000)
            single = [http_request(json_body(k[None], v[None]), port) for k, v in zip(keys, values)]
            # 1. Closed loop: the most the server answers with 32 connections.
            most = run_phase(port, server, single, 1, seconds, 2.0, args.connections, workdir)
            # 2. Fixed rate (2,000/s over 32 connections): latency at the target load.
            rate = args.rate or 2000.0
            fixed = run_phase(port, server, single, 1, seconds, 2.0, args.connections, workdir,
                              rate=rate)
            fixed.pop("answers")
            # Check answers against predict_proba of the same model.
            import scipy.sparse as sp
            checked = 0
            for index, answer in most.pop("answers"):
                row = sp.csr_matrix((values[index], keys[index], [0, NNZ]), shape=(1, N_FEATURES))
                expected = clf.predict_proba(row)[0, 1]
                got = json.loads(answer)["predictions"][0]["score"]
                if abs(got - expected) > 1e-6 * max(1.0, abs(expected)):
                    raise AssertionError(f"server score {got} != predict_proba {expected}")
                checked += 1
            most["answers_checked_against_predict_proba"] = checked
            batches = []
            for _ in range(20):
                k, v = request_rows(rng, 1000)
                batches.append(http_request(json_body(k, v), port))
            batch = run_phase(port, server, batches, 1000, seconds / 2, 1.0,
                              args.batch_connections, workdir)
            batch.pop("answers")
        finally:
            server.terminate()
            server.wait(10)
    payload = {
        "setup": {"model": f"FMClassifier, n_factors={N_FACTORS}, {N_FEATURES:,} features, "
                           "float32", "request": f"sparse JSON rows, {NNZ} non-zeros each",
                  "server": "fmlearn.serve.serve, one uvicorn process",
                  "load_generator": "asyncio HTTP/1.1 keep-alive client in a separate process "
                                    "(uvloop when installed), closed loop and fixed rate, on the "
                                    "same machine (it shares the cores)",
                  "seconds_per_phase": seconds, "single_row_connections": args.connections,
                  "batch_connections": args.batch_connections,
                  "server_start_seconds": startup,
                  "uvicorn_http": _uvicorn_http(), "uvicorn_loop": _uvicorn_loop()},
        "single_row_closed_loop": most, "single_row_fixed_rate": fixed, "batch_1000_rows": batch,
        "load_average_before_after": [load_before, os.getloadavg()],
        "targets": {"errors": 0, "p99_ms": 10.0, "requests_per_second": 2000},
    }
    write_results(args.name or "serve_load" + ("_quick" if args.quick else ""), payload)
    keys = ("requests_per_second", "rows_per_second", "latency_ms", "errors", "server_cpu_share",
            "generator_cpu_share")
    print(json.dumps({name: {k: phase[k] for k in keys} for name, phase in
                      [("single_row_closed_loop", most), ("single_row_fixed_rate", fixed),
                       ("batch_1000_rows", batch)]}, indent=1))
    if most["errors"] or fixed["errors"] or batch["errors"]:
        sys.exit("the server answered with errors")


def _uvicorn_http():
    try:
        import httptools  # noqa: F401
        return "httptools"
    except ImportError:
        return "h11"


def _uvicorn_loop():
    try:
        import uvloop  # noqa: F401
        return "uvloop"
    except ImportError:
        return "asyncio"


if __name__ == "__main__":
    main()
