"""DKF vs Kalman filter on the Flint reaching data, and the latency of one DKF step.

Run from the project root::

    python -m benchmarks.dkf_flint [--no-gp] [--no-mlp] [--steps 2000]

Data: ``../shared/data/flint_dkf`` (``x.csv`` 7792 x 10 features, ``z.csv`` 7792 x 2 hand
velocity, comma separated, no header). Train rows 0-4999, test rows 5000-5999, as in Burkhart et
al. (Neural Computation 2020). Prints per model: velocity correlation (per dimension and mean),
normalised RMSE (RMSE / std of the true velocity, per dimension and mean), mean absolute angle
error, fit time, and the relative NRMSE improvement over the Kalman filter; then p50/p99 of one
online DKF-NW step with f/Q in numpy and in onnxruntime (budget: p50 <= 200 us).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from neurodeck.decoders.dkf import DiscriminativeKalmanFilter, KalmanFilter, velocity_metrics

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "flint_dkf"
TRAIN = slice(0, 5000)
TEST = slice(5000, 6000)
STEP_BUDGET_P50_US = 200.0


def load_flint(folder: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Load and check ``x.csv`` (n, 10) and ``z.csv`` (n, 2): numeric, no header, same rows."""
    arrays = []
    for name in ("x.csv", "z.csv"):
        path = folder / name
        if not path.is_file():
            raise SystemExit(f"missing {path}: the Flint DKF data live in ../shared/data/flint_dkf")
        first = path.read_text().split("\n", 1)[0]
        try:
            [float(v) for v in first.split(",")]
        except ValueError as exc:
            raise SystemExit(f"{path}: first line {first!r} is not numeric (a header?)") from exc
        arrays.append(np.loadtxt(path, delimiter=",", ndmin=2))
    x, z = arrays
    if x.shape[0] != z.shape[0] or x.shape[0] < TEST.stop or z.shape[1] != 2:
        raise SystemExit(f"unexpected shapes x {x.shape}, z {z.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(z))):
        raise SystemExit("non-finite values in the Flint data")
    return x, z


def _fmt_row(name: str, m: dict, fit_s: float, kf_nrmse: float | None) -> str:
    impr = "" if kf_nrmse is None else f"{100 * (1 - m['nrmse_mean'] / kf_nrmse):+7.1f}%"
    return (
        f"{name:<22}{m['corr'][0]:>7.3f}{m['corr'][1]:>7.3f}{m['corr_mean']:>7.3f}"
        f"{m['nrmse'][0]:>8.3f}{m['nrmse'][1]:>8.3f}{m['nrmse_mean']:>8.3f}"
        f"{np.degrees(m['angle_error']):>9.1f}{fit_s:>8.1f}  {impr}"
    )


def _time_steps(dkf: DiscriminativeKalmanFilter, X: np.ndarray, n: int) -> np.ndarray:
    dkf.reset()
    for x in X[:50]:  # warm-up
        dkf.step(x)
    dkf.reset()
    out = np.empty(n)
    for i in range(n):
        x = X[i % len(X)]
        t0 = time.perf_counter_ns()
        dkf.step(x)
        out[i] = (time.perf_counter_ns() - t0) / 1e3
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-gp", action="store_true", help="skip DKF-GP (slowest fit)")
    parser.add_argument("--no-mlp", action="store_true", help="skip DKF-MLP")
    parser.add_argument("--steps", type=int, default=2000, help="timed online steps per path")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with x.csv and z.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    x, z = load_flint(args.data)
    Xtr, Ztr, Xte, Zte = x[TRAIN], z[TRAIN], x[TEST], z[TEST]
    print(f"Flint DKF benchmark: x {x.shape}, z {z.shape}; train rows {TRAIN.start}-"
          f"{TRAIN.stop - 1}, test rows {TEST.start}-{TEST.stop - 1}")

    models: list[tuple[str, object]] = [
        ("KF", KalmanFilter()),
        ("DKF-NW", DiscriminativeKalmanFilter(regressor="nw")),
        ("DKF-NW robust", DiscriminativeKalmanFilter(regressor="nw", robust=True)),
    ]
    if not args.no_mlp:
        models.append(("DKF-MLP", DiscriminativeKalmanFilter(regressor="mlp")))
        models.append(("DKF-MLP robust", DiscriminativeKalmanFilter(regressor="mlp", robust=True)))
    if not args.no_gp:
        models.append(("DKF-GP", DiscriminativeKalmanFilter(regressor="gp")))

    header = (
        f"{'model':<22}{'r_x':>7}{'r_y':>7}{'r_mean':>7}{'nrmse_x':>8}{'nrmse_y':>8}"
        f"{'nrmse':>8}{'angle°':>9}{'fit_s':>8}  vs KF (NRMSE)"
    )
    print()
    print(header)
    print("-" * len(header))
    kf_nrmse = None
    fitted: dict[str, object] = {}
    for name, est in models:
        t0 = time.perf_counter()
        est.fit(Xtr, Ztr)
        fit_s = time.perf_counter() - t0
        fitted[name] = est
        m = velocity_metrics(Zte, est.predict(Xte))
        print(_fmt_row(name, m, fit_s, kf_nrmse), flush=True)
        if name == "KF":
            kf_nrmse = m["nrmse_mean"]
        if isinstance(est, DiscriminativeKalmanFilter) and not est.robust:
            f, _ = est.predict_f_Q(Xte)
            raw = velocity_metrics(Zte, f + est.z_mean_)
            print(_fmt_row(f"  {est.regressor.upper()} f(x), no filter", raw, 0.0, kf_nrmse))
    nw = fitted["DKF-NW"]
    print(f"\nDKF-NW bandwidths (standardised units): f {nw.bandwidth_:.3f}, Q {nw.q_bandwidth_:.3f}")
    print("angle° = mean absolute angle between true and decoded velocity vectors, in degrees")

    # -- latency of one online step -----------------------------------------------------------
    print(f"\nOne DKF-NW online step (f, Q over {Xtr.shape[0]} training points + update), "
          f"{args.steps} steps:")
    numpy_us = _time_steps(nw, Xte, args.steps)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        nw.to_onnx().SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    nw.use_onnx(sess, warmup=20)
    onnx_us = _time_steps(nw, Xte, args.steps)
    run_us = np.empty(args.steps)
    for i in range(args.steps):
        xi = Xte[i % len(Xte)][None, :]
        t0 = time.perf_counter_ns()
        sess.run(None, {"x": xi})
        run_us[i] = (time.perf_counter_ns() - t0) / 1e3
    nw.use_onnx(None)
    for label, v in (
        ("numpy f,Q + update", numpy_us),
        ("onnxruntime f,Q + update", onnx_us),
        ("onnxruntime f,Q only", run_us),
    ):
        p50, p99 = np.percentile(v, [50, 99])
        ok = "ok" if p50 <= STEP_BUDGET_P50_US else "OVER BUDGET"
        print(f"  {label:<26} p50 {p50:8.1f} us   p99 {p99:8.1f} us   ({ok}: p50 <= "
              f"{STEP_BUDGET_P50_US:.0f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
