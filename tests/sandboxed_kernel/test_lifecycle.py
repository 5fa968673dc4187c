"""The sandboxed kernel's lifecycle, as root and as uid 65534: an interrupt
stops the running cell and its children; restart and shutdown leave no
process behind (daemons a cell started included); killing the supervisor
takes the sandbox down; a kernel whose sandbox cannot start exits 125 and
says why, unless started with --allow-unsandboxed, and then every cell says
NOT SANDBOXED.

"No process left" is checked in the process table by pid (and start time)
and by what the kernel's processes inherit (a marker variable, a working
directory in the scratch area), never by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel._harness import token

from ._harness import (
    AUDIT_MIME,
    KERNEL_MODULE,
    SECRET,
    SandboxedKernel,
    SkArea,
    area_processes,
    make_user,
    require_kernel_module,
    sk_env,
    still_alive,
    wait_gone,
    write_kernelspec,
)

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


def with_argv(tree: list[list[Any]], *argv: str) -> list[list[Any]]:
    return [entry for entry in tree if entry[2][: len(argv)] == list(argv)]


def wait_for(kernel: SandboxedKernel, *argv: str, timeout: float = 15) -> list[list[Any]]:
    """The kernel's tree once a process with this argv runs in it."""
    deadline = time.monotonic() + timeout
    while True:
        tree = kernel.tree()
        if with_argv(tree, *argv):
            return tree
        assert time.monotonic() < deadline, f"no {argv} in the kernel's tree: {tree}"
        time.sleep(0.1)


INTERRUPTIBLE = {
    "bang": "!sleep 60",
    "subprocess": "import subprocess\nsubprocess.run(['sleep', '60'])",
    "python": "import time\nwhile True:\n    sum(range(1000))",
}


@pytest.mark.parametrize("form", INTERRUPTIBLE)
def test_interrupt_stops_the_cell_and_its_children(kernel: SandboxedKernel, form: str) -> None:
    supervisor = kernel.pid
    start = time.monotonic()
    cell = kernel.run(INTERRUPTIBLE[form], interrupt_after=2.0, timeout=40)
    took = time.monotonic() - start
    assert took < 12, f"the interrupt took {took:.1f}s to end the cell"
    if form == "python":
        assert cell.reply["ename"] == "KeyboardInterrupt", cell.outputs
    deadline = time.monotonic() + 5
    while with_argv(kernel.tree(), "sleep", "60"):
        assert time.monotonic() < deadline, "sleep 60 survived the interrupt"
        time.sleep(0.1)
    events = cell.events()  # the interrupted cell still ends with its audit
    if form != "python":
        sleeps = [
            e for e in events if e["type"] == "exec" and e.get("argv", [])[:2] == ["sleep", "60"]
        ]
        assert sleeps, cell.audit()["data"]["text/plain"]
        exits = [e for e in events if e["type"] == "process_exit" and e["pid"] == sleeps[0]["pid"]]
        assert exits and exits[0].get("signal"), exits
    assert kernel.pid == supervisor
    assert kernel.ok("print('after the interrupt')").stdout == "after the interrupt\n"


DAEMONS = (
    "import os, subprocess\n"
    "p = subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
    "os.system('(sleep 601 &) ; true')\n"  # a double fork: no parent left in the kernel
)


def sandboxed_daemons(area: SkArea, exclude: set[int]) -> list[Any]:
    deadline = time.monotonic() + 15
    while True:
        found = [
            p
            for p in area_processes(area, exclude)
            if p.argv[:2] in (["sleep", "600"], ["sleep", "601"])
        ]
        if len(found) == 2:
            return found
        assert time.monotonic() < deadline, f"the daemons did not start: {found}"
        time.sleep(0.1)


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_restart_and_shutdown_leave_no_process(name: str) -> None:
    area = SkArea(make_user(name))
    # No --audit: the log goes to ~/.local/state/agentsh-ipy/audit/.
    write_kernelspec(area, policy=area.policy)
    kernel = None
    try:
        kernel = SandboxedKernel(area)
        driver = kernel.proc.pid
        kernel.ok(DAEMONS)
        daemons = sandboxed_daemons(area, {driver})
        assert all(p.seccomp for p in daemons), "a daemon of the cell is not sandboxed"
        before = kernel.tree()
        restarted = kernel.restart()
        assert restarted["ready"], f"restart failed: {restarted['error']}\n{kernel.log()[-3000:]}"
        assert kernel.pid != before[0][0]
        deadline = time.monotonic() + 15
        while still_alive(before) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert still_alive(before) == [], f"left running after restart: {still_alive(before)}"
        new = {pid for pid, _, _ in kernel.tree()}
        left = area_processes(area, {driver, *new})
        assert left == [], f"left running after restart: {left}"
        # Still sandboxed after the restart.
        cell = kernel.run("open(__import__('os').path.expanduser('~/.ssh/id_rsa')).read()")
        assert cell.reply["ename"] == "PermissionError" and SECRET not in cell.text()
        assert cell.audit()["data"][AUDIT_MIME]["summary"]["denials"] >= 1
        logs = list((area.home / ".local/state/agentsh-ipy/audit").glob("*.jsonl"))
        assert logs, "no audit log in the default place"
        assert str(area.home / ".ssh" / "id_rsa") in "".join(p.read_text() for p in logs)
        kernel.ok(DAEMONS)
        sandboxed_daemons(area, {driver})
        tree = kernel.tree()
        kernel.shutdown()
        assert wait_gone(area, tree, {driver}) == "", "left running after shutdown"
    finally:
        if kernel is not None:
            kernel.shutdown()
        area.cleanup()


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_killing_the_supervisor_takes_the_sandbox_down(name: str) -> None:
    area = SkArea(make_user(name))
    write_kernelspec(area, policy=area.policy, audit=area.audit)
    kernel = None
    try:
        kernel = SandboxedKernel(area)
        driver = kernel.proc.pid
        kernel.ok(DAEMONS)
        sandboxed_daemons(area, {driver})
        tree = kernel.tree()
        os.kill(kernel.pid, signal.SIGKILL)
        assert wait_gone(area, tree, {driver}) == "", "left running after the supervisor died"
    finally:
        if kernel is not None:
            kernel.shutdown()
        area.cleanup()


def connection_file(area: SkArea, path: Path | None = None) -> tuple[str, dict[str, Any]]:
    from jupyter_client.connect import write_connection_file

    path = path or area.root / "runtime" / f"kernel-{token()}.json"
    fname, info = write_connection_file(str(path), ip="127.0.0.1")
    area.own(path)
    return fname, dict(info)


def run_kernel(area: SkArea, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m agentsh_ipy.kernel ARGS`` as the area's user, directly."""
    require_kernel_module()
    return subprocess.run(
        area.user.cmd([sys.executable, "-m", KERNEL_MODULE, *args]),
        cwd=area.ws,
        env=sk_env(area),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_a_bad_policy_exits_125_and_runs_nothing(name: str) -> None:
    area = SkArea(make_user(name))
    try:
        bad = area.write("ws/bad.yaml", "version: 1\nfile_rules:\n  - {decision: maybe}\n")
        marker = area.ws / f"ran-{token()}"
        area.write(
            "ipython/profile_default/startup/00-marker.py", f"open({str(marker)!r}, 'w').close()\n"
        )
        for policy in (bad, area.ws / "missing.yaml"):
            conn, info = connection_file(area)
            r = run_kernel(area, "-f", conn, "--policy", str(policy), "--allow-unsandboxed")
            assert r.returncode == 125, (r.returncode, r.stderr)
            assert str(policy) in r.stderr, r.stderr
            assert not marker.exists(), "the kernel ran although its policy is bad"
            assert refused(info["shell_port"]), "something still listens on the shell port"
        assert area_processes(area) == []
    finally:
        area.cleanup()


def nested_kernelspec(area: SkArea, *extra: str) -> None:
    """The kernel started inside `agentsh-ipy exec`: a sandbox already, where
    another cannot start (one seccomp listener per tree, no ptrace)."""
    write_kernelspec(area, policy=area.policy, audit=area.audit, extra=extra)
    spec_path = area.root / "jupyter-data" / "kernels" / "agentsh-test" / "kernel.json"
    spec = json.loads(spec_path.read_text())
    outer_audit = area.root / "audit" / "outer.jsonl"
    spec["argv"] = [
        sys.executable, "-m", "agentsh_ipy.cli", "exec", "--audit", str(outer_audit),
        "--workspace", str(area.ws), "--", *spec["argv"],
    ]  # fmt: skip
    spec_path.write_text(json.dumps(spec))


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_where_the_sandbox_cannot_start_the_kernel_exits_125(name: str) -> None:
    area = SkArea(make_user(name))
    try:
        # Where the outer sandbox lets the kernel read it: Jupyter's runtime
        # directory is hidden from every sandbox.
        conn, info = connection_file(area, area.ws / f"conn-{token()}.json")
        argv = [
            sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(area.ws),
            "--audit", str(area.root / "audit" / "outer.jsonl"), "--",
            sys.executable, "-m", KERNEL_MODULE, "-f", conn, "--policy", str(area.policy),
        ]  # fmt: skip
        r = subprocess.run(
            area.user.cmd(argv),
            cwd=area.ws,
            env=sk_env(area),
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,
        )
        assert r.returncode == 125, (r.returncode, r.stderr)
        assert "sandbox" in r.stderr and "not started" in r.stderr, r.stderr
        assert refused(info["shell_port"])
    finally:
        area.cleanup()


def test_with_allow_unsandboxed_every_cell_says_not_sandboxed() -> None:
    area = SkArea(make_user("nobody"))
    nested_kernelspec(area, "--allow-unsandboxed")
    kernel = None
    try:
        kernel = SandboxedKernel(area)
        for code in ("print('one')", "1 + 1", "import os\nos.getpid()", "raise ValueError('x')"):
            cell = kernel.run(code)
            assert "NOT SANDBOXED" in cell.text(), f"{code!r}: {cell.outputs}"
            displays = [o for o in cell.outputs if o["output_type"] == "display_data"]
            assert displays and "NOT SANDBOXED" in json.dumps(displays[-1]), cell.outputs
    finally:
        if kernel is not None:
            kernel.shutdown()
        area.cleanup()


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_the_kernel_starts_for_a_user_who_never_ran_ipython(name: str) -> None:
    # A fresh home (a Binder image, a new account): no ~/.ipython at all.
    # The sandbox may not let IPython create it; the kernel must start anyway.
    area = SkArea(make_user(name))
    shutil.rmtree(area.root / "ipython")
    write_kernelspec(area, policy=area.policy, audit=area.audit)
    env = sk_env(area)
    env.pop("IPYTHONDIR")
    kernel = None
    try:
        kernel = SandboxedKernel(area, env=env)
        assert kernel.ok("print(6 * 7)").stdout == "42\n"
    finally:
        if kernel is not None:
            kernel.shutdown()
        area.cleanup()
