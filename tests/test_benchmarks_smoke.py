"""Smoke tests of the benchmark scripts: each ``--quick`` variant runs and prints its table.

No timing is asserted (numbers belong in docs/benchmarks.md, not in tests); a test fails if a
script crashes, or does not print its table header and at least one data row. All are marked
``slow`` (real-time streams for 2-20 s each): ``pytest -m slow tests/test_benchmarks_smoke.py``, and
the CI's second step.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    pytest.param("acquisition_vs_mnelsl", ["--seconds", "2"],
                 "Latest 1 s window every 62.5 ms", ["neurodeck", "mne-lsl"], id="acquisition_vs_mnelsl",
                 marks=pytest.mark.slow),
    pytest.param("latency", ["--seconds", "1.5", "--pipelines", "psd-lda"],
                 "End-to-end latency", ["psd-lda"], id="latency", marks=pytest.mark.slow),
    pytest.param("onnx_vs_sklearn", [], "ONNX vs scikit-learn head", ["psd-lda", "DKF step"],
                 id="onnx_vs_sklearn", marks=pytest.mark.slow),
    pytest.param("dkf_step", [], "DKF step", ["nw f+Q"], id="dkf_step", marks=pytest.mark.slow),
    pytest.param("throughput", [], "Pseudo-online replay", ["psd-lda", "ts-lr"],
                 id="throughput", marks=pytest.mark.slow),
    pytest.param("gui_fps", ["--seconds", "2"], "Signal view", ["64x512"], id="gui_fps",
                 marks=pytest.mark.slow),
    pytest.param("scaling", ["--seconds", "1.5"], "Scaling", ["psd-lda"], id="scaling",
                 marks=pytest.mark.slow),
    pytest.param("soak", ["--minutes", "0.15"], "Soak", ["64x512"], id="soak",
                 marks=pytest.mark.slow),
    pytest.param("replay_decode", [], "replay -> decode -> independent inlet", ["median"],
                 id="replay_decode", marks=pytest.mark.slow),
    pytest.param("finalize_memory", ["--quick"], "Finalize 1 min", ["this commit"],
                 id="finalize_memory", marks=pytest.mark.slow),
    pytest.param("engine_hop", ["--pipelines", "ts-lr", "--stages", "--paced", "--floor"],
                 "The floor", ["ts-lr", "paced", "back to back", "eigh + log map", "sum (the floor)"],
                 id="engine_hop", marks=pytest.mark.slow),
    pytest.param("eigh_routes", [], "float32 eigenpairs", ["ssyevd", "S001 R12"],
                 id="eigh_routes", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "extra", "title", "row_words"), CASES)
def test_benchmark_quick(name: str, extra: list[str], title: str, row_words: list[str]) -> None:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--quick", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, f"benchmarks.{name} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    out = proc.stdout
    assert f"# benchmarks.{name}" in out
    assert "machine: nproc=" in out
    assert re.search(r"^### " + re.escape(title), out, re.M), out[-2000:]
    table_rows = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("|--")]
    for word in row_words:
        assert any(word in ln for ln in table_rows[1:]), f"no table row mentions {word!r}:\n{out}"
    if name == "soak":  # the loss check itself must hold on loopback
        assert "lossless: yes" in out, out
