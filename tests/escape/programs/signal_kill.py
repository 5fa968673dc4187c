"""Threat: kill a process outside the sandbox, the supervisor above all
(a dead supervisor stops deciding), by every way a signal can be sent:
kill, tkill, tgkill, pidfd_send_signal, rt_sigqueueinfo, and kill of the
process group the target leads (kill(-PID)).  The signal is SIGKILL.

Usage: signal_kill.py supervisor|PID kill|tkill|tgkill|pidfd|sigqueue|pgrp
  supervisor  the nearest ancestor whose command line names agentsh_ipy.cli
              (else the parent)
Prints "target=PID", "signal: RESULT" and, for the supervisor, "probe:
ERRNO" (an open of ~/.ssh/id_rsa, which a live supervisor denies).  (x86_64 syscall numbers)
"""

import ctypes
import errno
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, raw_syscall, report, x86_64_only

DONE = 42
SYS_KILL = 62
SYS_RT_SIGQUEUEINFO = 129
SYS_TKILL = 200
SYS_TGKILL = 234
SYS_PIDFD_SEND_SIGNAL = 424
SYS_PIDFD_OPEN = 434
SI_QUEUE = -1


def sigqueue(pid, sig):
    info = (ctypes.c_int * 32)()  # siginfo_t, 128 bytes
    info[0], info[1], info[2] = sig, 0, SI_QUEUE  # si_signo, si_errno, si_code
    info[4], info[5] = os.getpid(), os.getuid()  # si_pid, si_uid
    return raw_syscall(SYS_RT_SIGQUEUEINFO, pid, sig, ctypes.pointer(info))


def pidfd_kill(pid, sig):
    try:
        pidfd = raw_syscall(SYS_PIDFD_OPEN, pid, 0)
    except OSError as e:
        print(f"pidfd_open: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        pidfd = -1  # still try the send: the filter's answer must show
    return raw_syscall(SYS_PIDFD_SEND_SIGNAL, pidfd, sig, 0, 0)


x86_64_only()
who, how = sys.argv[1], sys.argv[2]
target = find_supervisor() if who == "supervisor" else int(who)
print(f"target={target}", flush=True)
sig = signal.SIGKILL
send = {
    "kill": lambda: raw_syscall(SYS_KILL, target, sig),
    "tkill": lambda: raw_syscall(SYS_TKILL, target, sig),
    "tgkill": lambda: raw_syscall(SYS_TGKILL, target, target, sig),
    "pidfd": lambda: pidfd_kill(target, sig),
    "sigqueue": lambda: sigqueue(target, sig),
    "pgrp": lambda: raw_syscall(SYS_KILL, -target, sig),
}[how]
if how == "pgrp":
    # Only a group the target leads, so the group is named by the target's
    # own pid (never kill(-1), never some unrelated group).
    if os.getpgid(target) != target or target <= 1:
        sys.exit(f"refusing: {target} does not lead its process group")
    # Leave the target's group first (the sandboxed command starts in the
    # supervisor's), so that what comes back is the sandbox's answer, not
    # our own death.
    report("setpgid", lambda: os.setpgid(0, 0))
report("signal", send)
if who == "supervisor":
    report("probe", probe)
sys.exit(DONE)
