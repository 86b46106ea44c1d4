"""The sandbox refuses network and process creation, times out, and runs HumanEval-style checks."""

from __future__ import annotations

import socket
import sys

import pytest

from equilibrate.evaluate.helpfulness import humaneval_program
from equilibrate.evaluate.sandbox import run_python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")

TASK = {
    "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    "test": (
        "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    ),
    "entry_point": "add",
}


def test_network_is_refused_and_nothing_connects() -> None:
    # A listening socket of our own on the loopback interface: if the sandbox let the child
    # connect, accept() would return; it must time out instead.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        code = (
            "import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            f"s.connect(('127.0.0.1', {port}))\n"
            "print('connected')\n"
        )
        result = run_python(code, timeout_s=10)
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()
    assert not result.passed and not result.timed_out
    assert "connected" not in result.stdout
    assert "PermissionError: sandbox: socket.__new__ is not allowed" in result.stderr


def test_processes_and_writes_outside_are_refused() -> None:
    spawn = run_python("import os\nos.system('echo hi')\n")
    assert not spawn.passed and "os.system is not allowed" in spawn.stderr
    outside = run_python("open('/etc/equilibrate-sandbox-test', 'w')\n")
    assert not outside.passed and "outside the sandbox" in outside.stderr
    inside = run_python("open('note.txt', 'w').write('ok')\nprint(open('note.txt').read())\n")
    assert inside.passed and inside.stdout.strip() == "ok"


def test_endless_loop_times_out() -> None:
    result = run_python("while True:\n    pass\n", timeout_s=1.0, cpu_seconds=1)
    assert result.timed_out and not result.passed and result.status == "timed_out"
    assert result.seconds < 5


def test_memory_limit() -> None:
    result = run_python("x = bytearray(512 * 1024 * 1024)\n", memory_mb=256)
    assert not result.passed and "MemoryError" in result.stderr


def test_humaneval_passing_and_failing_solutions() -> None:
    whole_function = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    body_only = "    return a + b\n"
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    for response in (whole_function, body_only):
        result = run_python(humaneval_program(TASK, response))
        assert result.passed, result.stderr
    failed = run_python(humaneval_program(TASK, wrong))
    assert failed.status == "failed" and "AssertionError" in failed.stderr


def test_humaneval_program_layout() -> None:
    program = humaneval_program(TASK, "    return a + b\n")
    assert program.startswith(TASK["prompt"] + "    return a + b\n")
    assert program.rstrip().endswith("check(add)")
