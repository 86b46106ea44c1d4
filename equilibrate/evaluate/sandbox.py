"""Running model-written Python (HumanEval answers) in a constrained child process.

:func:`run_python` writes the program into a fresh temporary directory and runs it with a new
interpreter (``python -I``: no user site-packages, no ``PYTHON*`` environment variables, the
script's folder not on ``sys.path``) under these limits:

- **time**: a wall-clock timeout (the whole process group is killed) and an ``RLIMIT_CPU`` limit
  (the resource limits are set by the child itself, before the untrusted code is read);
- **memory**: ``RLIMIT_AS`` caps the address space (allocations beyond it raise ``MemoryError``);
- **files**: ``RLIMIT_FSIZE`` caps any file the child writes (its captured output included), no
  core dumps, the working directory and ``HOME``/``TMPDIR`` are the temporary directory, which is
  deleted afterwards;
- **no network, no new processes**: before the untrusted code runs, an audit hook
  (``sys.addaudithook``, PEP 578, which cannot be removed once added) raises ``PermissionError`` on
  every ``socket.*`` event (creating, connecting, binding a socket, name look-ups), on starting
  processes (``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.spawn*``, ``os.posix_spawn``,
  ``os.fork``), on ``os.kill``, on importing ``ctypes`` or ``_posixsubprocess``, and on opening for
  writing, removing or renaming any path outside the temporary directory;
- a minimal environment (no proxy settings, no tokens from the parent's environment).

**What it does not protect against.** Audit hooks are a tripwire, not a security boundary: PEP 578
says so, and code written to escape (for example through a C extension already loaded, or
``gc``/frame tricks that reach interpreter internals) may get past them. The child runs as the
same user, can read any file that user can read, and shares the machine's CPU; run as root, it
could even raise its own resource limits (the wall-clock timeout, enforced by the parent, still
holds). There is no kernel-level network isolation (no namespace, no seccomp). This is adequate
for HumanEval answers from a model under evaluation, which are buggy rather than hostile; run
untrusted code from unknown sources in a container or VM instead.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from equilibrate.errors import ConfigError

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 64 * 1024  # characters of stdout/stderr kept in the result

_GUARD = r"""
import os, resource, sys

_ROOT = os.path.realpath(sys.argv[2])
_CPU, _MEMORY, _FILE = (int(x) for x in sys.argv[3:6])
resource.setrlimit(resource.RLIMIT_CPU, (_CPU, _CPU + 1))
resource.setrlimit(resource.RLIMIT_AS, (_MEMORY, _MEMORY))
resource.setrlimit(resource.RLIMIT_FSIZE, (_FILE, _FILE))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
_BLOCKED = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "pty.", "ctypes.", "webbrowser.", "os.startfile",
)
_BLOCKED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess"}
_PATH_EVENTS = {
    "os.remove": 1, "os.rmdir": 1, "os.rename": 2, "os.replace": 2, "shutil.rmtree": 1,
    "os.mkdir": 1, "os.chmod": 1, "os.chown": 1, "os.truncate": 1, "os.link": 2,
    "os.symlink": 2, "os.utime": 1, "shutil.move": 2, "shutil.copyfile": 2,
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _inside(path):
    if isinstance(path, int):
        return True
    path = os.fsdecode(path)
    full = os.path.realpath(os.path.join(_ROOT, path))
    return full == _ROOT or full.startswith(_ROOT + os.sep)


def _guard(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0] in _BLOCKED_IMPORTS:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open" and args[0] is not None:
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if mode else bool((flags or 0) & _WRITE_FLAGS)
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the sandbox is not allowed")
    count = _PATH_EVENTS.get(event)
    if count:
        for path in args[:count]:
            if path is not None and not _inside(path):
                raise PermissionError(f"sandbox: {event} on {path!r} is not allowed")


sys.addaudithook(_guard)
del _guard
_file = sys.argv[1]
with open(_file, encoding="utf-8") as _fh:
    _code = compile(_fh.read(), _file, "exec")
sys.argv = [_file]
exec(_code, {"__name__": "__main__", "__file__": _file, "__builtins__": __builtins__})
"""


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed program ended.

    ``passed`` is true when it exited with status 0 within its limits. ``returncode`` is negative
    when a signal ended it (``-signal.SIGXCPU`` after the CPU limit, ``-9`` after the wall timeout).
    ``stdout``/``stderr`` keep at most :data:`OUTPUT_LIMIT` characters each.
    """

    passed: bool
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float

    @property
    def status(self) -> str:
        """``passed``, ``timed_out`` or ``failed``."""
        return "passed" if self.passed else ("timed_out" if self.timed_out else "failed")


def run_python(
    code: str,
    timeout_s: float = 10.0,
    cpu_seconds: int = 10,
    memory_mb: int = 1024,
    file_mb: int = 16,
) -> SandboxResult:
    """Run ``code`` as a Python program in the sandbox described in the module docstring.

    Args:
        code: the program's source.
        timeout_s: wall-clock seconds before the process group is killed.
        cpu_seconds: CPU seconds (``RLIMIT_CPU``) before the kernel stops it.
        memory_mb: address-space limit in MiB (the interpreter itself needs about 30).
        file_mb: largest file, in MiB, the program may write (its output included).
    """
    if sys.platform == "win32":
        raise ConfigError("run_code", "the sandbox needs a POSIX system (resource limits)")
    for name, value in (
        ("timeout_s", timeout_s),
        ("cpu_seconds", cpu_seconds),
        ("memory_mb", memory_mb),
        ("file_mb", file_mb),
    ):
        if value <= 0:
            raise ConfigError(name, f"must be positive, got {value}")
    with tempfile.TemporaryDirectory(prefix="equilibrate-sandbox-") as tmp:
        root = Path(tmp)
        (root / "program.py").write_text(code, encoding="utf-8")
        (root / "guard.py").write_text(_GUARD, encoding="utf-8")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": tmp,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        limits = [cpu_seconds, memory_mb * 1024 * 1024, file_mb * 1024 * 1024]
        command = [sys.executable, "-I", str(root / "guard.py"), str(root / "program.py"), tmp]
        command += [str(int(x)) for x in limits]
        start = time.monotonic()
        with open(root / "stdout.txt", "wb") as out, open(root / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                command,
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        seconds = time.monotonic() - start
        stdout = (root / "stdout.txt").read_text(errors="replace")[:OUTPUT_LIMIT]
        stderr = (root / "stderr.txt").read_text(errors="replace")[:OUTPUT_LIMIT]
    if proc.returncode == -signal.SIGXCPU:
        timed_out = True
    passed = proc.returncode == 0 and not timed_out
    log.debug("sandbox: rc=%s timed_out=%s in %.2fs", proc.returncode, timed_out, seconds)
    return SandboxResult(passed, proc.returncode, timed_out, stdout, stderr, seconds)
