"""What several hostile programs share: reporting a step's outcome, finding
the supervisor (only from inside a sandbox), and the probe that must keep
failing. Imported from the programs' own folder (they run with python -I)."""

import errno
import os
import sys


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
