"""Render the Features, Train, Replay and Online pages at 1400x900 on real EEG (EEGMMIDB S001).

Usage::

    QT_QPA_PLATFORM=offscreen python scripts/screenshots_pages.py [--out docs/screenshots]

Uses the demo recording shipped in ``assets/eegmmidb`` (S001 runs 4/8/12, left/right fist
imagery): the Features page analyses all three runs, the Train page cross-validates pipelines on
runs 4 and 8 and saves the best model, the Replay page evaluates it pseudo-online on the unseen
run 12 and then plays run 12 as LSL, and the Online page decodes that replay live (Graz bar and
cursor task); the Train page also draws the learning curve beside the shipped population model
(``04b-train-learning-curve.png``). Writes ``03-features-eegmmidb.png`` ... ``06-replay-eegmmidb.png``. Settings and
the session go to a temporary folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import make_parser, pump, start_qt, wait_for  # noqa: E402  (shared helpers)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--online-seconds", type=float, default=25.0)
    args = parser.parse_args(argv)
    app, tmp = start_qt("neurodeck-shots")

    from neurodeck.app.session import Session
    from neurodeck.app.ui.main_window import MainWindow

    runs = {p.stem[-3:]: p for p in sorted((ROOT / "assets" / "eegmmidb").glob("S001R*.edf"))}
    r04, r08, r12 = runs["R04"], runs["R08"], runs["R12"]
    args.out.mkdir(parents=True, exist_ok=True)
    win = MainWindow()
    win.confirm = lambda text: True
    win.resize(args.width, args.height)
    win.show()
    session = Session.create(tmp / "sessions", "S001", "eegmmidb")
    win.context.set_session(session)
    errors: list[str] = []
    win.context.error_reported.connect(errors.append)
    saved = []

    def shoot(name: str) -> None:
        app.processEvents()
        path = args.out / f"{name}.png"
        if not win.grab().save(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        saved.append(path)

    # --- features: all three runs, top-10 selection, topomap at the strongest frequency
    feat = win.show_page("features")
    feat.set_paths([r04, r08, r12])
    feat.compute()
    wait_for(app, lambda: feat.maps is not None and not feat.jobs.busy, 120, "the feature maps")
    import numpy as np

    r2 = feat.current_r2
    feat.freq_box.setValue(float(feat.maps.freqs[np.argmax(np.abs(r2).max(axis=0))]))
    feat.top_n.setValue(10)
    feat.auto_select()
    pump(app, 0.8)
    shoot("03-features-eegmmidb")

    # --- train on runs 4 + 8; save the best; write the report
    train = win.show_page("train")
    train.set_paths([r04, r08])
    train.set_pipelines(["psd-lda", "csp-lda", "ts-lr", "mdm"])
    train.run_cv()
    wait_for(app, lambda: train.result is not None and not train.jobs.busy, 600, "the CV")
    best = train.result.best()
    train.save_model(best)
    wait_for(app, lambda: train.last_model is not None and not train.jobs.busy, 120, "the model")
    train.export_report()
    wait_for(app, lambda: train.last_report is not None and not train.jobs.busy, 120, "the report")
    pump(app, 0.5)
    shoot("04-train-eegmmidb")
    # the learning curve of the best pipeline beside the shipped population model, fine-tuned
    train.population_check.setChecked(True)
    train.run_curve()
    wait_for(app, lambda: train.curve is not None and not train.jobs.busy, 600, "the curve")
    pump(app, 0.5)
    shoot("04b-train-learning-curve")
    train.tabs.setCurrentIndex(0)

    # --- replay: pseudo-online on unseen run 12, then play it as LSL for the online page
    replay = win.show_page("replay")
    replay.evaluate(train.last_model, r12)
    wait_for(app, lambda: replay.eval_result is not None and not replay.jobs.busy, 300,
             "the pseudo-online evaluation")
    replay.speed.setValue(1.0)
    replay.loop.setChecked(True)
    replay.play(r12)
    wait_for(app, lambda: replay.player is not None, 30, "the replay")
    pump(app, 3.0)
    shoot("06-replay-eegmmidb")

    # --- online: decode the replay live
    online = win.show_page("online")
    online.load_model(train.last_model)
    wait_for(app, lambda: online.decoder is not None and not online.jobs.busy, 60, "the model")
    online.start()
    pump(app, args.online_seconds)
    shoot("05-online-eegmmidb")
    online.tabs.setCurrentIndex(1)
    pump(app, 6.0)
    shoot("05b-online-cursor-eegmmidb")
    online.stop()
    pump(app, 0.5)
    win.close()
    for p in saved:
        print(p)
    print(f"report: {train.last_report}")
    if errors:
        print("errors shown in the window:", *errors, sep="\n  ", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
