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
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, raw_syscall, report, x86_64_only

DONE = 42
SYS_PROCESS_VM_READV = 310
SYS_PROCESS_VM_WRITEV = 311


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
    return raw_syscall(nr, pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)


x86_64_only()
sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
addr = stack_start(sup)
nr = SYS_PROCESS_VM_READV if sys.argv[1] == "readv" else SYS_PROCESS_VM_WRITEV
report(sys.argv[1], lambda: vm(nr, sup, addr))
report("probe", probe)
sys.exit(DONE)
