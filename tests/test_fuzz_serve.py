"""Fuzzing the inference server's /invocations and /recommend (bench/fuzz_targets/server.py).

Every request of every content type, valid or bent, must be answered as the contract in
``create_app``'s docstring says (checked against a plain-Python decoding of the body scored
by the library) or refused with the right 4xx, never 500, and the server must keep answering
after it. The app runs in process; ``test_serve.py`` covers the same app over sockets.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fuzz_targets import server  # noqa: E402
from fuzz_targets.readers import CLEAN_ERROR, CORRECT, GOOD  # noqa: E402


def _check(data):
    outcome = server.run_request(data)
    assert outcome.kind in GOOD, f"{data!r}: {outcome.kind}: {outcome.detail}"
    return outcome


def test_every_seed_request_is_answered_correctly():
    for name, data in server.request_seeds().items():
        assert server.run_request(data).kind == CORRECT, (name, server.run_request(data).detail)


@pytest.mark.parametrize("kind", range(5), ids=["json", "jsonlines", "csv", "recordio",
                                                "recommend"])
@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_mutations=st.integers(0, 3))
def test_requests_of_every_content_type(kind, seed, n_mutations):
    rng = np.random.default_rng(seed)
    data = server.random_request_of(rng, kind)
    for _ in range(n_mutations):
        data = server.mutate(data, rng)
    _check(data)


@pytest.mark.parametrize("body, kind", [
    (b'{"features": [1, 0, 0, 0, 0, 0, 0, true]}', CLEAN_ERROR),
    (b'{"instances": [{"features": [1, 0, 0, 0, 0, 0, 0, 0]}, {"data": {"features": {"keys": '
     b'[9223372036854775808], "shape": [8], "values": [1]}}}]}', CLEAN_ERROR),
    (b'{"features": {"keys": [0, 0], "shape": [8], "values": [3e38, 3e38]}}', CLEAN_ERROR),
])
def test_the_target_sees_the_bugs_it_was_written_for(body, kind):
    outcome = _check(server.request("/invocations", body, "application/json"))
    assert outcome.kind == kind, outcome.detail
