"""The inner kernel's ports stay reserved from the moment the supervisor
picks them until the kernel ends: the kernel can listen there (zmq binds
with SO_REUSEADDR, as ipykernel's sockets do), nothing else can bind them
meanwhile. Picked and released, a port could be taken (by the proxy's own
connects, or the next kernel's port picks) before the kernel bound it, and
the kernel died of EADDRINUSE."""

from __future__ import annotations

import errno
import json
import os
import socket
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
