"""Why the ``%%agentsh`` daemon leaves Landlock scopes off (issue 17): each
launch restricts itself, so each is its own domain, and scoped sibling
domains refuse each other's signals and abstract unix sockets, which the
policy allows between the launches of one session. Within one domain (a
process and what it forks) both work; outside it, neither."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agentsh_ipy._linux import landlock as ll
from tests.conftest import linux_only

pytestmark = linux_only

PROBE = r"""
import json, os, socket, time
from agentsh_ipy._linux import _syscall, landlock as ll

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return os.strerror(e.errno)

def scoped_child(job):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)
        ll.restrict_self(ll.create_ruleset(ll.FS_EXECUTE, 0,
                                           ll.SCOPE_SIGNAL | ll.SCOPE_ABSTRACT_UNIX_SOCKET))
        os.write(w, json.dumps(job()).encode())
        time.sleep(30)  # until killed: a target for the next one
        os._exit(0)
    return pid, json.loads(os.read(r, 4096))

def first():
    s = socket.socket(socket.AF_UNIX)
    s.bind("\0agentsh-scope-probe-%d" % os.getpid())
    s.listen(1)
    first.keep = s
    inner = os.fork()
    if inner == 0:
        time.sleep(30)
        os._exit(0)
    out = {"signal_same_domain": attempt(lambda: os.kill(inner, 0)),
           "signal_parent": attempt(lambda: os.kill(os.getppid(), 0))}
    os.kill(inner, 9)
    os.waitpid(inner, 0)
    return out

a, out = scoped_child(first)
name = "\0agentsh-scope-probe-%d" % a
b, sibling = scoped_child(lambda: {
    "signal_sibling": attempt(lambda: os.kill(a, 0)),
    "abstract_sibling": attempt(lambda: socket.socket(socket.AF_UNIX).connect(name)),
})
for pid in (a, b):
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(json.dumps({**out, **sibling}))
"""


def test_scoped_sibling_domains_refuse_each_other() -> None:
    if ll.scopes(ll.abi()) == 0:
        pytest.skip(f"Landlock ABI {ll.abi()} has no scopes")
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["signal_same_domain"] == "ok"
    not_permitted = "Operation not permitted"
    assert got["signal_parent"] == not_permitted
    assert got["signal_sibling"] == not_permitted
    assert got["abstract_sibling"] == not_permitted
