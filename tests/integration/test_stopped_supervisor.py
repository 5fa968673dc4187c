"""A supervisor stopped and continued while it answers (job control, the
cgroup freezer, a suspend, a debugger attaching) must still give every
trapped open its own file, and audit it.

The supervisor opens an allowed file itself and injects the fd (NOTIF_ADDFD),
waiting until the trapped task has taken it. A stop interrupts that wait.
With ADDFD_FLAG_SEND the kernel then withdrew the fd but kept the answer, so
the task's open() returned 0 (its stdin) and no event was written; this test
caught that about once in 30 stops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import Area, linux_only, read_audit, sandbox_env

pytestmark = [linux_only, pytest.mark.slow]

ROUNDS = 3000

TRACEE = """
import json, os, sys
paths = sys.argv[1:]
want = {p: os.stat(p).st_ino for p in paths}
bad, opens = [], 0
for _ in range(int(os.environ["ROUNDS"])):
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError as e:
            bad.append(f"open {p}: {e}")
            continue
        opens += 1
        try:
            if os.fstat(fd).st_ino != want[p]:
                bad.append(f"open {p} gave fd {fd}, another file")
        except OSError as e:
            bad.append(f"open {p} gave fd {fd}: {e}")
        try:
            os.close(fd)
        except OSError:
            pass
print(json.dumps({"opens": opens, "bad": len(bad), "first": bad[:3]}))
"""


def test_opens_stay_right_while_the_supervisor_is_stopped_and_continued(area: Area) -> None:
    files = [area.write(f"ws/f{i}.txt", f"file {i}\n") for i in range(3)]
    argv = [
        sys.executable, "-m", "agentsh_ipy.cli", "exec",
        "--workspace", str(area.ws), "--audit", str(area.audit), "--",
        sys.executable, "-c", TRACEE, *map(str, files),
    ]  # fmt: skip
    env = {**sandbox_env(area), "ROUNDS": str(ROUNDS)}
    p = subprocess.Popen(
        area.user.cmd(argv),
        cwd=area.ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    # setpriv execs the CLI, so p.pid is the supervisor itself.
    stops = 0
    deadline = time.monotonic() + 120
    try:
        while p.poll() is None and time.monotonic() < deadline:
            try:
                os.kill(p.pid, signal.SIGSTOP)
                time.sleep(0.0005)
                os.kill(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                break
            stops += 1
            time.sleep(0.002)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert stops >= 100, f"only {stops} stops landed while it ran"
    assert result["bad"] == 0, result["first"]
    assert result["opens"] == ROUNDS * len(files)
    # Nothing lost: every open has its allowed read in the audit.
    events = read_audit(area.audit)
    for f in files:
        reads = [
            e
            for e in events
            if e["type"] == "file" and e.get("path") == str(f) and e.get("op") == "read"
        ]
        assert len(reads) == ROUNDS, (f, len(reads))
        assert all(e["decision"] == "allow" for e in reads)
