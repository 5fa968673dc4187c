"""Threat: run a program the policy denies (/usr/bin/id) through the
dynamic loader used as a launcher: the exec names ld.so, and /usr/bin/id is
only an argument, behind ld.so's options or under a copy of ld.so.

Usage: exec_ldso.py plain|options|relative|loader-copy   (cwd: the workspace)
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import exec_in_child

DONE = 42


def loader():
    """The PT_INTERP of /usr/bin/id: the loader that would run it anyway."""
    with open("/usr/bin/id", "rb") as f:
        head = f.read(4096)
    m = re.search(rb"(/[\w/.-]*/ld[\w.-]*\.so[\w.]*)\0", head)
    if not m:
        print("skip: no dynamic loader named in /usr/bin/id")
        sys.exit(77)
    return os.fsdecode(m.group(1))


variant = sys.argv[1]
ldso = loader()
cwd = None
if variant == "plain":
    argv = [ldso, "/usr/bin/id"]
elif variant == "options":
    argv = [ldso, "--inhibit-cache", "--library-path", "/nonexistent", "--argv0", "harmless",
            "/usr/bin/id"]  # fmt: skip
elif variant == "relative":
    argv, cwd = [ldso, "./id"], "/usr/bin"
else:  # a renamed copy of the loader
    shutil.copyfile(ldso, "helper")
    os.chmod("helper", 0o755)
    ldso = os.path.abspath("helper")
    argv = [ldso, "/usr/bin/id"]


def run():
    if cwd:
        os.chdir(cwd)
    os.execv(ldso, argv)


exec_in_child(run)
sys.exit(DONE)
