"""docs/tutorial.md runs as written: its Python blocks, in order, in a fresh interpreter."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TUTORIAL = ROOT / "docs" / "tutorial.md"


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each fenced ```python block, in order."""
    return [(markdown[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", markdown, re.M | re.S)]


def test_python_blocks_are_found():
    blocks = python_blocks("text\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n")
    assert blocks == [(3, "a = 1\n"), (9, "b = 2\n")]


@pytest.mark.slow  # ~30 s of simulated sessions at 16x real time (17 s CPU); the CI's second step
def test_tutorial_runs_and_decodes_above_chance(tmp_path):
    blocks = python_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 5
    script = "".join(f"# docs/tutorial.md line {line}\n{code}\n" for line, code in blocks)
    (tmp_path / "tutorial.py").write_text(script)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "tutorial.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-4000:]}"
    assert "-> lost" not in proc.stderr, proc.stderr  # a planned end is no lost stream
    out = proc.stdout
    # every sample the recorder received was written
    received, written = map(int, re.search(r"'received': (\d+), 'written': (\d+)", out).groups())
    assert received == written > 20 * 6 * 256  # 20 trials of >= 6 s at 256 Hz
    scores = {m[0]: float(m[1]) for m in re.findall(r"^(\S+): roc_auc ([\d.]+)$", out, re.M)}
    assert set(scores) == {"csp-lda", "ts-lr"} and min(scores.values()) > 0.7, out
    assert (tmp_path / "model" / "model.onnx").is_file()
    assert int(re.search(r"^(\d+) live decisions", out, re.M).group(1)) > 200, out
    accuracy, n_trials = re.search(r"trial accuracy ([\d.]+) over (\d+) trials", out).groups()
    assert int(n_trials) == 10 and float(accuracy) >= 0.7, out
