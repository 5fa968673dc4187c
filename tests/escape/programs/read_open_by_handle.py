"""Threat: get a file handle for ~/.ssh/id_rsa with name_to_handle_at (a
metadata call) and open it with open_by_handle_at, which takes no path at
all.  Needs CAP_DAC_READ_SEARCH, so it works for root only.

(x86_64 syscall numbers.)
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
SYS_NAME_TO_HANDLE_AT = 303
SYS_OPEN_BY_HANDLE_AT = 304
AT_FDCWD = -100

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def check(r):
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
home = os.path.expanduser("~")
key = os.path.join(home, ".ssh", "id_rsa")
# struct file_handle { unsigned int handle_bytes; int handle_type; unsigned char f_handle[]; }
handle = ctypes.create_string_buffer(8 + 128)
ctypes.c_uint.from_buffer(handle).value = 128
mount_id = ctypes.c_int()


def name_to_handle():
    return check(
        libc.syscall(
            ctypes.c_long(SYS_NAME_TO_HANDLE_AT),
            ctypes.c_long(AT_FDCWD),
            ctypes.c_char_p(os.fsencode(key)),
            handle,
            ctypes.byref(mount_id),
            ctypes.c_long(0),
        )
    )


def open_by_handle():
    mount_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    fd = check(
        libc.syscall(
            ctypes.c_long(SYS_OPEN_BY_HANDLE_AT),
            ctypes.c_long(mount_fd),
            handle,
            ctypes.c_long(os.O_RDONLY),
        )
    )
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


report("name_to_handle_at", name_to_handle)
report("open_by_handle_at", open_by_handle)
sys.exit(DONE)
