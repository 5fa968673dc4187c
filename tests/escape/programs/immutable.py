"""Threat: make a file immutable with `chattr +i` (CAP_LINUX_IMMUTABLE):
a file nobody, root included, can then change or remove until `chattr -i`.
When it works (without the sandbox) the program undoes it, so the scratch
area can be removed.

Usage: immutable.py PATH
Prints "chattr: ok" or "chattr: failed STATUS MESSAGE".
"""

import subprocess
import sys

DONE = 42

p = subprocess.run(["chattr", "+i", sys.argv[1]], capture_output=True, text=True)
if p.returncode == 0:
    print("chattr: ok", flush=True)
    subprocess.run(["chattr", "-i", sys.argv[1]], check=True)
else:
    print(f"chattr: failed {p.returncode} {p.stderr.strip()}", flush=True)
sys.exit(DONE)
