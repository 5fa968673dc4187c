"""Where the supervisor's notify thread spends its CPU on a trapped open.

    python benchmarks/profile_notify.py [--opens N]

Runs a program that opens one file N times under a sandbox session in this
process (the built-in policy, full audit to a scratch file, pinned to one
CPU) with the notify thread's CPU time (time.thread_time_ns) taken around
each stage of its work, and prints microseconds per notification for each.
The timers cost something themselves, so the total is higher than in
benchmarks/run.py's notifications/s: compare the stages with each other.
The numbers are CPU, not wall: NOTIF_ADDFD's wait for the program to take
the fd is not in them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agentsh_ipy import supervisor as sup  # noqa: E402
from agentsh_ipy._linux import files, procfs, seccomp  # noqa: E402
from agentsh_ipy.supervisor import _decoder, _fast, _notify, _treeaudit  # noqa: E402

PROGRAM = """\
import os, sys
for _ in range(int(sys.argv[1])):
    os.close(os.open(sys.argv[2], os.O_RDONLY))
"""

# (stage, owner, attribute): the notify thread's time inside owner.attribute.
STAGES: list[tuple[str, Any, str]] = [
    ("NOTIF_RECV", seccomp, "notif_recv"),
    ("NOTIF_ID_VALID", seccomp, "notif_id_valid"),
    ("decode: read the path (process_vm_readv)", procfs.MemoryReader, "read_cstring"),
    ("decode: resolve symlinks as the program sees them", procfs, "resolve"),
    # (in C unless AGENTSH_IPY_FAST=0: the header says which)
    ("decide: the file rules", _fast.FileDecider, "check_file"),
    ("decode: all of it (the three above included)", _decoder.Decoder, "decode"),
    ("answer: openat2 of the decided path", files, "openat2"),
    ("answer: NOTIF_ADDFD (CPU only)", seccomp, "notif_addfd"),
    ("answer: NOTIF_SEND", seccomp, "notif_send"),
    ("answer: all of it (the three above included)", _notify.NotifyLoop, "_emulate_open"),
    ("audit: build, serialize, write the event", _treeaudit.TreeAudit, "_on_request"),
]
NESTED = {
    "decode: all of it (the three above included)": [
        "decode: read the path (process_vm_readv)",
        "decode: resolve symlinks as the program sees them",
        "decide: the file rules",
    ],
    "answer: all of it (the three above included)": [
        "answer: openat2 of the decided path",
        "answer: NOTIF_ADDFD (CPU only)",
        "answer: NOTIF_SEND",
    ],
}


def timed(stage: str, fn: Callable[..., Any], spent: Counter[str]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name != "agentsh-notify":
            return fn(*args, **kwargs)
        t = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[stage] += time.thread_time_ns() - t

    return wrapper


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--opens", type=int, default=20000)
    args = p.parse_args()
    spent: Counter[str] = Counter()
    for stage, owner, attr in STAGES:
        setattr(owner, attr, timed(stage, getattr(owner, attr), spent))
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as scratch:
        target = os.path.join(scratch, "file")
        Path(target).write_text("x")
        audit = os.path.join(scratch, "audit.jsonl")
        session = sup.new_session_id()
        policy = sup.load_policy(None, scratch, protect=(audit,))
        log = sup.open_audit(audit, session)
        argv = [sys.executable, "-c", PROGRAM, str(args.opens), target]
        result = sup.run(policy, log, argv, workspace=scratch)
        log.close()
        if result.status != 0:
            print(f"the program failed ({result.status}): {result.error}", file=sys.stderr)
            return 1
        with open(audit) as f:
            end = [e for e in map(json.loads, f) if e.get("op") == "end"][-1]
    n, cpu = end["stats"]["notifications"], end["stats"]["notify_cpu_s"] * 1e9
    per = {stage: spent[stage] / n / 1000 for stage, _, _ in STAGES}
    for outer, inner in NESTED.items():
        per[outer.split(":")[0] + ": the rest"] = per.pop(outer) - sum(per[s] for s in inner)
    per["the loop: the rest (poll, dispatch, timers)"] = cpu / n / 1000 - sum(per.values())
    width = max(map(len, per))
    print(f"{n} notifications, notify thread CPU {cpu / n / 1000:.1f} us each (timers included)")
    print(f"fast path (file rules in C): {_fast.status()}")
    for stage, us in per.items():
        print(f"  {stage:{width}}  {us:6.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
