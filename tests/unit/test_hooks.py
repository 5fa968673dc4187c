"""The pure parts of the extension's launch hooks: Popen's argv as CPython
computes it, the env prefix, and install/uninstall by identity."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
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
        self.file: str | None = None  # not inline: the argv above is the wrapper
        self.preexec: Callable[[], None] | None = None


def _hooks_wrapped() -> _Wrapped:
    return _Wrapped()


class Router:
    def __init__(self) -> None:
        self.on = False
        self.calls: list[tuple[list[str], str | None]] = []
        self.forgotten: list[str] = []

    def sandboxing(self) -> bool:
        return self.on

    def wrap(
        self,
        argv: Sequence[str],
        *,
        executable: str | None,
        env: Mapping[str, str] | None,
        cwd: str | None,
        inline: bool = False,
    ) -> Any:
        self.calls.append((list(argv), executable))

        return _hooks_wrapped()

    def forget(self, launch: str) -> None:
        self.forgotten.append(launch)


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


def test_multiprocessing_spawn_goes_through_the_wrapper_and_failures_are_forgotten(
    tmp_path: Path,
) -> None:
    import multiprocessing.util

    router = Router()
    hooks = _hooks.Hooks(router)
    hooks.install()
    try:
        router.on = True
        out = tmp_path / "out"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # The wrapped argv runs instead ("/bin/echo wrapped"); multiprocessing
            # passes its path as bytes, and the fds it names stay open.
            pid = multiprocessing.util.spawnv_passfds(
                b"/usr/bin/python3", ["python3", "-c", "pass"], [fd]
            )
        finally:
            os.close(fd)
        assert os.waitpid(pid, 0)[1] == 0
        assert router.calls == [(["python3", "-c", "pass"], "/usr/bin/python3")]
        assert pid in hooks.sandboxed_pids and router.forgotten == []
        # A launch that cannot start is forgotten: nobody waits for its audit.
        wrapped = _Wrapped()
        wrapped.argv = [str(tmp_path / "missing")]
        router.wrap = lambda *a, **k: wrapped  # type: ignore[method-assign]
        with pytest.raises(OSError):
            subprocess.run(["true"])
        assert router.forgotten == ["L"]
    finally:
        hooks.uninstall()
