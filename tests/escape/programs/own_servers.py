"""Not a threat: the program's own servers, which must keep working.

TCP and UDP on 127.0.0.1 and ::1, each bound to port 0, and unix stream
sockets (a path in the workspace, an abstract name), each reached from
this process and from a child process; the server answers every client
(for UDP: to the port the kernel gave the client on its first send).

Usage: own_servers.py ABSTRACT_NAME        (cwd: the workspace)
       own_servers.py client KIND ADDRESS  (the child: one round trip)
Prints "LABEL: ok ..." (or the errno name) per round trip, "port-LABEL: N"
per server and "peer-LABEL: N" for the client port a UDP server answered.
"""

import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
T = 5  # seconds, every socket operation
FAMILY = {"4": socket.AF_INET, "6": socket.AF_INET6}


def parse(kind, address):
    """("tcp4", "127.0.0.1:80") -> (family, type, sockaddr)"""
    if kind.startswith("unix"):
        name = "\0" + address[1:] if address.startswith("@") else address
        return socket.AF_UNIX, socket.SOCK_STREAM, name
    host, port = address.rsplit(":", 1)
    kind_type = socket.SOCK_STREAM if kind.startswith("tcp") else socket.SOCK_DGRAM
    return FAMILY[kind[-1]], kind_type, (host, int(port))


def client_socket(kind, address):
    fam, typ, addr = parse(kind, address)
    s = socket.socket(fam, typ)
    s.settimeout(T)
    return s, typ, addr


def ask(s, typ, addr, tag):
    """The client's half: send, for a stream after connecting."""
    if typ == socket.SOCK_STREAM:
        s.connect(addr)
        s.sendall(tag)
    else:
        s.sendto(tag, addr)  # the kernel picks this socket's port here


def answer(s, typ, tag):
    data = s.recv(1024) if typ == socket.SOCK_STREAM else s.recvfrom(1024)[0]
    if data != b"echo:" + tag:
        raise OSError(0, f"got {data!r}")
    return "round trip"


def serve_one(srv, typ):
    """The server's half: answer one client; return the peer address."""
    if typ == socket.SOCK_DGRAM:
        data, peer = srv.recvfrom(1024)
        srv.sendto(b"echo:" + data, peer)
        return peer
    conn, peer = srv.accept()
    with conn:
        conn.settimeout(T)
        conn.sendall(b"echo:" + conn.recv(1024))
    return peer


def same_process(label, srv, typ, kind, address):
    s, typ, addr = client_socket(kind, address)
    with s:
        tag = label.encode()
        ask(s, typ, addr, tag)
        peer = serve_one(srv, typ)
        if typ == socket.SOCK_DGRAM:
            print(f"peer-{label}: {peer[1]}", flush=True)
        return answer(s, typ, tag)


def from_child(label, srv, typ, kind, address):
    child = subprocess.Popen(
        [sys.executable, "-I", os.path.abspath(__file__), "client", kind, address, label],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        peer = serve_one(srv, typ)
        out, _ = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    if typ == socket.SOCK_DGRAM:
        print(f"peer-{label}: {peer[1]}", flush=True)
    if child.returncode != 0 or out.strip() != "ok":
        raise OSError(0, f"child: {out.strip()!r}, status {child.returncode}")
    return "round trip"


def child_main(kind, address, label):
    import errno

    s, typ, addr = client_socket(kind, address)
    try:
        with s:
            tag = label.encode()
            ask(s, typ, addr, tag)
            answer(s, typ, tag)
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno) if e.errno else e.strerror, flush=True)
        sys.exit(1)
    print("ok", flush=True)


def server(kind, bind):
    fam, typ, addr = parse(kind, bind if kind.startswith("unix") else bind + ":0")
    srv = socket.socket(fam, typ)
    srv.settimeout(T)
    srv.bind(addr)
    if typ == socket.SOCK_STREAM:
        srv.listen(8)
    return srv


def main(abstract):
    servers = [
        ("tcp4", "127.0.0.1"),
        ("tcp6", "::1"),
        ("udp4", "127.0.0.1"),
        ("udp6", "::1"),
        ("unix-path", os.path.abspath("own.sock")),
        ("unix-abstract", "@" + abstract),
    ]
    for kind, bind in servers:
        srv = report(f"server-{kind}", lambda kind=kind, bind=bind: server(kind, bind))
        if srv is None:
            continue
        typ = srv.type
        with srv:
            if kind.startswith("unix"):
                address = bind
            else:
                port = srv.getsockname()[1]
                print(f"port-{kind}: {port}", flush=True)
                address = f"{bind}:{port}"
            for label, how in ((f"{kind}-self", same_process), (f"{kind}-child", from_child)):
                report(label, lambda: how(label, srv, typ, kind, address))  # noqa: B023 (called at once)
    sys.exit(DONE)


if sys.argv[1] == "client":
    child_main(*sys.argv[2:5])
else:
    main(sys.argv[1])
