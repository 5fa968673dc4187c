"""Landlock through `agentsh-ipy exec`, as root and as uid 65534.

Landlock shows only where the notify layer does not decide, so each test
uses such a place: mknod (not trapped at all), and a path race against
opens the supervisor lets CONTINUE. It does the allowed opens itself now
(fd injection) and name operations too, so the race runs in a session that
accepts the weaker guarantee "opens-continue" (a host without fd
injection): the race is first won against a target only the notify layer
denies (so it really works on this host), then never against a target
Landlock also denies. (tests/escape/test_races.py shows the same races
never won in the default session.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy._linux import landlock as ll
from tests.conftest import TEST_POLICY, Area, Run, linux_only, sandbox, sandbox_env

pytestmark = [
    linux_only,
    pytest.mark.skipif(
        sys.platform.startswith("linux") and ll.abi() == 0,
        reason="this kernel has no usable Landlock",
    ),
]


def landlock_event(r: Run) -> dict[str, Any]:
    [ev] = [e for e in r.of_type("sandbox") if e.get("op") == "landlock"]
    return ev


def policy_with(area: Area, first_rules: str) -> Path:
    """TEST_POLICY with ``first_rules`` placed before its file rules
    (first match wins: a deny after the read-only allow would never fire)."""
    text = TEST_POLICY.replace("file_rules:\n", "file_rules:\n" + first_rules, 1)
    return area.write("policy.yaml", text)


def test_landlock_is_applied_and_audited(area: Area) -> None:
    r = sandbox(area, ["true"])
    assert r.returncode == 0, r.stderr
    ev = landlock_event(r)
    assert ev["abi"] == ll.abi()
    assert "write_file" in ev["handled_fs"]
    assert ev["message"].startswith(f"Landlock ABI {ll.abi()}:")
    assert any(path == str(area.ws) and "make_reg" in rights for path, rights in ev["rules"])
    # `exec` is one domain: the scopes hold the policy's signal and unix decisions.
    if ll.abi() >= 6:
        assert ev["scopes"] == ["abstract_unix_socket", "signal"], ev
        assert ev["message"].endswith("scopes: abstract_unix_socket, signal")
    else:
        assert ev["scopes"] == [] and ev["scopes_off"]


def test_mknod_outside_the_workspace_is_refused(area: Area) -> None:
    # mknod is a create under the file rules (notify), and Landlock, derived
    # from the same rules, grants make_fifo only in the writable trees.
    fifo, ok = area.outside / "fifo", area.ws / "fifo"
    r = sandbox(area, ["sh", "-c", f"mkfifo {fifo}; echo rc=$?; mkfifo {ok} && echo made"])
    assert not fifo.exists()
    assert "Permission denied" in r.stderr
    assert "rc=1" in r.stdout and "made" in r.stdout
    assert ok.exists()
    [denied] = [e for e in r.events if e.get("path") == str(fifo)]
    assert (denied["op"], denied["decision"], denied["syscall"]) == ("create", "deny", "mknodat")
    assert any(
        "make_fifo" in rights for path, rights in landlock_event(r)["rules"] if path == str(area.ws)
    )


RACE = r"""
import ctypes, json, os, sys, threading, time

good, bad = sys.argv[1:3]
budget, max_tries, max_wins = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
assert len(good) == len(bad)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(len(good) + 8)
how = (ctypes.c_uint64 * 3)(os.O_RDONLY, 0, 0)  # struct open_how
pair = [good.encode(), bad.encode()]
stop = False

def flip():
    while not stop:
        ctypes.memmove(buf, pair[0], len(pair[0]) + 1)
        ctypes.memmove(buf, pair[1], len(pair[1]) + 1)

t = threading.Thread(target=flip, daemon=True)
t.start()
tries = wins = 0
deadline = time.monotonic() + budget
while time.monotonic() < deadline and tries < max_tries and wins < max_wins:
    tries += 1
    fd = libc.syscall(437, -100, buf, ctypes.byref(how), 24)  # openat2
    if fd >= 0:
        data = os.read(fd, 100)
        os.close(fd)
        wins += data.startswith(b"SECRET")
stop = True
print(json.dumps({"tries": tries, "wins": wins}))
"""

# A session whose opens continue in the kernel, as on a host without fd
# injection where the user accepted that weaker guarantee.
CONTINUING = r"""
import sys, time
from agentsh_ipy import audit as aud
from agentsh_ipy import supervisor as sup

policy_path, ws, *cmd = sys.argv[1:]
log = aud.AuditLog(None, "race", time.time)
policy = sup.load_policy(policy_path, ws)
result = sup.Session(policy, log, workspace=ws, weaker=["opens-continue"]).run(cmd, cwd=ws)
sys.exit(result.status)
"""


def race(
    area: Area, policy: Path, good: str, bad: str, budget: float, tries: int = 10**9
) -> dict[str, int]:
    """Race ``bad`` into a path buffer the supervisor decides as ``good``:
    until 3 wins (or ``tries``, or ``budget`` seconds); the counts."""
    script = area.write("ws/race.py", RACE)
    program = [sys.executable, str(script), good, bad, str(budget), str(tries), "3"]
    argv = area.user.cmd([sys.executable, "-c", CONTINUING, str(policy), str(area.ws), *program])
    p = subprocess.run(
        argv, cwd=area.ws, env=sandbox_env(area), capture_output=True, text=True,
        timeout=budget + 60, start_new_session=True,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    out: dict[str, int] = json.loads(p.stdout.splitlines()[-1])
    return out


@pytest.mark.slow
def test_a_read_race_cannot_reach_a_read_hole(area: Area) -> None:
    # Same-length names in one directory that the policy lets the sandbox read.
    public = area.write("outside/public.txt", "public\n")
    hole = area.write("outside/secret.txt", "SECRET hole\n")  # literal deny: a read hole
    glob = area.write("outside/secret.key", "SECRET glob\n")  # glob deny: notify only
    policy = policy_with(
        area,
        f"  - {{name: secrets, paths: ['{hole}', '{area.outside}/*.key'], "
        "operations: ['*'], decision: deny}\n",
    )
    control = race(area, policy, str(public), str(glob), 20)
    assert control["wins"] > 0, f"the race never won ({control}): no evidence either way"
    # Several times the tries the control needed for 3 wins, and never fewer than 2000.
    tries = max(control["tries"] * 5, 2000)
    got = race(area, policy, str(public), str(hole), 60, tries)
    assert (got["wins"], got["tries"]) == (0, tries), got
