"""Opens the supervisor carries out for the sandbox get what the caller's
own open would (issue 17 item 7): /dev/tty is the caller's controlling
terminal, not the supervisor's, and a caller whose credentials are not the
supervisor's (a root sandbox's process that changed user) is refused rather
than served with the supervisor's rights. Notify and ptrace mode, root and
uid 65534.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import Run, read_audit, sandbox
from tests.escape import test_escape as te
from tests.escape.conftest import Ctx, program_copy

pytestmark = te.pytestmark


def _tty_events(run: Run) -> list[te.Event]:
    return [e for e in run.of_type("file") if e.get("path") == "/dev/tty"]


def _in_terminal(c: Ctx, mode: str, program: str) -> Run:
    """`agentsh-ipy exec` under script(1): a new pseudo-terminal, made by
    the test's user, is the session's controlling terminal."""
    cli = [sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(c.ws)]
    cli += ["--audit", str(c.area.audit), "--mode", mode, "--"]
    cli += [sys.executable, "-I", str(program_copy(c.area, program))]
    start = time.monotonic()
    p = subprocess.run(
        c.user.cmd(["script", "-qec", shlex.join(cli), "/dev/null"]),
        cwd=c.ws,
        env=c.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        start_new_session=True,
    )
    out = p.stdout.replace("\r\n", "\n")
    return Run(p.returncode, out, p.stderr, read_audit(c.area.audit), time.monotonic() - start)


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) (util-linux)")
def test_dev_tty_is_the_callers_terminal(world: Ctx, mode: str) -> None:
    run = _in_terminal(world, mode, "tty_open.py")
    assert run.returncode == te.DONE, f"{run.returncode}:\n{run.stdout}\n{run.stderr}"
    assert "written to the terminal" in run.stdout
    assert "tty: ok True same=True" in run.stdout, run.stdout
    allowed = [e for e in _tty_events(run) if e.get("decision") == "allow"]
    assert allowed, te._brief(run)
    if mode == "notify":  # opened by the supervisor: the node it opened is named
        assert all(str(e.get("terminal", "")).startswith("/dev/pts/") for e in allowed)


def test_dev_tty_without_a_terminal(world: Ctx, mode: str) -> None:
    """No controlling terminal (the test's own session has none): ENXIO,
    as the kernel answers."""
    cmd = [sys.executable, "-I", str(program_copy(world.area, "tty_open.py"))]
    run = sandbox(world.area, cmd, extra=["--mode", mode], env=world.env(), timeout=90)
    te._completed(run)
    assert te.results(run).get("tty") == "ENXIO", run.stdout
    assert _tty_events(run), te._brief(run)


def _root_only_text(c: Ctx) -> str:
    return c.secret.replace("SECRET-KEY", "ROOT-ONLY")


def _root_only(c: Ctx) -> str:
    return str(c.area.write("ws/root-only.txt", _root_only_text(c) + "\n", 0o600))


def _not_read(c: Ctx, r: Run) -> None:
    assert _root_only_text(c) not in r.stdout + r.stderr, r.stdout


SETUID = te.Case(
    "setuid-then-open-root-only",
    "setuid_open.py",
    lambda c: (_root_only(c),),
    effect=[te.said("open", "EACCES"), _not_read],
    baseline=(),
    no_baseline="the kernel refuses it without the sandbox too: the sandbox must not do more",
)


def _unemulated(c: Ctx, r: Run, e: te.Event) -> bool:
    return "credentials" in str(e.get("unemulated", "")) and e.get("result") == "EACCES"


def test_changed_user_gets_no_supervisor_rights(world: Ctx, mode: str) -> None:
    if world.user.name != "root":
        pytest.skip("only root can change user; uid 65534 has the supervisor's credentials")
    case = SETUID
    if mode == "notify":  # the supervisor refused (ptrace mode: the kernel did)
        audit = [te.Expect(("file",), decision=None, about=lambda c, r: c.ws / "root-only.txt",
                           where=_unemulated)]  # fmt: skip
        case = te.dataclasses.replace(case, audit=audit)
    te.test_escape(case, world, mode)


def test_changed_user_is_refused_unsandboxed(world: Ctx) -> None:
    """The baseline: the kernel refuses this open without the sandbox."""
    if world.user.name != "root":
        pytest.skip("only root can change user")
    path = _root_only(world)
    cmd = [sys.executable, "-I", str(program_copy(world.area, "setuid_open.py")), path]
    p = subprocess.run(cmd, cwd=world.ws, capture_output=True, text=True, timeout=60)
    assert p.returncode == te.DONE, p.stderr
    assert "open: EACCES" in p.stdout
