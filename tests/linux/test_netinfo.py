"""_linux/netinfo (what the kernel says of routes and sockets) and the
supervisor's HostServices built on it, against sockets this test makes.
Loopback only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsh_ipy._linux import netinfo
from agentsh_ipy.supervisor._hosts import HostServices
from tests.conftest import linux_only

pytestmark = linux_only


@pytest.fixture
def tcp() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s
    s.close()


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("127.0.0.1", netinfo.RTN_LOCAL),
        ("127.3.2.1", netinfo.RTN_LOCAL),
        ("0.0.0.0", netinfo.RTN_LOCAL),
        ("::1", netinfo.RTN_LOCAL),
        ("224.0.0.1", netinfo.RTN_MULTICAST),
        ("255.255.255.255", netinfo.RTN_BROADCAST),
    ],
)
def test_route_type(ip: str, kind: int) -> None:
    # A route lookup sends nothing: it asks the kernel where a packet would go.
    assert netinfo.route_type(ip) == kind


def test_route_type_of_a_local_interface_address_in_a_namespace() -> None:
    """An address the test adds to lo in a network namespace of its own is
    LOCAL there (as a container's own IP is), and not before it is added."""
    code = (
        "import subprocess, sys, json; from agentsh_ipy._linux import netinfo as n\n"
        "subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)\n"
        "try: before = n.route_type('10.200.0.1')\n"
        "except OSError as e: before = e.errno\n"
        "subprocess.run(['ip', 'addr', 'add', '10.200.0.1/32', 'dev', 'lo'], check=True)\n"
        "print(json.dumps([before, n.route_type('10.200.0.1')]))\n"
    )
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "-rn"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    p = subprocess.run(
        [*unshare, sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert p.returncode == 0, f"network namespace test failed (unshare, ip): {p.stderr}"
    before, after = json.loads(p.stdout)
    assert before != netinfo.RTN_LOCAL  # no route (ENETUNREACH) in an empty namespace
    assert after == netinfo.RTN_LOCAL


def test_inet_sockets_and_inodes(tcp: socket.socket) -> None:
    port = tcp.getsockname()[1]
    found = [s for s in netinfo.inet_sockets(port) if s.proto == "tcp"]
    assert [(s.ip, s.state, s.inode) for s in found] == [
        ("127.0.0.1", netinfo.TCP_LISTEN, os.fstat(tcp.fileno()).st_ino)
    ]
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u:
        u.bind(("::1", 0))
        [s] = netinfo.inet_sockets(u.getsockname()[1])
        assert (s.proto, s.ip, s.inode) == ("udp", "::1", os.fstat(u.fileno()).st_ino)
    assert os.fstat(tcp.fileno()).st_ino in netinfo.socket_inodes(os.getpid())


def test_unix_sockets_by_file_and_abstract_name(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    name = f"agentsh-test-{os.getpid()}".encode()
    with socket.socket(socket.AF_UNIX) as a, socket.socket(socket.AF_UNIX) as b:
        a.bind(str(path))
        a.listen()
        b.bind(b"\0" + name)
        b.listen()
        found = {s.inode: s for s in netinfo.unix_sockets()}
        st = path.stat()
        sa, sb = found[os.fstat(a.fileno()).st_ino], found[os.fstat(b.fileno()).st_ino]
        assert sa.vfs == (st.st_dev, st.st_ino) and sa.state == netinfo.TCP_LISTEN
        assert sb.name == b"\0" + name and sb.vfs is None


def test_host_services_owns_only_what_the_members_hold(tcp: socket.socket, tmp_path: Path) -> None:
    port = tcp.getsockname()[1]
    me = HostServices(lambda: [os.getpid()])
    nobody = HostServices(lambda: [])
    local = me.route("127.0.0.1")
    assert me.is_host(local)
    assert me.own_inet("127.0.0.1", port, local)
    assert me.own_inet("0.0.0.0", port, me.route("0.0.0.0"))  # 0.0.0.0 is this host
    assert not nobody.own_inet("127.0.0.1", port, local)
    assert not me.own_inet("127.0.0.2", port, me.route("127.0.0.2"))  # nothing there

    path, link = tmp_path / "s.sock", tmp_path / "link.sock"
    with socket.socket(socket.AF_UNIX) as a:
        a.bind(str(path))
        a.listen()
        os.link(path, link)
        st = path.stat()
        assert me.own_unix(str(path), False) == (st.st_dev, st.st_ino)
        assert me.own_unix(str(link), False) == (st.st_dev, st.st_ino)  # the same socket
        assert nobody.own_unix(str(path), False) is None
        assert me.own_unix(str(tmp_path), False) is None  # not a socket


def test_host_services_a_socket_held_outside_is_not_own(tmp_path: Path) -> None:
    """A listener held by another process (not a member) on the same port
    as ours: the destination is not only the sandbox's, so it is not own."""
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, sys, time\n"
         "s = socket.socket(socket.AF_INET6); s.bind(('::', 0)); s.listen()\n"
         "print(s.getsockname()[1], flush=True); time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        me = HostServices(lambda: [os.getpid()])
        assert not me.own_inet("127.0.0.1", port, me.route("127.0.0.1"))  # dual-stack ::
        assert HostServices(lambda: [child.pid]).own_inet("::1", port, me.route("::1"))
    finally:
        child.kill()
        child.wait(10)
