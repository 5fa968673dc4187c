"""Threat: run a program the policy denies by name through the multi-call
binary it is a link to, choosing the behaviour with argv[0]: /usr/bin/unxz
is a link to xz, and xz started as "unxz" decompresses.

Usage: exec_argv0.py   (cwd: the workspace)
The child prints "exec: ERRNO" when the exec fails; unxz leaves "data".
"""

import errno
import lzma
import os
import sys

DONE = 42

if not os.path.exists("/usr/bin/xz"):
    print("skip: no /usr/bin/xz")
    sys.exit(77)
with open("data.xz", "wb") as f:
    f.write(lzma.compress(b"decompressed by a denied name\n"))
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    try:
        os.execv("/usr/bin/xz", ["unxz", "data.xz"])
    except OSError as e:
        os.write(1, f"exec: {errno.errorcode.get(e.errno, e.errno)}\n".encode())
    os._exit(1)
_, status = os.waitpid(pid, 0)
print(f"child: {os.waitstatus_to_exitcode(status)}")
print("data: " + ("present" if os.path.exists("data") else "absent"))
sys.exit(DONE)
