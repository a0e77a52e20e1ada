"""What ``pip install fmlearn`` gets: ``python -m build`` makes an sdist and a wheel that install
in a fresh virtual environment and work there.

The wheel (which ``build`` makes from the sdist) must hold the package, ``py.typed`` and the
licence, and no tests, benchmarks or documentation; the sdist the licence, README and changelog.
A new venv installs the wheel (its dependencies from the package index, as a user's pip
would: pip's cache makes that quick), then the sdist over it; after each the smoke script
fits, predicts, saves and loads a model with the installed package, and the ``fmlearn``
script answers ``--version``. Slow (a minute or two, mostly installing and compiling the
kernels): ``make test-packaging`` runs it.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build", reason="build is in the test extra")

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Run by the fresh venv's python, outside the checkout: it must import the installed package.
SMOKE = """\
import sys
from pathlib import Path

import numpy as np

import fmlearn
from fmlearn import FMClassifier, FMRegressor, load, save
from fmlearn.io import dump_libsvm, load_libsvm

package = Path(fmlearn.__file__).resolve().parent
assert Path(sys.prefix).resolve() in package.parents, f"imported {package}, not the install"
assert (package / "py.typed").is_file()
assert fmlearn.__version__ == sys.argv[2]
rng = np.random.default_rng(0)
X = rng.random((60, 4))
y = X[:, 0] * X[:, 1] + X[:, 2]
reg = FMRegressor(n_factors=2, max_iter=5, random_state=0).fit(X, y)
path = save(reg, Path(sys.argv[1]) / "model.fm")
assert np.array_equal(load(path).predict(X), reg.predict(X))
clf = FMClassifier(n_factors=2, max_iter=5, random_state=0).fit(X, y > y.mean())
assert clf.predict_proba(X).shape == (60, 2)
dump_libsvm(X, y, Path(sys.argv[1]) / "rows.libfm")
assert load_libsvm(Path(sys.argv[1]) / "rows.libfm")[0].shape == (60, 4)
print("smoke test passed")
"""


def _run(*args, **kwargs):
    """Run a command; a failure shows its output."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                            **kwargs)
    assert result.returncode == 0, (f"{' '.join(map(str, args))} exited with "
                                    f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel ``python -m build`` makes of a copy of the checkout, without
    the build's leftovers (an old ``*.egg-info`` would add the files it lists to the sdist)."""
    source = tmp_path_factory.mktemp("checkout") / "fmlearn"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".*", "__pycache__", "*.egg-info", "build", "dist", "_build"))
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, source)
    sdist, = out.glob("fmlearn-*.tar.gz")
    wheel, = out.glob("fmlearn-*.whl")
    return sdist, wheel


def test_wheel_holds_the_package_and_licence_only(dist):
    _, wheel = dist
    assert wheel.name == f"fmlearn-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"fmlearn-{VERSION}.dist-info/METADATA").decode()
    assert "fmlearn/py.typed" in names
    assert "fmlearn/__init__.py" in names and "fmlearn/kernels/predict.py" in names
    assert f"fmlearn-{VERSION}.dist-info/licenses/LICENSE" in names
    assert {name.split("/")[0] for name in names} == {"fmlearn", f"fmlearn-{VERSION}.dist-info"}
    assert not [name for name in names if name.endswith((".pyc", ".nbi", ".nbc"))]
    for line in ("License-Expression: BSD-3-Clause", "License-File: LICENSE",
                 "Classifier: Typing :: Typed", "Requires-Python: >=3.10",
                 "Requires-Dist: numba>=0.59", "Description-Content-Type: text/markdown"):
        assert line in metadata.splitlines(), line
    assert "Keywords: factorization machines" in metadata


def test_sdist_holds_the_sources_and_documents(dist):
    sdist, _ = dist
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    top = f"fmlearn-{VERSION}"
    for name in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml",
                 "src/fmlearn/py.typed", "src/fmlearn/__init__.py"):
        assert f"{top}/{name}" in names, name


def test_sdist_and_wheel_install_and_run_in_a_fresh_venv(dist, tmp_path):
    sdist, wheel = dist
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python, script = venv / "bin" / "python", venv / "bin" / "fmlearn"
    smoke = tmp_path / "smoke.py"
    smoke.write_text(SMOKE)
    for package, extra in ((wheel, ()), (sdist, ("--no-deps", "--force-reinstall"))):
        _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *extra,
             package)
        assert "smoke test passed" in _run(python, smoke, tmp_path, VERSION, cwd=tmp_path)
        assert _run(script, "--version", cwd=tmp_path).strip() == f"fmlearn, version {VERSION}"
