"""Every Python block of the README and of docs/ runs as written, each in a fresh interpreter.

The blocks run in a scratch folder beside which ``../shared/data`` is the real data, as it
is beside the repository, one at a time and in order, so that a block that relies on an earlier one's
names, on a placeholder file or on a missing import fails here, as it would for a reader.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def python_blocks():
    """(file, line, code) of every fenced ``python`` block in the documents."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            found.append(pytest.param(path, match.group(1),
                                      id=f"{path.relative_to(ROOT)}:{line}"))
    return found


def test_the_documents_have_blocks():
    assert len(python_blocks()) >= 10


@pytest.mark.parametrize("path,code", python_blocks())
def test_block_runs_as_written(path, code, tmp_path):
    # Files a block writes land in a scratch folder that sees ../shared/data as the
    # repository root does.
    work = tmp_path / "repo"
    work.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    env = {**os.environ, "PYTHONWARNINGS": "error::UserWarning,error::FutureWarning,ignore:Port:UserWarning"}
    script = tmp_path / "block.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, f"{path.name} block failed:\n{code}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{path.name} block prints nothing the reader can see:\n{code}"
