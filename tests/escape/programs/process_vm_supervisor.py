"""Threat: read or write the supervisor's memory directly with
process_vm_readv / process_vm_writev (no ptrace attach needed).  The
address is the start of the supervisor's [stack] mapping (its environment
lives at the top of that mapping; the bottom page is unused, so the write
cannot corrupt anything even where it is wrongly allowed).

Usage: process_vm_supervisor.py readv|writev   (x86_64 syscall numbers)
Prints "supervisor=PID", "readv: ..." or "writev: ...", "probe: ERRNO".
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42
SYS_PROCESS_VM_READV = 310
SYS_PROCESS_VM_WRITEV = 311

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


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
