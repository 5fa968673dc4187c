"""Network changes through routing netlink (`ip addr add`, and the ways a
message reaches the kernel: programs/netlink_change.py) are refused in the
sandbox, in both modes, as root and as uid 65534, and audited (rule
netlink-changes) where the call is trapped.

Every change is made in a network namespace the test creates (`unshare
--net`), never in the host's: the host's lo is checked to hold none of
these addresses before and after. The baseline runs the same commands
without the sandbox in another fresh namespace, and must change it:

* root, in a namespace root made: root holds CAP_NET_ADMIN there; the
  sandbox drops it (see docs/security.md, "Capabilities") and the
  supervisor refuses the messages first.
* uid 65534 in a namespace root made: no capability, sandbox or not. The
  baseline shows the change refused already: what it proves is that the
  sandbox gives uid 65534 no way around that (and audits the attempt).
* uid 65534 in namespaces of its own (`unshare --user --map-root-user
  --net`): it is root there and holds CAP_NET_ADMIN over its network
  namespace, so the baseline changes it; in the sandbox (run inside those
  namespaces, as a rootless container would) the change is refused.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import Area, User, linux_only, read_audit, sandbox_env
from tests.escape.conftest import program_copy

pytestmark = [linux_only, pytest.mark.needs_userns]

NET = "10.200.0."  # only ever added inside a namespace made here
DONE = 42
WAYS = ("sendto", "sendmsg", "batch", "send")  # netlink_change.py's labels, in order


def _host_lo() -> str:
    """The host's own lo (read only)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "lo"], capture_output=True)
    return out.stdout.decode()


@pytest.fixture(autouse=True)
def host_untouched() -> Any:
    assert NET not in _host_lo(), "the host's lo already holds a test address"
    yield
    assert NET not in _host_lo(), "the host's lo was changed"


def _inner(area: Area) -> str:
    """What runs in the namespace: `ip addr add`, then every way of the program."""
    program = shlex.quote(str(program_copy(area, "netlink_change.py")))
    return (
        f"ip addr add {NET}9/24 dev lo && echo 'ip-addr-add: ok' || echo 'ip-addr-add: failed'; "
        f"exec {shlex.quote(sys.executable)} -I {program}"
    )


def _run(area: Area, user: User, scope: str, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """``cmd`` as ``user`` in a fresh network namespace whose lo is up;
    then that namespace's IPv4 addresses on lo, printed after "lo:"."""
    tail = "echo lo:; ip -o -4 addr show dev lo"
    if scope == "own":  # the user's own user and network namespaces
        script = f"ip link set lo up && {shlex.join(cmd)}; echo rc=$?; {tail}"
        argv = user.cmd(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script])
    else:  # made by root (the test); the command drops to the user
        script = f"ip link set lo up && {shlex.join(user.cmd(cmd))}; echo rc=$?; {tail}"
        argv = ["unshare", "--net", "sh", "-c", script]
    return subprocess.run(
        argv,
        cwd=area.ws,
        env=sandbox_env(area),
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def _results(out: str) -> dict[str, str]:
    return dict(re.findall(r"^([\w-]+): (\S+)", out, re.M))


def _added(out: str) -> list[str]:
    return re.findall(rf"inet ({re.escape(NET)}\d+)/", out.split("\nlo:\n", 1)[-1])


def _scope(user: User, scope: str) -> None:
    if scope == "own" and user.name == "root":
        pytest.skip("root holds CAP_NET_ADMIN in the namespace it makes: the plain case")


@pytest.mark.parametrize("scope", ["netns", "own"])
def test_network_changes_refused_in_the_sandbox(
    area: Area, user: User, mode: str, scope: str
) -> None:
    _scope(user, scope)
    cli = [sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(area.ws)]
    cli += ["--audit", str(area.audit), "--mode", mode, "--", "sh", "-c", _inner(area)]
    p = _run(area, user, scope, cli)
    out = p.stdout
    assert f"rc={DONE}" in out, f"the run failed:\n{out}\n{p.stderr}"
    got = _results(out)
    assert got.get("ip-addr-add") == "failed", out
    assert "Operation not permitted" in p.stderr, p.stderr
    assert {got.get(w) for w in WAYS} == {"EPERM"}, out
    assert _added(out) == [], f"the namespace's lo was changed:\n{out}"
    # Audited where the call is trapped: ip's sendmsg, and the program's
    # sendto, sendmsg and batch; a send() is the kernel's alone.
    refused = [
        e
        for e in read_audit(area.audit)
        if e.get("rule") == "netlink-changes"
        and e.get("decision") == "deny"
        and e.get("type") == "syscall_blocked"
        and "RTM_NEWADDR" in e.get("messages", [])
    ]
    calls = sorted(e["syscall"] for e in refused)
    assert calls == ["sendmsg", "sendmsg", "sendmsg", "sendto"], refused


@pytest.mark.unsandboxed
@pytest.mark.parametrize("scope", ["netns", "own"])
def test_network_changes_work_unsandboxed(area: Area, user: User, scope: str) -> None:
    """The baseline: the same commands, no sandbox, another fresh namespace."""
    _scope(user, scope)
    p = _run(area, user, scope, ["sh", "-c", _inner(area)])
    out = p.stdout
    assert f"rc={DONE}" in out, f"the program failed on its own:\n{out}\n{p.stderr}"
    got = _results(out)
    if user.name == "nobody" and scope == "netns":
        # no capability in root's namespace, sandbox or not
        assert got.get("ip-addr-add") == "failed" and _added(out) == [], out
        assert {got.get(w) for w in WAYS} == {"EPERM"}, out
        return
    assert got.get("ip-addr-add") == "ok", f"{out}\n{p.stderr}"
    assert all(got.get(w) == "ok" for w in WAYS), out
    assert sorted(_added(out)) == sorted(f"{NET}{n}" for n in (1, 2, 3, 4, 9)), out
