"""Notify mode on a host refusing pidfd_getfd and unshare(CLONE_FS), as
Docker's and Kubernetes' default seccomp profiles do without
CAP_SYS_PTRACE/CAP_SYS_ADMIN (issue 19): the supervisor runs under
tests/integration/run_blocked.py, so it creates with the caller's umask
applied explicitly and traces the socket calls it cannot copy the socket
for (the start event's ``mechanism`` says both; tests.conftest.sandbox
checks it). What it creates and what the network rules decide must be what
notify mode with every facility gives, as root and as uid 65534.

The escape suite's cases that relied on a pidfd_getfd copy run here in that
mode too; its racers do in test_races (BLOCKED_MODE)."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import BLOCKED_MODE, blocked_launcher, sandbox, write_policy
from tests.escape import test_escape as te
from tests.escape.conftest import Ctx

pytestmark = te.pytestmark

PROGRAM = """\
import errno, os, socket, stat, sys

def mode(name):
    return format(stat.S_IMODE(os.stat(name).st_mode), "o")

for m in (0o077, 0o002):
    os.umask(m)
    os.close(os.open(f"f{m:o}", os.O_CREAT | os.O_WRONLY, 0o666))
    os.close(os.open(f"x{m:o}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o777))
    os.mkdir(f"d{m:o}", 0o777)
    os.mkfifo(f"p{m:o}", 0o666)
    for n in "fxdp":
        print(f"{n}{m:o}: {mode(f'{n}{m:o}')}")
os.close(os.open("f77", os.O_CREAT | os.O_WRONLY, 0o666))  # exists: left as it is
print("f77-again:", mode("f77"))

def connect(port):
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect(("127.0.0.1", port))
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

print("allowed:", connect(int(sys.argv[1])))
print("denied:", connect(int(sys.argv[2])))
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
client = socket.create_connection(server.getsockname(), timeout=10)
peer, _ = server.accept()
client.sendall(b"hi")
print("own:", peer.recv(2).decode())
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    udp.sendto(b"x", ("127.0.0.1", int(sys.argv[2])))
    print("udp-denied: sent")
except OSError as e:
    print("udp-denied:", errno.errorcode.get(e.errno, str(e.errno)))
sys.exit(42)
"""

# What the kernel gives a caller with these umasks (no default ACL here).
MODES = {
    "f77": "600", "x77": "700", "d77": "700", "p77": "600",
    "f2": "664", "x2": "775", "d2": "775", "p2": "664",
    "f77-again": "600",
}  # fmt: skip


@pytest.mark.parametrize("blocked", [False, True], ids=["notify", "notify-blocked"])
def test_created_with_the_callers_umask_and_sockets_decided(world: Ctx, blocked: bool) -> None:
    allowed, denied = world.tcp("allowed"), world.tcp("denied")
    policy = write_policy(
        world.area,
        "network_rules:\n"
        f"  - {{name: dev-server, cidrs: [127.0.0.1/32], ports: [{allowed.port}], "
        "decision: allow}\n"
        "  - {name: own-servers, cidrs: [127.0.0.1/32], operations: [bind], decision: allow}\n",
    )
    script = world.area.write("umask_sockets.py", PROGRAM)
    # The supervisor's own umask 077 takes bits the caller's 002 leaves: they
    # must be put back on what it creates, and only there.
    launcher = ["sh", "-c", 'umask 077 && exec "$@"', "sh"]
    if blocked:
        launcher += blocked_launcher(world.area)
    argv = [sys.executable, "-I", str(script), str(allowed.port), str(denied.port)]
    run = sandbox(world.area, argv, policy=policy, extra=["--mode", "notify"],
                  env=world.env(), launcher=launcher, timeout=90)  # fmt: skip
    assert run.returncode == te.DONE, (run.stdout, run.stderr)
    got = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    assert {k: got.get(k) for k in MODES} == MODES, run.stdout
    assert (got["allowed"], got["denied"], got["own"]) == ("ok", "ECONNREFUSED", "hi"), got
    assert got["udp-denied"] != "sent", got
    assert allowed.connections() == 1 and denied.connections() == 0
    nets = [e for e in run.of_type("net") if e.get("port") in (allowed.port, denied.port)]
    binds = [e for e in run.of_type("net") if e["op"] == "bind"]
    assert [(e["decision"], e["rule"]) for e in binds] == [("allow", "own-servers")], binds
    assert {(e["op"], e["port"], e["decision"], e["rule"]) for e in nets} == {
        ("connect", allowed.port, "allow", "dev-server"),
        ("connect", denied.port, "deny", "host-local"),
        ("send", denied.port, "deny", "host-local"),
    }, nets
    [start] = [e for e in run.of_type("sandbox") if e.get("op") == "start"]
    assert start["mode"] == "notify"
    if blocked:
        assert start["mechanism"]["sockets"] == "ptrace-held"


# The escape suite's cases whose enforcement used a pidfd_getfd copy: sockets
# (now traced), changes by fd (an O_PATH reopen), links of an fd's file, and
# the fd-swap racers against them.
BY_COPY = (
    "connect-", "udp-", "unix-connect-", "metadata-", "race-fd-swap",
    "write-tmpfile-linkat-",
)  # fmt: skip
CASES = [c for c in te.CASES if c.name.startswith(BY_COPY)]


@pytest.mark.parametrize("case", te._params(CASES))
def test_escape_case_without_privileged_calls(case: te.Case, world: Ctx) -> None:
    te.test_escape(case, world, BLOCKED_MODE)
