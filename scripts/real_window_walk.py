"""Walk the clinician's path through the REAL neurodeck window with real X input, and screenshot it.

Usage::

    python scripts/real_window_walk.py --size 1920x1080 --out /tmp/walk-1920 [--suffix -1920]

Starts ``Xvfb`` at ``--size``, launches ``neurodeck -v gui`` as a separate process on that display
(HOME, settings and sessions in a temporary folder; ``NEURODECK_DUMP_WIDGETS`` makes the window
write its visible widgets' screen rectangles, see ``app/ui/widget_dump.py``) and drives it with
xdotool only (pointer moves, clicks, typed text, keys): start the built-in simulator, Session ›
New (Ctrl+N, subject, Create session), Calibrate (3 trials per class, Start, participant screen),
Features (Use session calibration, Compute), Train (cross-validation, save the model), Online
(a cued run with feedback on the participant screen, then the Cursor task tab and back), Replay (type the EEGMMIDB file, Play,
Evaluate: the session's model is refused with a clear message, the shipped EEGMMIDB
population model scores). Each step is screenshotted with ``import -window root`` into --out.

Xvfb has no window manager: the main window is maximised with ``xdotool windowsize`` (what a
person does with the title bar) and, on one monitor, the full-screen participant window is put
behind the operator window with ``xdotool windowraise`` (the person's Alt+Tab).

Exit status 0 when the whole path ran; 3 when it ran but the window grew past the screen,
a table's column header was cut short in a screenshot (the widget dump's ``cut_headers``)
or the stream alarm was raised on the way (each such note is printed); 1 with a one-line reason when a step failed: the GUI
process exited, an error appeared in the window's error banner (its history is in the dump), the
GUI's log has an ERROR or a traceback, or an expected widget or state did not appear in time.
The GUI log and the last widget dump are copied into --out on failure.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDF = "assets/eegmmidb/S001R12.edf"
POPULATION = "assets/population/eegmmidb-default"
LOST = "The EEG stream is lost"  # main_window.LOST_ALARM


class WalkError(RuntimeError):
    """A step of the walk failed; the message says which and why."""


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x800")
    return int(m.group(1)), int(m.group(2))


def _free_display() -> int:
    for n in range(60, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise WalkError("no free X display number in :60..:199")


class Walk:
    """One GUI process on one Xvfb display, driven by xdotool."""

    def __init__(self, size: tuple[int, int], out: Path, suffix: str, maximise: bool = True):
        self.width, self.height = size
        self.out = out
        self.suffix = suffix
        self.maximise = maximise
        self.tmp = Path(tempfile.mkdtemp(prefix="neurodeck-walk-"))
        self.dump_path = self.tmp / "widgets.json"
        self.log_path = self.tmp / "gui.log"
        self.display = f":{_free_display()}"
        self.xvfb: subprocess.Popen | None = None
        self.gui: subprocess.Popen | None = None
        self.shots: list[Path] = []
        #: defects seen on the way that do not stop the walk (e.g. the window wider than the screen)
        self.findings: list[str] = []
        self.known_errors = 0
        self.known_log_errors = 0
        self.env = dict(os.environ, DISPLAY=self.display, HOME=str(self.tmp),
                        NEURODECK_HOME=str(self.tmp / "config"),
                        XDG_CONFIG_HOME=str(self.tmp / "xdg"),
                        NEURODECK_DUMP_WIDGETS=str(self.dump_path), QT_QPA_PLATFORM="xcb",
                        OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.env.pop("WAYLAND_DISPLAY", None)

    # ------------------------------------------------------------------ processes
    def start(self) -> None:
        self.xvfb = subprocess.Popen(
            ["Xvfb", self.display, "-screen", "0", f"{self.width}x{self.height}x24",
             "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = Path(f"/tmp/.X11-unix/X{self.display[1:]}")
        self._until(lambda: sock.exists(), 10, "Xvfb to start", check_gui=False)
        self.log = open(self.log_path, "w")
        self.gui = subprocess.Popen([sys.executable, "-m", "neurodeck", "-v", "gui"],
                                    cwd=ROOT, env=self.env, stdout=self.log,
                                    stderr=subprocess.STDOUT)
        self._until(lambda: self.state().get("page") == "connect", 60, "the window")
        if self.maximise:
            wid = self._main_window_id()
            self.xdo("windowmove", wid, "0", "0")
            self.xdo("windowsize", wid, str(self.width), str(self.height))
            self._until(lambda: self._window("MainWindow")[2:] == [self.width, self.height], 10,
                        "the window to fill the screen")

    def stop(self) -> None:
        if self.gui is not None and self.gui.poll() is None:
            self.gui.terminate()  # SIGTERM: Qt quits without asking
            try:
                self.gui.wait(20)
            except subprocess.TimeoutExpired:
                self.gui.kill()
                self.gui.wait(5)
        if self.xvfb is not None and self.xvfb.poll() is None:
            self.xvfb.terminate()
            self.xvfb.wait(10)
        if getattr(self, "log", None) is not None:
            self.log.close()

    def xdo(self, *args: str) -> str:
        res = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                             timeout=30)
        if res.returncode != 0:
            raise WalkError(f"xdotool {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout.strip()

    def _main_window_id(self) -> str:
        ids = self.xdo("search", "--onlyvisible", "--name", "^neurodeck \u2014 (motor|[^p])").split()
        if not ids:
            raise WalkError("the main window is not on the display")
        return ids[0]

    # ------------------------------------------------------------------ reading the window
    def dump(self) -> dict:
        try:
            return json.loads(self.dump_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"widgets": {}, "state": {}}

    def state(self) -> dict:
        return self.dump().get("state", {})

    def _window(self, cls: str) -> list[int]:
        for w in self.state().get("windows", []):
            if w["class"] == cls:
                return w["rect"]
        return []

    def check(self) -> None:
        """Fail on process exit, a new error in the banner's history, or an error in the log."""
        if self.gui is not None and self.gui.poll() is not None:
            raise WalkError(f"the GUI exited with status {self.gui.returncode}")
        errors = self.state().get("errors", [])
        for text in errors[self.known_errors:]:
            if not text.startswith(LOST):
                raise WalkError(f"the window shows an error: {text}")
            # the stream alarm: the source stalled (e.g. a loaded machine); noted, not fatal
            note = f"the stream alarm was raised (load average {os.getloadavg()[0]:.1f}): {text}"
            self.findings.append(note)
            print(f"  NOTE {note}", flush=True)
            self.known_errors += 1
        bad = self._log_errors()
        if len(bad) > self.known_log_errors:
            raise WalkError(f"the GUI log has an error: {bad[self.known_log_errors]}")

    def _log_errors(self) -> list[str]:
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [ln for ln in log.splitlines() if "Traceback" in ln or " ERROR " in ln
                or ln.startswith("ERROR")]

    def expect_error(self, part: str, timeout: float = 60.0) -> str:
        """Wait for an error containing ``part`` in the banner (a refusal the walk provokes on
        purpose); accept it and the log lines written with it. Returns its text."""
        end = time.monotonic() + timeout
        while True:
            errors = self.state().get("errors", [])
            news = [e for e in errors[self.known_errors:] if not e.startswith(LOST)]
            if news:
                if part not in news[0]:
                    raise WalkError(f"expected an error with {part!r}, the window shows "
                                    f"{news[0]!r}")
                break
            if time.monotonic() > end:
                raise WalkError(f"timed out after {timeout:g} s waiting for the error {part!r}")
            time.sleep(0.25)
        time.sleep(0.5)
        self.known_errors = len(errors)
        self.known_log_errors = len(self._log_errors())
        return news[0]

    def _until(self, cond, timeout: float, what: str, check_gui: bool = True) -> None:
        end = time.monotonic() + timeout
        while True:
            if check_gui:
                self.check()
            if cond():
                return
            if time.monotonic() > end:
                raise WalkError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.25)

    def widget(self, name: str, timeout: float = 15.0, enabled: bool = True) -> dict:
        found: dict = {}

        def ready() -> bool:
            w = self.dump().get("widgets", {}).get(name)
            if w is None or (enabled and not w.get("enabled")) or w["rect"][2] <= 0:
                return False
            found.update(w)
            return True

        self._until(ready, timeout, f"widget {name!r}" + (" (enabled)" if enabled else ""))
        return found

    def text(self, name: str) -> str:
        return self.dump().get("widgets", {}).get(name, {}).get("text", "")

    # ------------------------------------------------------------------ real input
    def click(self, name: str, timeout: float = 15.0) -> None:
        found = self.widget(name, timeout)
        x, y, w, h = found["rect"]
        cx, cy = x + w // 2, y + h // 2
        if found["class"] in ("QCheckBox", "QRadioButton"):
            cx = x + min(w // 2, 9)  # the box itself: a wide check box ignores clicks past its text
        if not (0 <= cx < self.width and 0 <= cy < self.height):
            raise WalkError(f"widget {name!r} is off screen at ({cx}, {cy}) on a "
                            f"{self.width}x{self.height} screen")
        self.xdo("mousemove", "--sync", str(cx), str(cy))
        self.xdo("click", "1")
        time.sleep(0.3)

    def type_into(self, name: str, text: str) -> None:
        self.click(name)
        self.xdo("key", "ctrl+a")
        self.xdo("type", "--delay", "20", text)
        self.xdo("key", "Tab")  # editingFinished
        time.sleep(0.3)
        self._until(lambda: self.text(name).strip().startswith(text.strip()), 5,
                    f"{name!r} to show {text!r} (shows {self.text(name)!r})")

    def key(self, keys: str) -> None:
        self.xdo("key", keys)
        time.sleep(0.3)

    def fits(self, where: str) -> None:
        """Note a defect when the main window has grown past the screen (clipped controls)."""
        rect = self._window("MainWindow")
        if rect and (rect[0] + rect[2] > self.width or rect[1] + rect[3] > self.height):
            note = (f"{where}: the window is {rect[2]}x{rect[3]} at ({rect[0]}, {rect[1]}), "
                    f"larger than the {self.width}x{self.height} screen")
            if note not in self.findings:
                self.findings.append(note)
                print(f"  NOTE {note}", flush=True)

    def page(self, key: str) -> None:
        self.click(f"sidebar:{key}")
        self._until(lambda: self.state().get("page") == key, 10, f"the {key} page")
        time.sleep(0.5)
        self.fits(f"on opening the {key} page")
        if self.maximise and self._window("MainWindow")[2:] != [self.width, self.height]:
            # the person maximises again (the page may still refuse to be narrower)
            wid = self._main_window_id()
            self.xdo("windowmove", wid, "0", "0")
            self.xdo("windowsize", wid, str(self.width), str(self.height))
            time.sleep(0.5)

    def busy_then_idle(self, what: str, timeout: float, start_timeout: float = 10.0) -> None:
        try:
            self._until(lambda: bool(self.state().get("busy")), start_timeout, f"{what} to start")
        except WalkError:
            pass  # finished before the first dump said so
        self._until(lambda: not self.state().get("busy"), timeout, f"{what} to finish")

    def raise_main(self) -> None:
        """The person's Alt+Tab back to the operator window (no window manager here)."""
        self.xdo("windowraise", self._main_window_id())
        time.sleep(0.5)

    def shot(self, name: str) -> Path:
        self.check()
        self.fits(f"{name}{self.suffix}.png")
        for cut in self.state().get("cut_headers", []):  # a column too narrow for its header
            note = f"{name}{self.suffix}.png: a table header is cut: {cut}"
            if note not in self.findings:
                self.findings.append(note)
                print(f"  NOTE {note}", flush=True)
        time.sleep(0.4)  # let the last repaint reach the X server
        path = self.out / f"{name}{self.suffix}.png"
        res = subprocess.run(["import", "-window", "root", str(path)], env=self.env,
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise WalkError(f"import could not write {path}: {res.stderr.strip()}")
        (self.out / f"{name}{self.suffix}.json").write_text(
            json.dumps(self.state(), indent=1, ensure_ascii=False), encoding="utf-8")
        self.shots.append(path)
        print(f"  {path}", flush=True)
        return path

    # ------------------------------------------------------------------ the clinician's path
    def run(self, trials: int, online_trials: int) -> None:
        self.start()
        self.shot("w01-connect")
        self.click("connect.sim_button")
        self._until(lambda: self.state().get("stream_state") in ("connected", "recovered"), 30,
                    "the simulator stream")
        time.sleep(2.0)
        self.shot("w02-connect-simulator")

        self.click("sidebar:connect")  # pointer over the window: Ctrl+N reaches it
        self.key("ctrl+n")
        self.type_into("SessionDialog.subject_edit", "S01")
        self.shot("w03-session-dialog")
        self.click("SessionDialog.create_button")
        self._until(lambda: "S01" in self.state().get("session", ""), 10, "the session")

        self.page("calibrate")
        self.type_into("calibrate.trials_box", str(trials))
        self.shot("w04-calibrate")
        self.click("calibrate.start_button")
        self._until(lambda: bool(self.state().get("busy")), 15, "the calibration run")
        time.sleep(4.0)
        self.shot("w05-calibrate-running")
        self.click("calibrate.full_button")
        self._until(lambda: bool(self._window("ParticipantScreen")), 10, "the participant screen")
        self._until(lambda: (self.state().get("participant") or {}).get("phase") == "cue", 30,
                    "a cue on the participant screen")
        time.sleep(0.3)
        self.shot("w06-participant-calibration")
        self.raise_main()
        self._until(lambda: not self.state().get("busy"), 60 + 20 * trials,
                    "the calibration run to end")
        time.sleep(1.0)
        self.shot("w07-calibrate-done")

        self.page("features")
        self.click("features.use_session")
        self.click("features.compute_button")
        self.busy_then_idle("the feature maps", 180)
        time.sleep(1.0)
        self.shot("w08-features")

        self.page("train")
        self.click("train.run_button")
        self.busy_then_idle("the cross-validation", 600)
        time.sleep(1.0)
        self.shot("w09-train-cv")
        self.click("train.save_button")
        self.busy_then_idle("saving the model", 180)
        models = sorted(self.tmp.rglob("model.json"), key=lambda p: p.stat().st_mtime)
        if not models:
            raise WalkError(f"'Save selected model' wrote no model.json under {self.tmp}")
        model_dir = models[-1].parent
        time.sleep(1.0)
        self.shot("w10-train-saved")

        self.page("online")
        self.click("online.refresh_button")
        self.click("online.load_button")
        self._until(lambda: self.text("online.model_info") not in ("", "No model loaded."), 60,
                    "the model to load")
        if not self.widget("online.cued").get("checked"):
            self.click("online.cued")
            self._until(lambda: self.widget("online.cued").get("checked"), 5,
                        "'cued run' to be checked")
        self.type_into("online.cued_trials", str(online_trials))
        self.shot("w11-online-ready")
        self.click("online.start_button")
        self._until(lambda: bool(self.state().get("busy")), 20, "the online run")
        time.sleep(3.0)
        self.click("online.participant_button")
        self._until(lambda: bool(self._window("ParticipantScreen")), 10, "the participant screen")

        def feedback() -> bool:  # a cue on the bar and the bar grown past a quarter
            p = self.state().get("participant") or {}
            return bool(p.get("bar_cue")) and abs(p.get("bar_value") or 0.0) > 0.25

        self._until(feedback, 60, "feedback on the participant screen")
        self.shot("w12-participant-online")
        self.raise_main()
        time.sleep(3.0)
        self.shot("w13-online-running")
        self._until(lambda: not self.state().get("busy"), 60 + 25 * online_trials,
                    "the cued online run to end")
        time.sleep(1.0)
        self.shot("w14-online-done")
        # the cursor task tab once: its controls used to squeeze the score table to ~200 px
        # for the rest of the session (the headers' check in shot() sees that)
        self.click("tab:Cursor task")
        time.sleep(0.5)
        self.shot("w14b-online-cursor-tab")
        self.click("tab:Graz bar")
        time.sleep(0.5)
        self.shot("w14c-online-graz-again")

        self.page("replay")
        self.type_into("replay.file_edit", EDF)
        self.click("replay.play_button")
        time.sleep(4.0)
        self.shot("w15-replay-playing")
        # the session's model (simulator, 512 Hz) on the 160 Hz file: a clear refusal
        self.type_into("replay.model_edit", str(model_dir))
        self.click("replay.eval_button")
        self.expect_error("the model expects 512 Hz")
        self.shot("w16-replay-refused")
        self.click("banner.close_button")
        # the shipped EEGMMIDB population model on the file played (Recording left empty)
        self.type_into("replay.model_edit", POPULATION)
        self.click("replay.eval_button")
        self.busy_then_idle("the pseudo-online evaluation", 300)
        self._until(lambda: self.text("replay.eval_status") in ("Done.", "Failed.", "Cancelled."),
                    30, "the evaluation result")
        time.sleep(1.0)
        self.shot("w17-replay-evaluated")
        if self.text("replay.eval_status") != "Done.":
            raise WalkError(f"pseudo-online evaluation ended {self.text('replay.eval_status')!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=_size, default=(1280, 800), help="screen WIDTHxHEIGHT")
    p.add_argument("--out", type=Path, required=True, help="folder for the screenshots")
    p.add_argument("--suffix", default="", help="added to every file name, e.g. -1920")
    p.add_argument("--trials", type=int, default=3, help="calibration trials per class")
    p.add_argument("--online-trials", type=int, default=2, help="online cued trials per class")
    p.add_argument("--no-maximise", action="store_true",
                   help="keep the window's own first size instead of filling the screen")
    p.add_argument("--keep", action="store_true", help="keep the temporary HOME folder")
    args = p.parse_args(argv)
    for tool in ("Xvfb", "xdotool", "import"):
        if shutil.which(tool) is None:
            print(f"real_window_walk: {tool} is not installed", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    walk = Walk(args.size, args.out, args.suffix, maximise=not args.no_maximise)
    t0 = time.monotonic()
    try:
        walk.run(args.trials, args.online_trials)
    except WalkError as exc:
        for src in (walk.log_path, walk.dump_path):
            if src.exists():
                shutil.copy(src, args.out / f"failed-{src.name}")
        print(f"real_window_walk: FAILED after {time.monotonic() - t0:.0f} s: {exc} "
              f"(log and widget dump in {args.out})", file=sys.stderr)
        return 1
    finally:
        walk.stop()
        for note in walk.findings:
            print(f"real_window_walk: NOTE {note}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(walk.tmp, ignore_errors=True)
    print(f"real_window_walk: the whole path ran in {time.monotonic() - t0:.0f} s, "
          f"{len(walk.shots)} screenshots in {args.out}, {len(walk.findings)} note(s)")
    return 3 if walk.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
