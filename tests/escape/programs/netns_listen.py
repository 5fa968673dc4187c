"""Runs OUTSIDE the sandbox, as the first process of a network namespace the
test made (`unshare --net`, or `unshare -rn` when not root): gives lo the
address ADDR (not loopback, but this host's own), binds a TCP listener and
a UDP socket there, then runs local_connect.py against both twice: without
the sandbox (the control) and in it. Nothing leaves the namespace.

Usage: netns_listen.py CONFIG   (JSON: {"addr", "control": ARGV, "sandbox": ARGV,
                                 "cwd", "timeout"}; each ARGV gets the targets appended)
Prints one JSON object: the ports, each run's status and output, and what
each listener received after each run.
"""

import json
import socket
import subprocess
import sys

cfg = json.loads(sys.argv[1])
addr = cfg["addr"]
for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{addr}/32", "dev", "lo"]):
    subprocess.run(cmd, check=True, timeout=10, capture_output=True)

tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.bind((addr, 0))
tcp.listen(16)
tcp.setblocking(False)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((addr, 0))
udp.setblocking(False)
targets = [f"tcp=tcp/{addr}/{tcp.getsockname()[1]}", f"udp=udp/{addr}/{udp.getsockname()[1]}"]


def received():
    got = {"tcp": 0, "udp": 0}
    while True:
        try:
            tcp.accept()[0].close()
        except BlockingIOError:
            break
        got["tcp"] += 1
    while True:
        try:
            udp.recvfrom(1024)
        except BlockingIOError:
            break
        got["udp"] += 1
    return got


out = {"tcp_port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1]}
for name in ("control", "sandbox"):
    p = subprocess.run(
        cfg[name] + targets,
        cwd=cfg["cwd"],
        capture_output=True,
        text=True,
        timeout=cfg["timeout"],
        start_new_session=True,
    )
    out[name] = {"returncode": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    out[name]["received"] = received()
print(json.dumps(out))
