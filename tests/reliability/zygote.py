"""A pre-imported hlops that forks one child process per command (``python zygote.py``).

The crash sweep (R1) starts an apply for every call number k and SIGKILLs it; paying the
interpreter and import start-up (~1 s on a loaded 2-core machine) each time would triple
its run time. The zygote imports the engine once, then for each command read from stdin
(one JSON object: ``args``, ``env``, ``cwd``, ``log``) forks a child that runs the real
``hlops`` entry point -- a separate process, killed by a real SIGKILL -- and writes
``{"pid": ...}`` and then ``{"pid": ..., "status": ...}`` when it ends. It has no threads
of its own, so forking it is safe.

:class:`Zygote` is the test side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path


def serve() -> None:
    import hlops.api  # noqa: F401 - the engine, imported once for every child
    import hlops.cli
    import hlops.cli.progress  # noqa: F401
    import hlops.data  # noqa: F401
    import hlops.datafile  # noqa: F401

    out = sys.stdout
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: become `hlops ARGS`
            code = 1
            try:
                fd = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.chdir(cmd["cwd"])
                os.environ.clear()
                os.environ.update(cmd["env"])
                signal.signal(signal.SIGINT, signal.default_int_handler)
                try:
                    hlops.cli.main(cmd["args"], prog_name="hlops")
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        print(json.dumps({"pid": pid}), file=out, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "status": os.waitstatus_to_exitcode(status)}), file=out, flush=True)


class Zygote:
    """Test side: ``start(args, env, cwd, log) -> pid``, then ``wait() -> exit code``
    (negative: killed by that signal)."""

    def __init__(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1,
        )
        ready = self._read()
        assert ready == {"ready": True}, ready
        self.pid: int | None = None

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote exited ({self.proc.poll()})")
        return json.loads(line)

    def start(self, args: list[str], env: dict, cwd: Path, log: Path) -> int:
        assert self.pid is None, "one child at a time"
        self.proc.stdin.write(json.dumps({"args": args, "env": env, "cwd": str(cwd), "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        self.pid = self._read()["pid"]
        return self.pid

    def wait(self, timeout: float = 120.0) -> int:
        """The child's exit code; a child still running after ``timeout`` s is killed (-9)."""
        timer = threading.Timer(timeout, _kill, (self.pid,))
        timer.start()
        try:
            done = self._read()
        finally:
            timer.cancel()
        assert done["pid"] == self.pid, done
        self.pid = None
        return done["status"]

    def close(self) -> None:
        if self.pid is not None:
            _kill(self.pid)
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    serve()
