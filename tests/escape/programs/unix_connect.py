"""Threat: talk to a unix socket the policy denies (an agent, a container
engine) by a name the rule does not spell: directly, through a symlink
planted in the workspace, through /proc/self/root, or relative to a cwd.

Usage: unix_connect.py direct|symlink|proc-root|relative DENIED ALLOWED
Prints "allowed: ..." (the control, a socket no rule names) and "denied: ...".
(cwd: the workspace)
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        return "connected"


variant, denied, allowed = sys.argv[1], sys.argv[2], sys.argv[3]
report("allowed", lambda: connect(allowed))
if variant == "direct":
    report("denied", lambda: connect(denied))
elif variant == "symlink":
    os.symlink(denied, "agent-link")
    report("denied", lambda: connect(os.path.abspath("agent-link")))
elif variant == "proc-root":
    report("denied", lambda: connect("/proc/self/root" + denied))
else:
    os.chdir(os.path.dirname(denied))
    report("denied", lambda: connect(os.path.basename(denied)))
sys.exit(DONE)
