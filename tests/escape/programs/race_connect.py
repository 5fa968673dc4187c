"""Threat: a connect whose address a second thread flips between the
sandbox's own server (allowed) and an outside listener (denied), hoping the
kernel reads the outside address after the supervisor decided on its own.

Usage: race_connect.py OUTSIDE_PORT ROUNDS [ENOUGH]
Stops after ROUNDS connects, or once ENOUGH of them reached the outside port.
Prints "own: N", "outside: N" (connects that reached each) and "refused: N".
"""

import ctypes
import errno
import socket
import struct
import sys
import threading

DONE = 42
libc = ctypes.CDLL(None, use_errno=True)


def sockaddr(port):
    head = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
    return head + socket.inet_aton("127.0.0.1") + b"\0" * 8


outside_port, rounds = int(sys.argv[1]), int(sys.argv[2])
enough = int(sys.argv[3]) if len(sys.argv) > 3 else rounds + 1
own = socket.socket()
own.bind(("127.0.0.1", 0))
own.listen(64)
own.setblocking(False)
mine, theirs = sockaddr(own.getsockname()[1]), sockaddr(outside_port)
buf = ctypes.create_string_buffer(mine, 16)
stop = threading.Event()


def flip():
    # ctypes releases the GIL, so this runs while connect waits on the supervisor
    while not stop.is_set():
        ctypes.memmove(buf, theirs, 16)
        ctypes.memmove(buf, mine, 16)


flipper = threading.Thread(target=flip, daemon=True)
flipper.start()
counts = {"own": 0, "outside": 0, "refused": 0}
for _ in range(rounds):
    if counts["outside"] >= enough:
        break
    with socket.socket() as s:
        if libc.connect(s.fileno(), buf, 16) == 0:
            port = s.getpeername()[1]
            counts["outside" if port == outside_port else "own"] += 1
        elif ctypes.get_errno() in (errno.ECONNREFUSED, errno.EACCES, errno.EPERM):
            counts["refused"] += 1
        else:
            sys.exit(f"connect: {errno.errorcode.get(ctypes.get_errno())}")
    while True:
        try:
            own.accept()[0].close()
        except BlockingIOError:
            break
stop.set()
flipper.join()
for k, v in counts.items():
    print(f"{k}: {v}", flush=True)
sys.exit(DONE)
