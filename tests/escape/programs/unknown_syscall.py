"""Threat: a syscall the sandbox has no entry for (one newer than its
table, or a number Linux has not assigned yet) must not simply run: it is
refused (ENOSYS, as for a call the kernel lacks: libc falls back) and
audited (issue 17: an allowlist, not a denylist).

Usage: unknown_syscall.py NR...   (x86_64 numbers)
Prints "nrNR: ok ..." or "nrNR: ERRNO" for each.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42

x86_64_only()
for arg in sys.argv[1:]:
    report(f"nr{arg}", lambda nr=int(arg): raw_syscall(nr, 0, 0, 0, 0, 0, 0))
sys.exit(DONE)
