"""ctypes access to libc, with one checked helper for every raw call."""

from __future__ import annotations

import ctypes
import os

# The C library already loaded into this process (find_library would run
# ldconfig in a subprocess at every start-up).
libc = ctypes.CDLL(None, use_errno=True)

_syscall = libc.syscall
_syscall.restype = ctypes.c_long
raw = _syscall  # syscall(2) itself, for a hot path that checks its own result

_prctl = libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def check(result: int, what: str) -> int:
    """Raise OSError for a -1 result, reading errno only then."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def syscall(nr: int, *args: int | ctypes.c_void_p | ctypes.Array[ctypes.c_char], what: str) -> int:
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return check(_syscall(ctypes.c_long(nr), *cargs), what)


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    return check(_prctl(option, a2, a3, a4, a5), f"prctl({option})")


PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PTRACER = 0x59616D61
