"""supervisor/_terminals.py: which /dev/pts/N an open may reach, on real
ptys of this process (standing in for a process of the sandbox)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from agentsh_ipy.policy import Decision, load_default
from agentsh_ipy.supervisor import _terminals
from tests.conftest import linux_only

pytestmark = linux_only

POLICY = load_default({"WORKSPACE": "/w", "HOME": "/home/u", "TMPDIR": "/tmp"})
ALLOW = POLICY.check_file("read", "/dev/pts/0")
ME = os.getpid()


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):  # a test may have closed it
            os.close(fd)


def _check(path: str, members: list[int]) -> Decision:
    """Decided for a caller that is no process (-1), in a sandbox of ``members``."""
    return _terminals.check(POLICY, lambda: members, -1, -1, ["read"], [path], ALLOW)


def test_the_default_policy_would_allow_any_terminal() -> None:
    assert (ALLOW.decision, ALLOW.rule) == ("allow", "devices")


def test_a_pty_whose_master_a_member_holds(pty: tuple[int, int]) -> None:
    _master, slave = pty
    name = os.ttyname(slave)
    os.close(slave)  # only the master is held now
    assert _check(name, []).decision == "deny"
    assert _check(name, [ME]) == ALLOW


def test_a_pty_a_member_has_open(pty: tuple[int, int]) -> None:
    master, slave = pty
    name = os.ttyname(slave)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # holds the slave only, until the test is done
        os.close(master)
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    try:
        assert _check(name, []).decision == "deny"
        assert _check(name, [child]) == ALLOW
    finally:
        os.close(w)
        os.waitpid(child, 0)


def test_another_terminal_is_denied_by_name(pty: tuple[int, int]) -> None:
    _master, slave = pty
    name = os.ttyname(slave)
    d = _terminals.check(POLICY, lambda: [], -1, -1, ["read", "write"], ["/x", name], ALLOW)
    assert (d.decision, d.rule) == ("deny", _terminals.OTHER_TERMINAL_RULE)
    assert name in d.message


def test_the_own_terminal_rule_needs_no_holder() -> None:
    own = POLICY.allow_first(_terminals.OWN_TERMINAL_RULE, ["/dev/pts/99"], ["read"], "own")
    d = own.check_file("read", "/dev/pts/99")
    assert _terminals.check(own, lambda: [], -1, -1, ["read"], ["/dev/pts/99"], d) == d


@pytest.mark.parametrize("path", ["/dev/pts/ptmx", "/dev/ptmx", "/dev/null", "/dev/pts/"])
def test_not_a_numbered_terminal_is_left_to_the_policy(path: str) -> None:
    assert _terminals.check(POLICY, lambda: [], -1, -1, ["read"], [path], ALLOW) == ALLOW


def test_a_denial_stays_the_policys() -> None:
    d = POLICY.check_file("read", "/dev/sda")
    assert _terminals.check(POLICY, lambda: [], -1, -1, ["read"], ["/dev/pts/0"], d) == d
