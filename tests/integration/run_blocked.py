"""Run a command under a seccomp filter refusing what Docker's default
profile refuses a container without CAP_SYS_ADMIN/CAP_SYS_PTRACE, with
EPERM: ``python run_blocked.py CALLS -- CMD...``, CALLS a comma list of
``unshare_fs`` (unshare with CLONE_FS), ``unshare_new`` (unshare with any
CLONE_NEW* flag) and syscall names refused whatever their arguments
(``pidfd_getfd``, ``mount``, ``open_by_handle_at``, ``process_vm_readv``,
...). no_new_privs, no capability needed: what an unprivileged container
engine does. Its filter is installed before the sandbox's, as an engine's."""

import ctypes
import errno
import os
import struct
import sys

from agentsh_ipy._linux import _syscall, arch

CLONE_FS = 0x200
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NEW_ANY = 0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
CLONE_NEW_ANY |= 0x40000000
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | errno.EPERM


def insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def main() -> int:
    calls, sep, *cmd = sys.argv[1:]
    assert sep == "--" and cmd, "usage: run_blocked.py CALLS -- CMD..."
    a = arch.current()
    prog = [insn(0x20, 0, 0, 4), insn(0x15, 1, 0, a.audit_arch), insn(0x06, 0, 0, RET_ALLOW)]
    prog.append(insn(0x20, 0, 0, 0))  # ld nr
    blocked = calls.split(",")
    unshare = a.nr("unshare")
    assert unshare is not None
    for name in blocked:
        flags = {"unshare_fs": CLONE_FS, "unshare_new": CLONE_NEW_ANY}.get(name)
        if flags is not None:
            prog += [
                insn(0x15, 0, 4, unshare),
                insn(0x20, 0, 0, 16),  # ld args[0] (low half)
                insn(0x45, 0, 1, flags),  # jset
                insn(0x06, 0, 0, RET_EPERM),
                insn(0x20, 0, 0, 0),  # ld nr again for the next test
            ]
            continue
        nr = a.nr(name)
        assert nr is not None, f"no syscall {name!r} here"
        prog += [insn(0x15, 0, 1, nr), insn(0x06, 0, 0, RET_EPERM)]
    prog.append(insn(0x06, 0, 0, RET_ALLOW))
    code = b"".join(prog)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = ctypes.create_string_buffer(struct.pack("@HP", len(prog), ctypes.addressof(buf)))
    _syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)
    nr = a.nr("seccomp")
    assert nr is not None
    _syscall.syscall(nr, 1, 0, ctypes.c_void_p(ctypes.addressof(fprog)), what="seccomp")
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
