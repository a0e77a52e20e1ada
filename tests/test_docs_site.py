"""The documentation site builds without a warning, and its pages render in a real browser.

``sphinx-build -W`` builds docs/ into a temporary folder: any warning (a broken docstring, a
dangling link, a page outside the table of contents) fails the build. Then a headless
Chromium (Debian's ``chromium``, which ``make test`` installs when it can) loads the home page
and the estimators' API page with their scripts run: the navigation links, the API entries
and the formula must be in the DOM, the formula laid out as mathematics (the sum's limits
above and below it, not in a row), and the screenshots must show a page. Without Chromium
the browser checks skip on a developer's machine and fail in CI.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Written beside the pages: loads one in a frame and reports where the first display
# formula's sum and its limits were drawn.
PROBE = """<!doctype html><meta charset="utf-8"><pre id="result">no result</pre>
<iframe id="page" src="{page}" width="1280" height="1600"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {{
  const doc = document.getElementById("page").contentDocument;
  const box = e => {{ const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }};
  const sum = doc.querySelector("div.math munderover");
  document.getElementById("result").textContent =
    JSON.stringify(sum ? Array.from(sum.children, box) : null);
}});
</script>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q",
                           "-b", "html", "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the docs do not build cleanly:\n{done.stderr[-5000:]}"
    return out / "html"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium to render the docs (make test installs Debian's chromium as root)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the browser checks")
        pytest.skip(message)
    profile = tmp_path_factory.mktemp("chromium-profile")

    def run(page, *flags):
        done = subprocess.run([path, "--headless", "--no-sandbox", "--disable-gpu",
                               f"--user-data-dir={profile}", "--window-size=1280,1600",
                               "--virtual-time-budget=5000", *flags, page.as_uri()],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout
    return run


def test_the_site_has_the_guide_and_the_api(site):
    for page in ["index", "guide/rating", "guide/ctr", "guide/topn", "guide/streaming",
                 "guide/serving", "guide/sagemaker", "dask", "api/estimators", "api/models",
                 "api/io", "api/recommend", "api/preprocessing", "api/datasets", "api/serve",
                 "api/dask", "api/plot"]:
        assert (site / f"{page}.html").is_file(), page
    estimators = (site / "api/estimators.html").read_text()
    for name in ["FMRegressor", "FMClassifier", "FMRanker", "FFMRegressor", "FFMClassifier"]:
        assert f'id="fmlearn.{name}"' in estimators and f'id="fmlearn.{name}.fit"' in estimators
    # The SageMaker page shows the hyperparameter table of the CLI's own docstring.
    assert "factors_init_sigma" in (site / "guide/sagemaker.html").read_text()


@pytest.mark.parametrize("page,links,marks", [
    ("index.html", ["guide/index.html", "api/index.html", "guide/rating.html", "dask.html"],
     ["<math", "<munderover>", "∑"]),
    ("api/estimators.html", ["../guide/index.html", "index.html", "io.html", "dask.html"],
     ['id="fmlearn.FMRegressor.fit"', "Parameters", "n_factors"]),
])
def test_a_browser_renders_the_page(site, chromium, page, links, marks):
    dom = chromium(site / page, "--dump-dom")
    hrefs = set(re.findall(r'<a [^>]*href="([^"#]*)', dom))
    assert not set(links) - hrefs, f"links missing from {page}: {set(links) - hrefs}"
    for mark in marks:
        assert mark in dom, f"{mark!r} not in the rendered {page}"

    from matplotlib.image import imread

    shot = site / (page.replace("/", "_") + ".png")
    chromium(site / page, f"--screenshot={shot}")
    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels[:, :, :3].std() > 0.05, f"the screenshot of {page} is blank"


def test_the_formula_is_typeset(site, chromium):
    probe = site / "probe.html"
    probe.write_text(PROBE.format(page="index.html"))
    dom = chromium(probe, "--allow-file-access-from-files", "--dump-dom")
    found = re.search(r'<pre id="result">([^<]*)</pre>', dom).group(1)
    assert found not in ("no result", "null"), f"the formula was not found: {found}"
    (_, base_top, _, base_bottom), (_, under_top, _, _), (_, _, _, over_bottom) = json.loads(found)
    # MathML laid out: the lower limit below the sum sign, the upper limit above it.
    assert under_top >= base_bottom - 1 and over_bottom <= base_top + 1, found
