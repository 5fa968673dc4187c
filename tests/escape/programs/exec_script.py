"""Threat: run a program the policy denies (/usr/bin/id) as a script's
interpreter: the exec names a harmless script, and the kernel runs the
interpreter its "#!" line names (directly, through a second script used as
an interpreter, or through a renamed copy of the denied program).

Usage: exec_script.py direct|nested|copy   (cwd: the workspace)
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import exec_in_child

DONE = 42


def script(name, line):
    with open(name, "w") as f:
        f.write(f"#!{line}\necho harmless\n")
    os.chmod(name, 0o755)
    return os.path.abspath(name)


variant = sys.argv[1]
if variant == "direct":
    target = script("harmless.sh", "/usr/bin/id")
elif variant == "nested":
    inner = script("inner.sh", "/usr/bin/id")
    target = script("harmless.sh", inner)
else:
    shutil.copyfile("/usr/bin/id", "innocent")
    os.chmod("innocent", 0o755)
    target = script("harmless.sh", os.path.abspath("innocent"))


def run():
    os.execv(target, [target])


exec_in_child(run)
sys.exit(DONE)
