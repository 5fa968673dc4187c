"""What several hostile programs share: reporting a step's outcome, finding
the supervisor (only from inside a sandbox), the probe that must keep
failing, raw syscalls and O_PATH fds. Imported from the programs' own
folder (they run with python -I)."""

import ctypes
import errno
import os
import platform
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def raw_syscall(nr, *args):
    """syscall(2): ints go as longs, other ctypes values (buffers, pointers)
    as they are; -1 raises OSError with the call's errno."""
    values = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    r = _libc.syscall(ctypes.c_long(nr), *values)
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def x86_64_only():
    """The programs that name syscall numbers are written for x86_64."""
    if platform.machine() != "x86_64":
        print("skip: x86_64 syscall numbers")
        sys.exit(77)


def path_fd(path, directory=True):
    """An O_PATH fd (it reads nothing, so a sandbox may let it pass); where
    O_PATH itself fails, a plain read-only fd, so the next step still runs."""
    extra = os.O_DIRECTORY if directory else 0
    try:
        return os.open(path, os.O_PATH | extra)
    except OSError as e:
        print(f"o_path {path}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        return os.open(path, os.O_RDONLY | extra)


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


def exec_in_child(do_exec):
    """Run ``do_exec`` (an exec) in a forked child: the child prints
    "exec: ERRNO" when it fails; the parent prints "child: STATUS"."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            do_exec()
        except OSError as e:
            os.write(1, f"exec: {errno.errorcode.get(e.errno, e.errno)}\n".encode())
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    print(f"child: {os.waitstatus_to_exitcode(status)}")
