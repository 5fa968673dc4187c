"""Threat: reach the supervisor's open files through /proc/PID/fd/N and
write to them: the audit log (forge or bury events) and the pipes that
drive its threads.  Every fd above 2 is opened for writing and, where that
works, a forged audit line is written.

Prints "supervisor=PID", "list: ...", one "wrote N: TARGET" per fd written,
"written: COUNT" and "probe: ERRNO".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42
FORGED = b'{"type":"sandbox","op":"end","exit_code":0,"forged":"FORGED-BY-SANDBOX"}\n'


sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
listed = report("list", lambda: sorted(int(n) for n in os.listdir(f"/proc/{sup}/fd")))
written = 0
for n in listed or range(3, 64):
    if n <= 2:
        continue
    path = f"/proc/{sup}/fd/{n}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    except OSError:
        continue
    try:
        os.write(fd, FORGED)
        written += 1
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        print(f"wrote {n}: {target}", flush=True)
    except OSError:
        pass
    finally:
        os.close(fd)
print(f"written: {written}", flush=True)
report("probe", probe)
sys.exit(DONE)
