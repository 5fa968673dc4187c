"""Threat: run a program the policy denies by copying its binary into the
workspace and executing the copy, under the same name or a new one.

Usage: exec_copy.py NAME [MODE]   (cwd: the workspace)
MODE (octal, default 755): 111 makes an execute-only copy, which its owner
cannot read but the kernel still runs.
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import exec_in_child

DONE = 42

name = os.path.abspath(sys.argv[1])
shutil.copyfile("/usr/bin/id", name)
os.chmod(name, int(sys.argv[2], 8) if len(sys.argv) > 2 else 0o755)


def run():
    os.execv(name, [os.path.basename(name)])


exec_in_child(run)
sys.exit(DONE)
