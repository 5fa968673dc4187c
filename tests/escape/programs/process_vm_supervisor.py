"""Threat: read or write the supervisor's memory directly with
process_vm_readv / process_vm_writev (no ptrace attach needed).  The
address is the start of the supervisor's [stack] mapping (its environment
lives at the top of that mapping; the bottom page is unused, so the write
cannot corrupt anything even where it is wrongly allowed).

Usage: process_vm_supervisor.py readv|writev   (x86_64 syscall numbers)
Prints "supervisor=PID", "readv: ..." or "writev: ...", "probe: ERRNO".
"""

import ctypes
import errno
import os
import platform
import sys

DONE = 42
SYS_PROCESS_VM_READV = 310
SYS_PROCESS_VM_WRITEV = 311

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


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


def stack_start(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if line.rstrip().endswith("[stack]"):
                    return int(line.split("-", 1)[0], 16)
    except OSError:
        pass
    return 0x7FFF00000000  # unknown: a plausible stack address


def vm(nr, pid, addr):
    buf = ctypes.create_string_buffer(8)
    local = Iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
    remote = Iovec(addr, 8)
    n = libc.syscall(
        ctypes.c_long(nr),
        ctypes.c_long(pid),
        ctypes.byref(local),
        ctypes.c_long(1),
        ctypes.byref(remote),
        ctypes.c_long(1),
        ctypes.c_long(0),
    )
    if n < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return n


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
addr = stack_start(sup)
nr = SYS_PROCESS_VM_READV if sys.argv[1] == "readv" else SYS_PROCESS_VM_WRITEV
report(sys.argv[1], lambda: vm(nr, sup, addr))
report("probe", probe)
sys.exit(DONE)
