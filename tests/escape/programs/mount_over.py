"""Threat: mount a file system (here a tmpfs over a workspace directory) to
change what paths mean: with mount(2), and with the new mount API
(fsopen).  To stay harmless where it is wrongly allowed, it first moves to
a private mount namespace (as root, or in a new user namespace); if it
cannot, it mounts on a path that does not exist.

Prints "mount: ..." and "fsopen: ..." (EPERM when refused).  (cwd: the
workspace; x86_64 syscall numbers)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_MOUNT = 165
SYS_UMOUNT2 = 166
SYS_UNSHARE = 272
SYS_FSOPEN = 430
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 2


def mount_tmpfs(target):
    raw_syscall(SYS_MOUNT, b"tmpfs", os.fsencode(target), b"tmpfs", 0, b"size=1m")
    raw_syscall(SYS_UMOUNT2, os.fsencode(target), MNT_DETACH)
    return "mounted and unmounted"


x86_64_only()
# A new user namespace makes an unprivileged user root in it; root can do
# without one. Either way the mounts below stay in a private namespace.
private = (
    report("unshare-user-ns", lambda: raw_syscall(SYS_UNSHARE, CLONE_NEWUSER | CLONE_NEWNS))
    is not None
    or report("unshare-ns", lambda: raw_syscall(SYS_UNSHARE, CLONE_NEWNS)) is not None
)
if private:
    made = report(
        "make-private", lambda: raw_syscall(SYS_MOUNT, None, b"/", None, MS_REC | MS_PRIVATE, None)
    )
    private = made is not None
os.makedirs("mnt", exist_ok=True)
target = os.path.abspath("mnt") if private else "/nonexistent-agentsh-escape"
report("mount", lambda: mount_tmpfs(target))
report("fsopen", lambda: os.close(raw_syscall(SYS_FSOPEN, b"tmpfs", 0)))
sys.exit(DONE)
