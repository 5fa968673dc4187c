"""The sandbox cannot starve the supervisor into silence (issue 17 item 5).

An unprivileged sandbox shares its user's process limit (RLIMIT_NPROC counts
every task of the uid, threads too) with the supervisor, which runs as the
same user. A sandbox that spends the limit on threads leaves the supervisor
unable to start the worker thread an allowed connect is carried out on. That
connect must still be answered (refused, EAGAIN) and recorded, and the run
must end; before, the call waited for ever.

Root is exempt from RLIMIT_NPROC (the kernel skips the check for uid 0), so
only the unprivileged side can be shown; it runs as a uid of its own (not
65534) so that another xdist worker's unprivileged tasks do not count against
the limit this test sets.
"""

from __future__ import annotations

import os
import socket
import sys

import pytest

from tests.conftest import IS_ROOT, Area, User, linux_only, sandbox, write_policy

pytestmark = linux_only

LIMIT = 64  # tasks of the test's uid: the supervisor's and the sandbox's

PROGRAM = """
import errno, socket, sys, threading
stop = threading.Event()
threads = []
while len(threads) < 4000:
    t = threading.Thread(target=stop.wait)
    try:
        t.start()
    except RuntimeError:
        break
    threads.append(t)
print(f"threads: {len(threads)}", flush=True)
s = socket.socket()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("connect: ok", flush=True)
except OSError as e:
    print(f"connect: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
stop.set()
for t in threads:
    t.join()
"""


def _own_uid() -> int:
    """A uid no other test (or xdist worker) runs as."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return 61000 + (int(worker) if worker.isdigit() else 0)


def test_a_sandbox_that_spends_the_process_limit_gets_its_calls_answered() -> None:
    if not IS_ROOT:
        pytest.skip("needs root to run the sandbox as a uid of its own")
    uid = _own_uid()
    user = User(
        "limited",
        uid,
        [
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "prlimit", f"--nproc={LIMIT}:{LIMIT}", "--",
        ],
    )  # fmt: skip
    area = Area(user)
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        area.write("ws/starve.py", PROGRAM)
        policy = write_policy(
            area,
            "network_rules:\n"
            f"  - {{name: lo, cidrs: [127.0.0.1/32], ports: [{port}], decision: allow}}\n",
        )
        r = sandbox(
            area,
            [sys.executable, str(area.ws / "starve.py"), str(port)],
            policy=policy,
            extra=["--mode", "notify"],
            timeout=120,
        )
        assert "threads: " in r.stdout, (r.stdout, r.stderr)
        spent = int(r.stdout.split("threads: ")[1].split()[0])
        assert 0 < spent < 4000, "the limit was not reached: the test shows nothing"
        # The connect was answered (the run ended), refused for want of a
        # thread, and the audit says so; nothing reached the listener.
        assert "connect: EAGAIN" in r.stdout, (r.stdout, r.stderr)
        nets = [e for e in r.of_type("net") if e.get("port") == port]
        assert [(e["decision"], e["rule"], e.get("result")) for e in nets] == [
            ("deny", "supervisor-unable", "EAGAIN")
        ], nets
        assert "could not carry it out" in nets[0].get("message", "") or nets[0].get("reason")
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
        assert r.returncode == 0, r.stderr
    finally:
        listener.close()
        area.cleanup()
