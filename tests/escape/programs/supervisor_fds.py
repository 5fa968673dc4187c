"""Threat: reach the supervisor's open files through /proc/PID/fd/N and
write to them: the audit log (forge or bury events) and the pipes that
drive its threads.  Every fd above 2 is opened for writing and, where that
works, a forged audit line is written.

Prints "supervisor=PID", "list: ...", one "wrote N: TARGET" per fd written,
"written: COUNT" and "probe: ERRNO".
"""

import errno
import os
import sys

DONE = 42
FORGED = b'{"type":"sandbox","op":"end","exit_code":0,"forged":"FORGED-BY-SANDBOX"}\n'


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


sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
listed = report("list", lambda: sorted(int(n) for n in os.listdir(f"/proc/{sup}/fd")))
written = 0
for n in listed or range(3, 64):
    if n <= 2:
        continue
    path = f"/proc/{sup}/fd/{n}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    except OSError:
        continue
    try:
        os.write(fd, FORGED)
        written += 1
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        print(f"wrote {n}: {target}", flush=True)
    except OSError:
        pass
    finally:
        os.close(fd)
print(f"written: {written}", flush=True)
report("probe", probe)
sys.exit(DONE)
