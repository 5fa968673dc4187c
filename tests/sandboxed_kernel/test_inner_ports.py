"""The inner kernel's ports: never one of the frontend's (which the proxy
binds), and reserved from the moment the supervisor picks them until the
kernel ends: the kernel can listen there (zmq binds with SO_REUSEADDR, as
ipykernel's sockets do), nothing else can bind them meanwhile. Either way a
port could be taken before the kernel bound it, and the kernel died of
EADDRINUSE."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from agentsh_ipy.kernel import _app


def test_ports_are_held_for_the_kernel_and_refused_to_anyone_else(tmp_path: Path) -> None:
    path, info, held = _app._inner_connection(str(tmp_path))
    ctx = zmq.Context()
    try:
        ports = [info[c] for c in _app._CHANNELS]
        assert sorted(s.getsockname()[1] for s in held) == sorted(ports)
        assert json.loads(Path(path).read_text()) == info
        assert os.stat(path).st_mode & 0o777 == 0o400
        for port in ports:
            other = socket.socket()
            with pytest.raises(OSError) as exc:
                other.bind(("127.0.0.1", port))
            other.close()
            assert exc.value.errno == errno.EADDRINUSE
        # ipykernel's channels bind and listen there, and are reachable.
        routers = []
        for port in ports:
            r = ctx.socket(zmq.ROUTER)
            r.bind(f"tcp://127.0.0.1:{port}")
            routers.append(r)
        d = ctx.socket(zmq.DEALER)
        d.connect(f"tcp://127.0.0.1:{ports[0]}")
        d.send(b"ping")
        assert routers[0].poll(5000), "no message on the kernel's channel"
        assert routers[0].recv_multipart()[-1] == b"ping"
    finally:
        ctx.destroy(linger=0)
        for s in held:
            s.close()


def test_a_failure_after_the_ports_were_picked_releases_them(tmp_path: Path) -> None:
    (tmp_path / "kernel.json").write_text("{}")  # O_EXCL: writing the file fails
    before = {int(fd) for fd in os.listdir("/proc/self/fd")}
    with pytest.raises(FileExistsError):
        _app._inner_connection(str(tmp_path))
    after = {int(fd) for fd in os.listdir("/proc/self/fd")}
    assert after <= before


NETNS_PICK = """
import json, sys
from agentsh_ipy.kernel import _app
with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
    f.write("40000 40009")
try:
    path, info, held = _app._inner_connection(sys.argv[1], avoid=set(json.loads(sys.argv[2])))
except OSError as e:
    print(json.dumps({"errno": e.errno}))
else:
    print(json.dumps({"ports": sorted(info[c] for c in _app._CHANNELS)}))
"""


def _pick_in_small_range(tmp_path: Path, avoid: list[int]) -> dict[str, object]:
    """_inner_connection in a network namespace of our own whose port range
    is 40000-40009, so which ports the OS can offer is known."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    p = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", NETNS_PICK, str(tmp_path), json.dumps(avoid)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    result: dict[str, object] = json.loads(p.stdout)
    return result


@pytest.mark.needs_userns  # unshare -rn
def test_the_frontends_ports_are_never_given_to_the_inner_kernel(tmp_path: Path) -> None:
    # The proxy binds the frontend's ports: an inner kernel given one of
    # them would die of EADDRINUSE.
    got = _pick_in_small_range(tmp_path, avoid=[40000, 40002, 40004, 40006, 40008])
    assert got == {"ports": [40001, 40003, 40005, 40007, 40009]}


@pytest.mark.needs_userns  # unshare -rn
def test_too_few_free_ports_is_an_error_not_a_shared_port(tmp_path: Path) -> None:
    got = _pick_in_small_range(tmp_path, avoid=list(range(40000, 40006)))
    assert got == {"errno": errno.EADDRINUSE}


@pytest.mark.parametrize("content", ["[1, 2]", "{not json"])
def test_a_malformed_connection_file_is_refused_with_a_reason(tmp_path: Path, content: str) -> None:
    conn = tmp_path / "kernel.json"
    conn.write_text(content)
    p = subprocess.run(
        [sys.executable, "-m", "agentsh_ipy.kernel", "-f", str(conn)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 125, p.stderr
    assert "connection file" in p.stderr and "the kernel was not started" in p.stderr
    assert "Traceback" not in p.stderr
