"""Not a threat by itself: a sandboxed server that another sandbox will try
to reach. Binds TCP (127.0.0.1, ::1), UDP (127.0.0.1) to port 0, a unix
socket in the workspace and an abstract one; writes where to PORTS (JSON,
atomically) and serves until STOP exists and nothing is queued (at most 60 s): a stream client
gets "echo:" + what it sent; a datagram is only counted (an answer to an
outside client would be a send the sandbox may not make).

Usage: local_serve.py PORTS STOP ABSTRACT_NAME   (cwd: the workspace)
Prints "received: {KIND: COUNT, ...}" at the end.
"""

import json
import os
import select
import socket
import sys
import time

DONE = 42
T = 5

abstract = sys.argv[3]
specs = {
    "tcp4": (socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0)),
    "tcp6": (socket.AF_INET6, socket.SOCK_STREAM, ("::1", 0)),
    "udp4": (socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0)),
    "unix-path": (socket.AF_UNIX, socket.SOCK_STREAM, os.path.abspath("serve.sock")),
    "unix-abstract": (socket.AF_UNIX, socket.SOCK_STREAM, "\0" + abstract),
}
servers = {}
where = {}
for kind, (fam, typ, addr) in specs.items():
    s = socket.socket(fam, typ)
    s.bind(addr)
    if typ == socket.SOCK_STREAM:
        s.listen(8)
    servers[s] = kind
    if fam == socket.AF_UNIX:
        where[kind] = addr if addr[0] != "\0" else "@" + abstract
    else:
        where[kind] = s.getsockname()[1]
ports, stop = sys.argv[1], sys.argv[2]
with open(ports + ".tmp", "w") as f:
    json.dump(where, f)
os.rename(ports + ".tmp", ports)

received = dict.fromkeys(specs, 0)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    # STOP is looked at before the select, so whatever a client queued before
    # STOP was made is still drained: a control's connect returns once the
    # kernel queued it, not once this loop accepted it.
    stopping = os.path.exists(stop)
    ready, _, _ = select.select(list(servers), [], [], 0 if stopping else 0.05)
    if stopping and not ready:
        break
    for s in ready:
        kind = servers[s]
        received[kind] += 1
        if s.type == socket.SOCK_DGRAM:
            s.recvfrom(1024)
            continue
        conn, _ = s.accept()
        with conn:
            conn.settimeout(T)
            try:
                conn.sendall(b"echo:" + conn.recv(1024))
            except OSError as e:
                print(f"{kind} client: {e}", flush=True)
print("received: " + json.dumps(received), flush=True)
sys.exit(DONE)
