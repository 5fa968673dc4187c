"""Threat: run a program the policy denies by copying its binary into the
workspace and executing the copy, under the same name or a new one.

Usage: exec_copy.py NAME [MODE]   (cwd: the workspace)
MODE (octal, default 755): 111 makes an execute-only copy, which its owner
cannot read but the kernel still runs.
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import errno
import os
import shutil
import sys

DONE = 42

name = os.path.abspath(sys.argv[1])
shutil.copyfile("/usr/bin/id", name)
os.chmod(name, int(sys.argv[2], 8) if len(sys.argv) > 2 else 0o755)
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    try:
        os.execv(name, [os.path.basename(name)])
    except OSError as e:
        os.write(1, f"exec: {errno.errorcode.get(e.errno, e.errno)}\n".encode())
    os._exit(1)
_, status = os.waitpid(pid, 0)
print(f"child: {os.waitstatus_to_exitcode(status)}")
sys.exit(DONE)
