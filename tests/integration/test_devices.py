"""Devices under the built-in policy, through `agentsh-ipy exec`, as root and
as uid 65534, in notify and ptrace mode: disks, consoles and other
consoles are refused (rule devices-private, with an audit
event); the devices ordinary programs use still work.

No loop device is made (that needs CAP_SYS_ADMIN): the test opens nodes
that exist on this host. Another terminal's /dev/pts/N is refused by the
supervisor (rule other-terminal): see the escape suite, other_terminal.py.
"""

from __future__ import annotations

import glob
import os
import stat
import sys

import pytest

from tests.conftest import Area, linux_only, sandbox

pytestmark = linux_only

READ = r"""
import errno, sys
for path in sys.argv[1:]:
    try:
        with open(path, "rb", buffering=0) as f:
            f.read(0)
        print(path, "ok")
    except OSError as e:
        print(path, errno.errorcode.get(e.errno, e.errno))
"""


def _block_device() -> str | None:
    for path in sorted(glob.glob("/dev/loop[0-9]*")) + sorted(glob.glob("/dev/[sv]d[a-z]")):
        if stat.S_ISBLK(os.stat(path).st_mode):
            return path
    return None


@pytest.fixture(params=["notify", "ptrace"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def results(out: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in out.splitlines() if line.startswith("/"))


def test_private_devices_are_refused(area: Area, mode: str) -> None:
    private: list[str] = []
    blk = _block_device()
    if blk:
        private.append(blk)
    if os.path.exists("/dev/tty0"):
        private.append("/dev/tty0")
    if os.path.exists("/dev/mem"):
        private.append("/dev/mem")
    if not private:
        pytest.skip("no block device, console or /dev/mem on this host")
    r = sandbox(area, [sys.executable, "-c", READ, *private], extra=["--mode", mode])
    assert r.returncode == 0, r.stderr
    got = results(r.stdout)
    assert got == {p: "EACCES" for p in private} or all(
        v in ("EACCES", "EPERM") for v in got.values()
    ), got
    for path in private:
        evs = [e for e in r.events if e["type"] == "file" and e.get("path") == path]
        assert evs, (path, r.events)
        assert (evs[0]["decision"], evs[0]["rule"]) == ("deny", "devices-private"), evs[0]
        assert "consoles" in evs[0].get("message", ""), evs[0]


def test_ordinary_devices_still_work(area: Area, mode: str) -> None:
    wanted = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/fd/0", "/dev/stdin"]
    r = sandbox(area, [sys.executable, "-c", READ, *wanted], extra=["--mode", mode], input="x")
    assert r.returncode == 0, r.stderr
    got = results(r.stdout)
    # stdin is the test's pipe, owned by root: uid 65534 may not reopen it
    # by name whatever the sandbox says (the OS refuses; no policy event).
    fds = ("/dev/fd/0", "/dev/stdin")
    if area.user.uid != 0:
        assert all(got.pop(p) in ("ok", "EACCES") for p in fds), r.stdout
    assert got == {p: "ok" for p in wanted if p in got}, r.stdout
    assert len(got) >= 4
    assert not [e for e in r.events if e["type"] == "file" and e["decision"] == "deny"]
    r = sandbox(area, ["sh", "-c", "echo hi > /dev/null && head -c 4 /dev/urandom | wc -c"])
    assert r.returncode == 0 and r.stdout.strip() == "4", r.stderr


def test_a_pty_made_inside_works(area: Area) -> None:
    code = "import os; m, s = os.openpty(); os.write(s, b'hi\\n'); print(os.read(m, 10))"
    r = sandbox(area, [sys.executable, "-c", code])
    assert r.returncode == 0, r.stderr
    assert "hi" in r.stdout


def test_own_terminals_names_the_ttys_of_the_fds() -> None:
    from agentsh_ipy.supervisor._session import own_terminals

    master, slave = os.openpty()
    try:
        assert own_terminals([slave, master + 1000]) == [os.ttyname(slave)]
        r, w = os.pipe()
        assert own_terminals([r, w]) == []
        os.close(r)
        os.close(w)
    finally:
        os.close(slave)
        os.close(master)
