"""Fuzzing the file readers against plain-Python reference parsers (bench/fuzz_targets/readers.py).

Every input must be read exactly as the reference reads it, or refused with a
``DataFormatError`` naming a line (record) where the reference finds a problem. The targets
live in ``bench/fuzz_targets`` so that ``bench/fuzz.py`` runs them for hours; here each runs
a bounded number of examples.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fuzz_targets import readers  # noqa: E402

pytest.importorskip("google.protobuf")

SEEDS = st.integers(0, 2**32 - 1)
MUTATIONS = st.integers(0, 3)
ODD = st.sampled_from([0.0, 0.02, 0.2])  # how often a number or index is an odd token


def _drawn(generate, seed, n_mutations, **options):
    rng = np.random.default_rng(seed)
    data = generate(rng, **options)
    for _ in range(n_mutations):
        data = readers.mutate(data, rng)
    return data


def _check(run, data):
    outcome = run(data)
    assert outcome.kind in readers.GOOD, f"{data!r}: {outcome.kind}: {outcome.detail}"
    return outcome


@pytest.mark.parametrize("name", sorted(readers.TARGETS))
def test_seed_inputs_read_correctly(name):
    seeds, run = readers.TARGETS[name]
    for key, data in seeds().items():
        assert run(data).kind == readers.CORRECT, (name, key, run(data).detail)


@settings(max_examples=100, deadline=None)
@given(seed=SEEDS, n_mutations=MUTATIONS, odd=ODD)
def test_libsvm_readers_match_the_reference(seed, n_mutations, odd):
    _check(readers.run_libsvm, _drawn(readers.random_libsvm, seed, n_mutations, odd=odd))


@settings(max_examples=100, deadline=None)
@given(seed=SEEDS, n_mutations=MUTATIONS, odd=ODD)
def test_ffm_readers_match_the_reference(seed, n_mutations, odd):
    _check(readers.run_ffm, _drawn(readers.random_ffm, seed, n_mutations, odd=odd))


@settings(max_examples=100, deadline=None)
@given(seed=SEEDS, n_mutations=MUTATIONS)
def test_recordio_readers_match_the_reference(seed, n_mutations):
    _check(readers.run_recordio, _drawn(readers.random_recordio, seed, n_mutations))


FORMAT_TEXT = st.text(alphabet="0123456789.:eE+- \t\r\n#qid", max_size=60).map(str.encode)


@settings(max_examples=100, deadline=None)
@given(data=FORMAT_TEXT)
def test_any_text_of_the_formats_characters(data):
    _check(readers.run_libsvm, data)
    _check(readers.run_ffm, data)


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, cut=st.integers(0, 400), word=st.integers(0, 2**32 - 1))
def test_recordio_truncated_or_with_a_crafted_length_word(seed, cut, word):
    data = readers.random_recordio(np.random.default_rng(seed))
    _check(readers.run_recordio, data[:cut])
    crafted = bytearray(data)
    crafted[4:8] = word.to_bytes(4, "little")
    _check(readers.run_recordio, bytes(crafted))


def test_the_targets_see_the_bugs_they_were_written_for():
    # An overflowing number read as a wrong finite value, a huge width from one token, a
    # sum of repeats beyond float32: each must end in a clean error.
    assert readers.run_libsvm(b"1 0:0." + b"0" * 999 + b"1e1000000\n").kind == readers.CLEAN_ERROR
    assert readers.run_ffm(b"1 0:2147483646:1\n").kind == readers.CLEAN_ERROR
    assert readers.run_ffm(b"1 0:0:3e38 0:0:3e38\n").kind == readers.CLEAN_ERROR
    # And a reader that disagrees with the reference is caught.
    assert readers._compare_rows([(1, 1.0, -1, {0: 1.0}, [])], *readers.load_libsvm(
        __import__("io").BytesIO(b"1 0:2\n"))) is not None
