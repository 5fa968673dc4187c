"""Run one sandboxed command with a deterministic "racing thread": right after
the supervisor decides a trapped call, and before the kernel could read the
arguments again, the call's argument in the tracee's memory is overwritten
with another value (what a racing thread would do, without the luck).

Usage: run_swapped.py KIND FROM TO WORKSPACE POLICY -- CMD...
  KIND connect: the sockaddr of a connect to FROM (an allowed port) becomes TO
  KIND open:    the path of an open of FROM becomes TO (same length or shorter)
Prints the result as JSON on the last line.
"""

import json
import socket
import struct
import sys
import time

from agentsh_ipy import audit as aud
from agentsh_ipy import supervisor as sup
from agentsh_ipy._linux import procfs
from agentsh_ipy.supervisor import _decoder as _notify


def main() -> None:
    kind, src, dst, workspace, policy_path, _, *cmd = sys.argv[1:]
    policy = sup.load_policy(policy_path, workspace)
    log = aud.AuditLog(None, "swap", time.time)
    events: list[dict[str, object]] = []
    log.subscribe(events.append)
    swapped = []
    if kind == "connect":

        def sockaddr(port: str) -> bytes:
            head = struct.pack("=H", socket.AF_INET) + struct.pack("!H", int(port))
            return head + socket.inet_aton("127.0.0.1")

        real = _notify.Decoder._h_connect

        def hooked(self, name, pid, tid, a):  # type: ignore[no-untyped-def]
            req = real(self, name, pid, tid, a)
            if req is not None and req.fields.get("port") == int(src):
                procfs.write_memory(tid, a[1], sockaddr(dst))
                swapped.append(name)
            return req

        _notify.Decoder._h_connect = hooked  # type: ignore[method-assign]
    else:
        real_open = _notify.Decoder._h_openat

        def hooked_open(self, name, pid, tid, a):  # type: ignore[no-untyped-def]
            req = real_open(self, name, pid, tid, a)
            if req.fields.get("path") == src:
                procfs.write_memory(tid, a[1], dst.encode() + b"\0")
                swapped.append(name)
            return req

        _notify.Decoder._h_openat = hooked_open  # type: ignore[method-assign]
    result = sup.run(policy, log, cmd, mode="notify", workspace=workspace)
    print(json.dumps({"status": result.status, "swapped": len(swapped), "events": events}))


main()
