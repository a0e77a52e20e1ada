"""The public API's type hints: mypy passes on its modules, and a user's code sees the types.

The modules, the strictness (``disallow_untyped_defs``) and the libraries read as ``Any``
are in ``[tool.mypy]`` of pyproject.toml; ``mypy`` in the repository root runs the same
check. mypy's cache goes to a temporary folder: a cold run takes about 10 s.
"""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is in the test extra")

ROOT = Path(__file__).resolve().parents[1]

# A user's script: each reveal_type names what mypy must show, each line marked "# error"
# must be reported, and no other line.
USER_CODE = '''\
import numpy as np
from fmlearn import FMClassifier, FMRegressor, load, read_header, save
from fmlearn.io import load_ffm, load_recordio
from fmlearn.recommend import Recommender, ndcg_at_k, recommend

X = np.eye(3)
reg = FMRegressor(n_factors=2, solver="als").fit(X, [1.0, 2.0, 3.0])
reveal_type(reg)  # FMRegressor
reveal_type(reg.predict(X))  # ndarray
clf = FMClassifier().partial_fit(X, [0, 1, 0], classes=[0, 1])
reveal_type(clf)  # FMClassifier
reveal_type(clf.predict_proba(X))  # ndarray
reveal_type(save(reg, "model.fm"))  # str
reveal_type(read_header("model.fm"))  # dict
reveal_type(load_ffm("train.ffm"))  # tuple
reveal_type(load_recordio("train.rec")[1])  # ndarray | None
reveal_type(recommend(reg, X[0], X, n=2)[0])  # ndarray
reveal_type(Recommender(load("model.fm"), X).n_items)  # int
reveal_type(ndcg_at_k([[0, 1]], [{1}], k=2))  # float
FMRegressor(n_factors="8")  # error
FMRegressor(solver="newton")  # error
reg.fit(X)  # error
clf.predict_proba()  # error
save(reg, 3)  # error
ndcg_at_k([[0]], [{0}], k="2")  # error
'''


def _mypy(*args, cache):
    """mypy with the project's configuration; its exit status and output."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(cache), "--no-error-summary", "--no-pretty", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mypy_cache")


def test_public_modules_pass_mypy(cache):
    status, output = _mypy(cache=cache)
    assert status == 0, f"mypy found problems in the public API's modules:\n{output}"


def test_user_code_sees_the_types(cache, tmp_path):
    script = tmp_path / "user_code.py"
    script.write_text(USER_CODE)
    _, output = _mypy(str(script), cache=cache)
    lines = USER_CODE.splitlines()
    reported = {}
    for line in output.splitlines():
        match = re.match(r".*user_code\.py:(\d+): (error|note): (.*)", line)
        assert match or not line.strip(), f"unexpected mypy output: {line}"
        if match:
            reported.setdefault(int(match[1]), []).append((match[2], match[3]))
    for number, text in enumerate(lines, 1):
        found = reported.get(number, [])
        if text.endswith("# error"):
            assert any(kind == "error" for kind, _ in found), f"no error for line {number}: {text}"
        else:
            assert all(kind != "error" for kind, _ in found), f"line {number}: {found}"
        if text.startswith("reveal_type("):
            expected = text.split("# ")[-1]
            notes = [message for kind, message in found if kind == "note"]
            assert notes and all(re.search(name, notes[0]) for name in expected.split(" | ")), (
                f"line {number}: {text}: mypy revealed {notes}")
            assert "Any" != notes[0].removeprefix("Revealed type is ").strip('"'), text
