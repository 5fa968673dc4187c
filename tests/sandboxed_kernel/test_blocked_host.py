"""The sandboxed kernel on a host refusing pidfd_getfd and unshare(CLONE_FS),
as Docker's default seccomp profile does without CAP_SYS_PTRACE and
CAP_SYS_ADMIN (issue 19: the kernel died at start there, its zmq binds
refused). Jupyter starts it under tests/integration/run_blocked.py: notify
mode with the stand-ins, the binds work, a cell's loopback server and
client work, and a denied connect is still denied."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import BLOCKED_MECHANISM, blocked_launcher

from ._harness import SandboxedKernel, SkArea, make_user, write_kernelspec

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

CELL = """\
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
client = socket.create_connection(server.getsockname(), timeout=10)
peer, _ = server.accept()
client.sendall(b"own-ok")
print(peer.recv(6).decode())
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=10)
    print("closed-port reached")
except OSError as e:
    print("closed-port", e.errno)
"""


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_the_kernel_runs_in_notify_mode_without_the_privileged_calls(name: str) -> None:
    area = SkArea(make_user(name))
    kdir = write_kernelspec(area, policy=area.policy, audit=area.audit)
    spec = json.loads((kdir / "kernel.json").read_text())
    spec["argv"] = [*blocked_launcher(area), *spec["argv"]]
    (kdir / "kernel.json").write_text(json.dumps(spec))
    kernel = None
    try:
        kernel = SandboxedKernel(area)
        cell = kernel.ok(CELL.format(port=area.port))
        assert cell.stdout.splitlines()[0] == "own-ok", cell.stdout
        assert "closed-port 111" in cell.stdout, cell.stdout  # ECONNREFUSED
        [denied] = [
            e for e in cell.events_of("net", op="connect", port=area.port)
            if e["decision"] == "deny"
        ]  # fmt: skip
        assert denied["rule"] == "closed-port", denied
        starts = [
            json.loads(line) for line in area.audit.read_text().splitlines()
            if '"op":"start"' in line
        ]  # fmt: skip
        assert starts and starts[0]["mode"] == "notify", starts
        assert starts[0]["mechanism"] == BLOCKED_MECHANISM, starts
    finally:
        if kernel is not None:
            kernel.shutdown()
        area.cleanup()
