"""Run ``python -m <module> ARGS`` for the tests: each call in its own process, without paying
the ~3.5 s CPU of importing scikit-learn, pyriemann, MNE and ONNX again every time.

A per-test-process server (this file run as a script) imports those third-party libraries once
and forks one child per call. The child is a fresh copy of that process with the call's cwd,
environment and argv; it runs ``runpy.run_module(module, run_name="__main__")`` exactly as
``python -m`` does, its stdout and stderr (file descriptors 1 and 2) go to files, and it ends as
the interpreter ends (non-daemon threads joined, ``atexit`` handlers run, ``SystemExit`` codes as
Python maps them). Nothing of neurodeck is imported before the fork, so every neurodeck module
loads in the child as in a real run; one call cannot affect the next (each runs in its own copy
of the untouched server). Without ``os.fork`` (Windows) or with ``NEURODECK_TEST_FORK_CLI=0``,
:func:`run_module` falls back to a plain ``subprocess.run``.

Measured (13:30 UTC, load ~3): ``neurodeck evaluate missing.edf`` 3.5 s CPU as a subprocess,
~0.1 s as a forked call.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

#: Third-party libraries the server imports before forking: what every CLI command loads.
#: (No Qt, no pylsl: neither may be initialised in a process that forks.)
WARM = ("numpy", "scipy.linalg", "scipy.signal", "sklearn.pipeline", "sklearn.model_selection",
        "sklearn.discriminant_analysis", "sklearn.linear_model", "sklearn.svm", "pyriemann",
        "mne", "onnx", "onnxruntime", "skl2onnx")
ENV_SWITCH = "NEURODECK_TEST_FORK_CLI"


# ------------------------------------------------------------------------- the server process
def _child(req: dict) -> None:  # pragma: no cover - runs in the forked process
    import runpy
    import traceback

    code: object = 0
    try:
        fd_in = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd_in, 0)
        for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(f, fd)
            os.close(f)
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.path[0] = req["cwd"]  # as `python -m`: the working directory first
        sys.argv = [req["module"], *req["args"]]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:  # the interpreter's own shutdown: join non-daemon threads, then atexit
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def _serve() -> None:  # pragma: no cover - the server process
    import importlib

    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # tests/ must not shadow anything
    for name in WARM:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out.write(json.dumps({"rc": rc}) + "\n")
        out.flush()


# ---------------------------------------------------------------------------- the test side
class _Server:
    def __init__(self) -> None:
        # one BLAS thread in the server (read when OpenBLAS loads), as in this test process
        env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
        self.lock = threading.Lock()
        self._read(120.0)  # {"ready": pid}

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the CLI fork server exited")
        return json.loads(line)

    def run(self, module: str, args: list[str], cwd: str, env: dict, timeout: float
            ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", module, *args]
        with self.lock, tempfile.TemporaryDirectory(prefix="ndcli-") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            req = {"module": module, "args": args, "cwd": cwd, "env": env,
                   "stdout": str(out), "stderr": str(err)}
            pid = None
            try:
                self.proc.stdin.write(json.dumps(req) + "\n")
                self.proc.stdin.flush()
                pid = self._read(60.0)["pid"]
                reply = self._read(timeout)
            except BaseException:  # (pytest-timeout, Ctrl-C): never leave a call half-answered
                self.close(kill=pid)
                raise
            if reply is None:
                self.close(kill=pid)
                raise subprocess.TimeoutExpired(argv, timeout, out.read_text(errors="replace"),
                                                err.read_text(errors="replace"))
            return subprocess.CompletedProcess(argv, reply["rc"],
                                               out.read_text(errors="replace"),
                                               err.read_text(errors="replace"))

    def close(self, kill: int | None = None) -> None:
        """Stop the server (first the call ``kill``, a pid, if one is under way)."""
        if kill is not None:
            try:
                os.kill(kill, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_server: _Server | None = None


def run_module(module: str, *args: object, cwd: str | os.PathLike | None = None,
               env: dict | None = None, timeout: float = 120.0
               ) -> subprocess.CompletedProcess[str]:
    """``python -m module ARGS`` with text stdout/stderr captured, as ``subprocess.run`` returns it.

    ``env`` defaults to this process's environment at the call; ``cwd`` to its working directory.
    """
    global _server
    args_s = [str(a) for a in args]
    env = dict(os.environ if env is None else env)
    cwd = str(Path.cwd() if cwd is None else cwd)
    if not hasattr(os, "fork") or os.environ.get(ENV_SWITCH, "1") == "0":
        return subprocess.run([sys.executable, "-m", module, *args_s], capture_output=True,
                              text=True, timeout=timeout, cwd=cwd, env=env)
    if _server is None or _server.proc.poll() is not None:
        _server = _Server()
        atexit.register(_server.close)
    return _server.run(module, args_s, cwd, env, timeout)


if __name__ == "__main__":
    _serve()
