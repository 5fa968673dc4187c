"""The seed's bugs, each as a fault-injection test that fails on the old
behaviour: a no-op deadline, a timeout that leaks into the next wait, a
made-up 127, a leaked supervisor fd, a handshake read that breaks on EINTR."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Area,
    User,
    linux_only,
    read_audit,
    sandbox,
    sandbox_env,
    write_policy,
)

pytestmark = linux_only

HERE = Path(__file__).resolve().parent


def run_session(
    area: Area, fake: str | None, cmd: list[str], *, handoff: float = 10, ready: float = 30,
    go: float = 30, mode: str = "notify", **extra_env: str,
) -> dict[str, Any]:  # fmt: skip
    """Run Session in a fresh process (as the area's user) with a fake wrapper."""
    fakes = area.root / "fakes"
    if not fakes.exists():  # a copy the unprivileged user can read
        shutil.copytree(HERE / "fakes", fakes)
        shutil.copy(HERE / "run_session.py", fakes / "run_session.py")
    pidfile = area.root / "audit" / "wrapper.pid"
    env = {**sandbox_env(area), "AGENTSH_TEST_PIDFILE": str(pidfile), "AGENTSH_TEST_MODE": mode,
           **extra_env}  # fmt: skip
    wrapper = str(fakes / fake) if fake else "-"
    argv = area.user.cmd([sys.executable, str(fakes / "run_session.py"), wrapper,
                          str(handoff), str(ready), str(go), str(area.ws), *cmd])  # fmt: skip
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=area.ws)
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout.splitlines()[-1])
    if pidfile.exists():
        out["wrapper_pid"] = int(pidfile.read_text())
    return out


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.needs_notify
def test_a_wrapper_that_never_sends_the_fd_fails_at_the_handoff_bound(area: Area) -> None:
    r = run_session(area, "no_fd.py", ["true"], handoff=1.0)
    assert r["status"] == 125
    assert "no seccomp listener fd within 1s" in r["error"]
    assert 1.0 <= r["seconds"] < 5.0
    assert gone(r["wrapper_pid"])


@pytest.mark.needs_notify
def test_a_wrapper_stalled_before_ready_fails_at_the_ready_bound(area: Area) -> None:
    # A leaked handoff bound (0.5 s) would fail early; a no-op bound would hang.
    r = run_session(area, "stall_ready.py", ["true"], handoff=0.5, ready=2.5)
    assert r["status"] == 125
    assert "no READY within 2.5s" in r["error"]
    assert 2.5 <= r["seconds"] < 8.0
    assert gone(r["wrapper_pid"])
    assert not [e for e in r["events"] if e["type"] == "process_start"]


@pytest.mark.needs_notify
def test_a_wrong_ready_byte_is_rejected(area: Area) -> None:
    r = run_session(area, "bad_ready.py", ["true"])
    assert r["status"] == 125
    assert "bad READY message" in r["error"] and "Q" in r["error"]
    assert gone(r["wrapper_pid"])


@pytest.mark.needs_notify
def test_signals_during_the_supervisor_handshake_reads_are_retried(area: Area, user: User) -> None:
    fakes = area.root / "fakes"
    run_session(area, None, ["true"])  # lays out the fakes copy
    env = {**sandbox_env(area), "AGENTSH_TEST_SIGUSR1": "1"}
    argv = user.cmd([sys.executable, str(fakes / "run_session.py"), str(fakes / "slow_ready.py"),
                     "10", "30", "30", str(area.ws), "sh", "-c", "exit 4"])  # fmt: skip
    p = subprocess.Popen(argv, env=env, cwd=area.ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)  # fmt: skip
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready-for-signals"
    sent = 0
    while p.poll() is None and sent < 400:
        os.kill(p.pid, signal.SIGUSR1)  # by pid: the run_session process
        sent += 1
        time.sleep(0.005)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    r = json.loads(out.splitlines()[-1])
    assert (r["status"], r["error"]) == (4, None)
    assert sent > 50  # the one-second READY wait really was signalled


@pytest.mark.needs_notify
def test_a_command_that_exits_at_once_reports_its_own_status(area: Area) -> None:
    r = run_session(area, "exit_after_go.py", ["true"])
    assert (r["status"], r["error"]) == (5, None)
    exits = [e for e in r["events"] if e["type"] == "process_exit"]
    assert [e.get("exit_code") for e in exits] == [5]


@pytest.mark.needs_notify
def test_a_wrapper_dying_around_the_attach_reports_its_real_status(area: Area) -> None:
    for _ in range(5):  # the race goes either way; both must give 137
        r = run_session(area, "die_after_ready.py", ["true"])
        assert r["status"] == 128 + signal.SIGKILL, r
        assert r["error"] is None


@pytest.mark.needs_notify
def test_quick_real_commands_report_their_status(area: Area) -> None:
    for code in (0, 1, 3):
        r = run_session(area, None, ["sh", "-c", f"exit {code}"])
        assert (r["status"], r["error"]) == (code, None)


def test_no_supervisor_fd_is_open_in_the_command(area: Area) -> None:
    script = (
        "import os, json\n"
        "fds = {}\n"
        "for n in os.listdir('/proc/self/fd'):\n"
        "    try: fds[n] = os.readlink('/proc/self/fd/' + n)\n"
        "    except OSError: pass\n"
        "print(json.dumps(fds))\n"
    )
    r = sandbox(area, [sys.executable, "-c", script], policy=write_policy(area))
    assert r.returncode == 0, r.stderr
    fds = json.loads(r.stdout)
    extra = {n: t for n, t in fds.items() if n not in ("0", "1", "2")}
    # Only the directory listdir itself had open may remain.
    assert all(t.startswith("/proc/") and t.endswith("/fd") for t in extra.values()), fds
    assert not any("seccomp" in t or str(area.audit) in t for t in fds.values())


def test_a_bad_policy_is_refused_with_file_line_and_reason(area: Area) -> None:
    marker = area.ws / "ran"
    cases = {
        "yaml": ("version: 1\nfile_rules: [\n", ":3:"),
        "key": ("version: 1\nfile_rulez: []\n", ":2:"),
        "glob": ("version: 1\nfile_rules:\n  - {name: a, paths: ['/x/a**b'], operations: ['*'],"
                 " decision: allow}\n", ":3:"),
        "decision": ("version: 1\nfile_rules:\n  - name: a\n    paths: ['/x']\n"
                     "    operations: ['*']\n    decision: maybe\n", ":6:"),
    }  # fmt: skip
    for name, (text, line) in cases.items():
        policy = area.write(f"bad-{name}.yaml", text)
        r = sandbox(area, ["touch", str(marker)], policy=policy)
        assert r.returncode == 125, (name, r.stderr)
        assert f"{policy}{line}" in r.stderr, (name, r.stderr)
        assert not marker.exists()
        assert not r.of_type("process_start")


def test_supervisor_killed_takes_the_tree_down(area: Area, user: User) -> None:
    pids = area.ws / "pids"
    script = f"echo $$ > {pids}.tmp; sleep 60 & echo $! >> {pids}.tmp; mv {pids}.tmp {pids}; wait"
    argv = user.cmd([sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(area.ws),
                     "--audit", str(area.audit), "--", "sh", "-c", script])  # fmt: skip
    p = subprocess.Popen(argv, env=sandbox_env(area), cwd=area.ws, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not pids.exists():
            assert time.monotonic() < deadline, "the sandboxed script never started"
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            time.sleep(0.05)
        tree = [int(x) for x in pids.read_text().split()]
        assert len(tree) == 2 and not any(gone(t) for t in tree)
        while not any(
            e["type"] == "exec" and e["argv"][0] == "sleep" for e in read_audit(area.audit)
        ):
            assert time.monotonic() < deadline, "sleep was never executed"
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)  # the supervisor, by pid
        p.wait(timeout=10)
        deadline = time.monotonic() + 1.0
        while not all(gone(t) for t in tree) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(gone(t) for t in tree), [t for t in tree if not gone(t)]
        # What was decided before the kill is on disk, gap-free.
        events = read_audit(area.audit)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert {e["pid"] for e in events if e["type"] == "process_start"} >= {tree[0]}
        assert any(e["type"] == "exec" and e["argv"][0] == "sleep" for e in events)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.needs_notify
def test_auto_mode_falls_back_to_ptrace_when_the_host_refuses_a_listener(area: Area) -> None:
    secret = area.write("outside/secret", "SECRET\n")
    cmd = ["sh", "-c", f"cat {secret}; echo x > {area.outside}/new; exit 3"]
    r = run_session(area, "no_listener.py", cmd, mode="auto")
    assert (r["status"], r["error"]) == (3, None)
    events = r["events"]
    [fallback] = [e for e in events if e.get("op") == "fallback"]
    assert fallback["mode"] == "ptrace" and "unavailable" in fallback["reason"]
    # The same policy and audit through the tracer: the write was denied.
    assert not (area.outside / "new").exists()
    assert any(e["type"] == "file" and e.get("path") == f"{area.outside}/new"
               and e["decision"] == "deny" for e in events)  # fmt: skip
    # Nothing ran on the first try: every process event follows the fallback.
    procs = [e["seq"] for e in events if e["type"] in ("process_start", "process_exit", "exec")]
    assert procs and min(procs) > fallback["seq"]
    assert [e["op"] for e in events if e["type"] == "sandbox"].count("start") == 2


@pytest.mark.needs_notify
def test_notify_mode_alone_refuses_when_the_host_refuses_a_listener(area: Area) -> None:
    r = run_session(area, "no_listener.py", ["true"], mode="notify")
    assert r["status"] == 125
    assert "seccomp user-notify unavailable" in r["error"]
    assert not [e for e in r["events"] if e["type"] == "process_start"]


@pytest.mark.needs_notify
def test_a_denied_exec_is_named_even_when_its_audit_lags(area: Area) -> None:
    """The command's own exec is denied; its event is recorded after the
    answer, on the notify thread. The error message names the rule however
    late that record is (it was read before it existed on a loaded host)."""
    policy = write_policy(
        area, "command_rules:\n  - {name: no-touch, commands: [touch], decision: deny}\n"
    )
    marker = area.ws / "made"
    r = run_session(area, None, ["touch", str(marker)], AGENTSH_TEST_POLICY=str(policy),
                    AGENTSH_TEST_SLOW_AUDIT="1")  # fmt: skip
    assert r["status"] == 126 and not marker.exists()
    assert r["error"] == "touch: execution denied by policy (rule no-touch)", r["error"]
    assert [e["rule"] for e in r["events"] if e["type"] == "exec"] == ["no-touch"]
