"""A host refusing what notify mode needs (issue 19), as Docker's default
seccomp profile refuses a container without CAP_SYS_ADMIN/CAP_SYS_PTRACE:
the supervisor runs under run_blocked.py's filter, which makes unshare with
CLONE_FS and pidfd_getfd fail with EPERM. No downgrade goes unsaid: detect
names each and the stand-in notify mode uses for it (the start event too);
where one has none (openat2), auto uses ptrace mode and still enforces, and
notify refuses (125) unless the weaker guarantee is accepted, and then the
start event says so."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import (
    BLOCKED_MECHANISM,
    TEST_POLICY,
    Area,
    Run,
    User,
    blocked_launcher,
    linux_only,
    read_audit,
    sandbox_env,
)

pytestmark = [linux_only, pytest.mark.slow]
x86_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="ptrace mode is x86_64 only")

BOTH = "unshare_fs,pidfd_getfd"


def blocked(area: Area, calls: str, args: Sequence[str]) -> Run:
    """`agentsh-ipy ARGS` as the area's user, under a filter refusing ``calls``."""
    launcher = area.root / "run_blocked.py"
    if not launcher.exists():  # a copy uid 65534 may read
        shutil.copy(Path(__file__).with_name("run_blocked.py"), launcher)
    argv = area.user.cmd(
        [sys.executable, str(launcher), calls, "--", sys.executable, "-m", "agentsh_ipy.cli", *args]
    )
    start = time.monotonic()
    p = subprocess.run(
        argv, cwd=area.ws, env=sandbox_env(area), capture_output=True, text=True, timeout=60,
        start_new_session=True,
    )  # fmt: skip
    return Run(p.returncode, p.stdout, p.stderr, read_audit(area.audit), time.monotonic() - start)


def exec_args(area: Area, *extra: str) -> list[str]:
    """exec with a policy denying everything under outside/, a command that
    reads a workspace file, then the secret, then marks that it ran."""
    policy = area.write(
        "policy.yaml",
        TEST_POLICY.replace(
            "file_rules:\n",
            f'file_rules:\n  - name: secret\n    paths: ["{area.outside}/**"]\n'
            '    operations: ["*"]\n    decision: deny\n',
            1,
        ),
    )
    area.write("ws/ok.txt", "ok-content\n")
    area.write("outside/secret", "the-secret\n")
    script = f"cat ok.txt; cat {area.outside}/secret; touch ran"
    return ["exec", "--workspace", str(area.ws), "--audit", str(area.audit),
            "--policy", str(policy), *extra, "--", "sh", "-c", script]  # fmt: skip


def assert_enforced(area: Area, r: Run, mode: str) -> dict[str, object]:
    assert "ok-content" in r.stdout and "the-secret" not in r.stdout, (r.stdout, r.stderr)
    assert (area.ws / "ran").exists(), r.stderr
    [start] = [e for e in r.of_type("sandbox") if e.get("op") == "start"]
    assert start["mode"] == mode
    denied = [e for e in r.denials("file") if e["path"] == f"{area.outside}/secret"]
    assert denied and denied[0]["rule"] == "secret", r.events
    return start


@x86_only
def test_detect_names_both_and_auto_keeps_notify_mode(user: User, area: Area) -> None:
    r = blocked(area, BOTH, ["detect", "--json"])
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for name in ("pidfd_getfd", "unshare_fs"):
        probe = data["probes"][name]
        assert probe["available"] is False and probe["detail"].startswith("EPERM: "), probe
    assert data["probes"]["openat2"]["available"] is True
    assert data["sandbox"]["mode"] == "notify"
    assert data["sandbox"]["missing"] == ["pidfd_getfd", "unshare_fs"]
    assert data["sandbox"]["mechanism"] == BLOCKED_MECHANISM
    r = blocked(area, BOTH, ["detect"])
    assert "without pidfd_getfd: connect, bind and sends with an address traced" in r.stdout
    assert "without unshare_fs: the caller's umask applied explicitly" in r.stdout

    for extra in ([], ["--mode", "notify"]):
        r = blocked(area, BOTH, exec_args(area, *extra))
        assert r.returncode == 0, r.stderr  # the script's last command succeeded
        start = assert_enforced(area, r, "notify")
        assert start["mechanism"] == BLOCKED_MECHANISM and "weaker" not in start
        area.audit.unlink()


@x86_only
def test_without_a_stand_in_auto_uses_ptrace_mode(user: User, area: Area) -> None:
    r = blocked(area, "openat2", exec_args(area))
    assert r.returncode == 0, r.stderr
    start = assert_enforced(area, r, "ptrace")
    assert "weaker" not in start and "mechanism" not in start


@x86_only
def test_notify_by_name_refuses_naming_the_facility(user: User, area: Area) -> None:
    r = blocked(area, "openat2," + BOTH, exec_args(area, "--mode", "notify"))
    assert r.returncode == 125, r.stderr
    assert "notify mode needs openat2: EPERM" in r.stderr
    assert "--accept-weaker opens-continue" in r.stderr
    # the two with a stand-in are not what stops it
    assert "needs pidfd_getfd" not in r.stderr and "needs unshare_fs" not in r.stderr
    assert not (area.ws / "ran").exists()
    [refused] = [e for e in r.events if e.get("op") == "refused"]
    assert "openat2" in refused["reason"] and refused["mode"] == "notify"
    assert not [e for e in r.events if e.get("op") == "start"]
    area.audit.unlink()

    accepted = exec_args(area, "--mode", "notify", "--accept-weaker", "opens-continue")
    r = blocked(area, "openat2," + BOTH, accepted)
    assert r.returncode == 0, r.stderr
    start = assert_enforced(area, r, "notify")
    assert start["weaker"] == ["opens-continue"]
    assert start["mechanism"] == BLOCKED_MECHANISM


SESSION = """
import sys, time
from agentsh_ipy import audit as aud, supervisor as sup
log = aud.AuditLog(None, "test", time.time)
events = []
log.subscribe(events.append)
policy = sup.load_policy(None, sys.argv[1])
r = sup.Session(policy, log, mode="notify").run(["touch", sys.argv[1] + "/ran"])
print(r.status, r.error, [e.get("reason") for e in events if e.get("op") == "end"])
"""


def test_the_notify_loop_fails_closed_without_unshare(user: User, area: Area) -> None:
    # A Session asked for notify mode directly (no choice made before it):
    # the notify thread's unshare(CLONE_FS) fails and nothing runs.
    launcher = area.root / "run_blocked.py"
    shutil.copy(Path(__file__).with_name("run_blocked.py"), launcher)
    argv = area.user.cmd([sys.executable, str(launcher), "unshare_fs", "--",
                          sys.executable, "-c", SESSION, str(area.ws)])  # fmt: skip
    p = subprocess.run(argv, cwd=area.ws, env=sandbox_env(area), capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("125 notify mode cannot open files for the sandbox race-free: ")
    assert p.stdout.count("unshare(CLONE_FS)") == 2  # the result and the audit's end event
    assert not (area.ws / "ran").exists()


@pytest.mark.needs_full_notify  # it refuses only unshare(CLONE_FS) itself
def test_the_notebook_daemon_uses_only_the_umask_stand_in(user: User, area: Area) -> None:
    """The %agentsh magic's daemon: without unshare(CLONE_FS) it applies the
    caller's umask explicitly and says so; without pidfd_getfd it refuses,
    naming it (tracing the socket calls is not built for it: never silently)."""
    driver = area.write("run_daemon.py", Path(__file__).with_name("run_daemon.py").read_text())
    for calls in ("unshare_fs", "pidfd_getfd"):
        argv = area.user.cmd([
            *blocked_launcher(area, calls), sys.executable, str(driver), "basic", str(area.ws),
            str(area.audit), str(area.outside), "-",
        ])  # fmt: skip
        p = subprocess.run(argv, cwd=area.ws, env=sandbox_env(area), capture_output=True,
                           text=True, timeout=120)  # fmt: skip
        if calls == "unshare_fs":
            assert p.returncode == 0, p.stderr
            starts = [e for e in json.loads(p.stdout)["events"] if e.get("op") == "start"]
            assert starts and {s["mechanism"]["opens"] for s in starts} == {"explicit-umask"}
            assert (area.ws / "allowed").read_text() == "ok\n"
        else:
            assert p.returncode != 0
            assert "the notebook sandbox needs pidfd_getfd" in p.stderr, p.stderr
            # and %agentsh says so before it tries (its status and every cell)
            check = "from agentsh_ipy import magics; print(magics.enforcement())"
            argv = area.user.cmd([*blocked_launcher(area, calls), sys.executable, "-c", check])
            p = subprocess.run(argv, cwd=area.ws, env=sandbox_env(area), capture_output=True,
                               text=True, timeout=60)  # fmt: skip
            assert p.stdout.startswith("(False, "), p
            assert "the notebook sandbox needs pidfd_getfd; this host offers" in p.stdout, p
