"""The pure parts of the extension's launch hooks: Popen's argv as CPython
computes it, the env prefix, and install/uninstall by identity."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy import _hooks


@pytest.mark.parametrize(
    ("args", "executable", "shell", "argv", "file"),
    [
        ("ls -l", None, True, ["/bin/sh", "-c", "ls -l"], "/bin/sh"),
        ("ls -l", "/bin/bash", True, ["/bin/bash", "-c", "ls -l"], "/bin/bash"),
        (["ls", "-l"], None, False, ["ls", "-l"], "ls"),
        (["name", "-c", "x"], "/bin/sh", False, ["name", "-c", "x"], "/bin/sh"),
        (b"/bin/true", None, False, ["/bin/true"], "/bin/true"),
        (Path("/bin/true"), None, False, ["/bin/true"], "/bin/true"),
        ([b"echo", Path("x")], None, False, ["echo", "x"], "echo"),
        (["a", "b"], None, True, ["/bin/sh", "-c", "a", "b"], "/bin/sh"),
    ],
)
def test_popen_argv_matches_cpython(
    args: Any, executable: Any, shell: bool, argv: list[str], file: str
) -> None:
    assert _hooks.popen_argv(args, executable, shell) == (argv, file)


def test_env_command() -> None:
    assert _hooks.env_command({"A": "1"}, {"A": "1"}) == []
    cmd = _hooks.env_command({"A": "2", "C": "3"}, {"A": "1", "B": "x"})
    assert cmd[1:] == ["-u", "B", "A=2", "C=3"]
    assert os.path.basename(cmd[0]) == "env"


class _Wrapped:
    def __init__(self) -> None:
        self.launch = "L"
        self.argv = ["/bin/sh", "-c", 'exec "$@"', "x", "/bin/echo", "wrapped"]
        self.env = dict(os.environ)


def _hooks_wrapped() -> _Wrapped:
    return _Wrapped()


class Router:
    def __init__(self) -> None:
        self.on = False
        self.calls: list[tuple[list[str], str | None]] = []

    def sandboxing(self) -> bool:
        return self.on

    def wrap(
        self,
        argv: Sequence[str],
        *,
        executable: str | None,
        env: Mapping[str, str] | None,
        cwd: str | None,
    ) -> Any:
        self.calls.append((list(argv), executable))

        return _hooks_wrapped()


def test_install_routes_only_when_active_and_uninstall_restores_identity() -> None:
    before = (subprocess.Popen.__dict__["_execute_child"], os.system, os.posix_spawn)
    router = Router()
    hooks = _hooks.Hooks(router)
    hooks.install()
    hooks.install()  # twice: harmless
    try:
        assert subprocess.Popen.__dict__["_execute_child"] is not before[0]
        out = subprocess.run(["echo", "plain"], capture_output=True, text=True).stdout
        assert (out, router.calls) == ("plain\n", [])
        router.on = True
        out = subprocess.run(["echo", "plain"], capture_output=True, text=True).stdout
        assert out == "wrapped\n"
        assert router.calls == [(["echo", "plain"], "echo")]
    finally:
        hooks.uninstall()
    assert (subprocess.Popen.__dict__["_execute_child"], os.system, os.posix_spawn) == before
    assert all(a is b for a, b in zip(
        (subprocess.Popen.__dict__["_execute_child"], os.system, os.posix_spawn), before,
        strict=True))  # fmt: skip
