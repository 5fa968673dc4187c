"""Threat: reach ~/.ssh/id_rsa with a path that starts in the workspace and
climbs out with "..", so that a lexical clean-up of the path
(os.path.normpath) and the kernel's walk disagree.

Usage: read_dotdot.py plain|symlink-hop|proc-cwd|relative
  plain        WS/../home/.ssh/id_rsa (lexical and physical agree)
  symlink-hop  WS/hop/../.ssh/id_rsa with WS/hop -> ~/docs: lexically that
               is WS/.ssh/id_rsa (inside the workspace), but the kernel
               takes ".." from ~/docs and lands in ~/.ssh
  proc-cwd     /proc/self/cwd/../home/.ssh/id_rsa: lexically
               /proc/self/home/..., physically the key
  relative     ../home/.ssh/id_rsa from the workspace
Run with the workspace as the current directory; HOME is a sibling of it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def read(path):
    with open(path) as f:
        return f.read()


ws = os.getcwd()
home = os.path.expanduser("~")
key = os.path.join(home, ".ssh", "id_rsa")
up = os.path.relpath(key, ws)  # ../home/.ssh/id_rsa
variant = sys.argv[1]
if variant == "plain":
    path = os.path.join(ws, up)
elif variant == "symlink-hop":
    report("symlink", lambda: os.symlink(os.path.join(home, "docs"), "hop"))
    path = os.path.join(ws, "hop", "..", ".ssh", "id_rsa")
elif variant == "proc-cwd":
    path = "/proc/self/cwd/" + up
else:
    path = up
print("path:", path, flush=True)
report("open", lambda: read(path))
sys.exit(DONE)
