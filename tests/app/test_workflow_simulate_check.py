"""`neurodeck simulate --check`: the read-back logic lives in the Qt-free workflow layer
(`neurodeck.app.workflow.simulate_check`); the command only parses and prints."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from neurodeck.acquisition.simulator import SimulatorConfig
from neurodeck.app.workflow.simulate_check import SimulatorCheck

COMMAND = Path(__file__).resolve().parents[2] / "app" / "commands" / "simulate.py"


def test_check_reads_back_every_sample_through_pylsl(unique_name):
    cfg = SimulatorConfig(n_channels=6, srate=256.0, name=unique_name, counter_channel=True, seed=4)
    check = SimulatorCheck(cfg, duration=2.5, speed=2.0, source_id=unique_name)
    assert check.source_id == unique_name and check.expected == 640
    ticks = []
    result = check.run(progress=lambda s, n, m: ticks.append((s, n, m)))
    assert result.ok and result.problems == [], result.problems
    assert (result.received, result.lost, result.n_channels, result.n_eeg) == (640, 0, 7, 6)
    assert result.counter_ok and len(result.markers) == result.markers_pushed > 0
    assert result.timestamp_rate == pytest.approx(256.0, rel=1e-3)
    # one progress call a second, counts growing
    assert ticks and [s for s, _, _ in ticks] == list(range(1, len(ticks) + 1))
    assert all(a[1] <= b[1] for a, b in zip(ticks, ticks[1:]))


def test_check_refuses_a_simulator_without_counter(unique_name):
    cfg = SimulatorConfig(n_channels=4, srate=128.0, name=unique_name)
    with pytest.raises(ValueError, match="COUNTER"):
        SimulatorCheck(cfg, duration=1.0)


def test_command_holds_no_read_back_logic():
    """No LSL, numpy or signal handling in the command: it parses, calls the workflow, prints."""
    tree = ast.parse(COMMAND.read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}
    assert not imported & {"pylsl", "numpy", "signal", "contextlib"}, imported
    check = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_check")
    assert not [n for n in ast.walk(check) if isinstance(n, ast.While | ast.Try)]


def test_cli_check_output_and_exit_codes(unique_name, cli):
    """The command's output, line by line, as before the move (and exit 2 on bad values)."""
    proc = cli("simulate", "--check", "--duration", "2", "--channels", "4", "--srate", "128",
               "--speed", "2", "--name", unique_name, "--seed", "1", "--source-id", unique_name)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (f"neurodeck simulate --check: {unique_name!r} 4 EEG ch + COUNTER @ 128 Hz "
                        f"for 2 s (source_id {unique_name})")
    assert all(re.fullmatch(r" +\d+ s  received +\d+ samples  markers +\d+", x) for x in lines[1:-5])
    assert lines[-5] == "received 256/256 samples x 5 channels (4 EEG + COUNTER, format double64)"
    assert re.fullmatch(r"rate: nominal 128 Hz, from timestamps 128\.000 Hz, arrival [\d.]+ Hz "
                        r"\(speed 2\)", lines[-4]), lines[-4]
    assert lines[-3] == "counter: contiguous 0..255, lost 0"
    assert re.fullmatch(r"markers: (\d+)/\1 received \(.*\)", lines[-2]), lines[-2]
    assert lines[-1] == "check OK: every sample arrived, in order, with its markers"
    bad = cli("simulate", "--check", "--srate", "32")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == ("neurodeck simulate: error: simulator srate 32.0 invalid; "
                                  "expected a sampling rate in 64..16384 Hz")
