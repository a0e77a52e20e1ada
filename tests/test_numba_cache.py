"""``import fmlearn`` works wherever numba cannot cache beside the sources or in the home."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

FIT = ("import numpy as np, fmlearn; "
       "print(fmlearn.FMRegressor(max_iter=2, n_factors=2).fit(np.eye(3), [1., 2., 3.])"
       ".predict(np.eye(3)).shape)")
# Importing the estimators defines every kernel (where a missing cache folder failed); one
# small kernel then compiles and is cached, in far less time than a fit compiles.
LIGHT = ("import numpy as np, fmlearn; from fmlearn import FMRegressor, FFMRegressor; "
         "from fmlearn.kernels.rows import column_counts; "
         "print(column_counts(np.array([2, 0, 2], np.int32), 4).shape)")
NOBODY = 65534
# Whether numpy imports and fmlearn's sources can be found, without importing fmlearn.
READABLE = "import importlib.util, numpy; assert importlib.util.find_spec('fmlearn')"


@pytest.fixture
def tmp_path():
    """A folder the unprivileged user can reach (pytest's own sit in a root-only folder)."""
    path = tempfile.mkdtemp(prefix="fmlearn-cache-test-")
    os.chmod(path, 0o777)
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


def run_as_nobody(code, tmp_path, env_extra=()):
    """Run ``code`` as an unprivileged user with no home, for whom the package's folders
    and numba's user-wide cache are not writable (as in a hardened container)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "TMPDIR": str(tmp_path),
           "PYTHONWARNINGS": "default", **dict(env_extra)}
    command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
               sys.executable, "-c"]
    # Reading the environment is the test's premise, not what it tests: a checkout inside a
    # folder only its owner may enter (``mktemp -d`` makes one) hides numpy and fmlearn.
    probe = subprocess.run(command + [READABLE], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("the unprivileged user cannot read this virtual environment or checkout "
                    f"(a folder above it is private): {probe.stderr.strip().splitlines()[-1]}")
    return subprocess.run(command + [code], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)


def test_import_falls_back_to_a_private_temporary_cache(tmp_path):
    done = run_as_nobody(FIT, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3,)"
    cache = tmp_path / f"fmlearn-numba-cache-{NOBODY}"
    assert cache.is_dir() and (cache.stat().st_mode & 0o777) == 0o700
    assert any(cache.rglob("*.nbi"))  # the kernels were cached there
    assert done.stderr.count("compiled kernels are cached in") == 1  # said once
    assert "NUMBA_CACHE_DIR" in done.stderr


def test_an_unwritable_numba_cache_dir_is_replaced(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    done = run_as_nobody(LIGHT, tmp_path, {"NUMBA_CACHE_DIR": str(locked)})
    assert done.returncode == 0, done.stderr
    assert f"NUMBA_CACHE_DIR={str(locked)!r} is not writable" in done.stderr


def test_without_any_writable_folder_nothing_is_cached_and_kernels_run(tmp_path):
    code = textwrap.dedent(f"""
        import tempfile
        def nowhere():
            raise FileNotFoundError("no usable temporary directory")
        tempfile.gettempdir = nowhere
        {LIGHT}
        import fmlearn._numba_cache as cache
        print(cache.CACHE)
    """)
    done = run_as_nobody(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(4,)", "False"]
    assert done.stderr.count("are not cached") == 1


def test_a_cache_folder_owned_by_another_user_is_not_used(tmp_path):
    planted = tmp_path / f"fmlearn-numba-cache-{NOBODY}"
    planted.mkdir(mode=0o777)  # made by root: someone else's
    done = run_as_nobody(LIGHT, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "are not cached" in done.stderr
    assert not any(planted.rglob("*.nbi"))
