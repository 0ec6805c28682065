"""One online DKF step, numpy vs onnxruntime, side by side, at realistic training sizes.

Run from the project root::

    python -m benchmarks.dkf_step [--quick] [--steps 2000]

Each row is one observation model fitted on the Flint reaching data (``../shared/data/flint_dkf``,
10 features, 2-D hand velocity; a simulated continuous recording when absent): Nadaraya-Watson on
1000 and 5000 training steps, an MLP (f by skl2onnx, Q by NW), a GP on 800 of 5000 steps
(hand-built float64 graph of its predictive mean and variance). One step = ``f(x)``, ``Q(x)`` and
the filter update, timed as the engine calls it (``dkf.step(x)``); the ONNX graph computes f and Q
together in one ``run`` of a warmed, single-threaded session (float32 kernels,
:mod:`neurodeck.decoders.dkf.export`). Budget: p50 <= 200 us including ONNX f and Q. The last
column is the backend a continuous bundle would record (:func:`~neurodeck.decoders.dkf.export.select_backend`).
"""
from __future__ import annotations

import logging
import sys

import numpy as np

from benchmarks import _util as u
from neurodeck.decoders.dkf import DiscriminativeKalmanFilter
from neurodeck.decoders.dkf.export import numpy_observation, select_backend

FLINT = u.ROOT.parent / "shared" / "data" / "flint_dkf"
BUDGET_US = 200.0


def data(quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    if (FLINT / "x.csv").is_file():
        X = np.loadtxt(FLINT / "x.csv", delimiter=",")
        Z = np.loadtxt(FLINT / "z.csv", delimiter=",")
        return X, Z, "Flint reaching, 10 features"
    dec = u.train_dkf(160.0, seconds=60.0 if quick else 120.0)
    X, Z = dec.training_rows
    return X, Z, "simulated motor band power"


def main(argv: list[str] | None = None) -> int:
    p = u.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="timed steps per backend and rep")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    u.print_header("dkf_step", args)
    X, Z, what = data(args.quick)
    n_steps = 300 if args.quick else args.steps
    cases = [("nw", 1000, {})] if args.quick else [
        ("nw", 1000, {}), ("nw", 5000, {}), ("mlp", 5000, {"hidden_layer_sizes": (32,)}),
        ("gp", 5000, {"gp_max_samples": 800}),
    ]
    rows = []
    for reg, n_train, extra in cases:
        n_train = min(n_train, len(X) - min(1000, len(X) // 4))  # keep rows to step over
        dkf = DiscriminativeKalmanFilter(regressor=reg, loo_max_samples=1000, **extra)
        dkf.fit(X[:n_train], Z[:n_train])
        model = dkf.to_onnx()
        test = X[n_train:n_train + 1000]
        dkf.use_onnx(None)
        f_np, Q_np = dkf.predict_f_Q(test[:200])
        dkf.use_onnx(model)
        f_ox, Q_ox = dkf.predict_f_Q(test[:200])
        diff = float(np.max(np.abs(f_np - f_ox)) / np.max(np.abs(f_np)))
        reps = [select_backend(dkf, model, test, n_steps) for _ in range(u.n_reps(args))]
        m = u.median_rows([{k: v for k, v in r.items() if k != "backend"} for r in reps])
        choice = "numpy" if numpy_observation(model) is not None and (
            m["numpy_p50_us"] < m["onnx_p50_us"]) else "onnx"
        rows.append([
            f"{reg} f+Q", n_train, m["numpy_p50_us"], m["numpy_p99_us"], m["onnx_p50_us"],
            m["onnx_p99_us"], m["numpy_p50_us"] / m["onnx_p50_us"],
            "yes" if min(m["onnx_p50_us"], m["numpy_p50_us"]) <= BUDGET_US else "NO",
            choice, f"{diff:.1e}",
        ])
    u.print_table(
        f"DKF step (f, Q + update), numpy vs onnxruntime, us, {what}",
        ["model", "n_train", "numpy p50", "numpy p99", "onnx p50", "onnx p99",
         "numpy/onnx", "p50 <= 200 us", "bundle backend", "max rel. diff f"],
        rows, digits=1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
