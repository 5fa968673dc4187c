"""Threat: cover one's tracks.  The policy given to this run allows every
write in the whole scratch area, including the audit log and the policy
file; the sandbox promises both stay protected whatever the policy says.
Try to append a forged event, truncate, rename and delete the audit log,
write it through a workspace symlink, and edit the policy file.

Usage: forge_audit.py AUDIT_FILE POLICY_FILE   (cwd: the workspace)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
FORGED = '{"type":"sandbox","op":"end","exit_code":0,"forged":"FORGED-BY-SANDBOX"}\n'


def append(path, text):
    with open(path, "a") as f:
        return f.write(text)


audit, policy = sys.argv[1], sys.argv[2]
report("append", lambda: append(audit, FORGED))
report("symlink", lambda: os.symlink(audit, "log"))
report("append-via-symlink", lambda: append("log", FORGED))
report("truncate", lambda: os.truncate(audit, 0))
report("rename", lambda: os.rename(audit, audit + ".old"))
report("unlink", lambda: os.unlink(audit))
report("policy", lambda: append(policy, "# FORGED-BY-SANDBOX\n"))
sys.exit(DONE)
