"""Nothing of a sandbox outlives `agentsh-ipy exec` (issue 17 item 4).

For the length of a test the pytest worker is a child subreaper, so any
process orphaned under it (a sandboxed daemon that escaped the supervisor's
kill) is reparented to the worker instead of to init and stays visible. At
the end, the worker's descendants that did not exist at the start are the
survivors: each is named (pid, command line), killed by pid and reaped.
Under xdist each worker is its own process and looks only at its own tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterator

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
_libc = ctypes.CDLL(None, use_errno=True)


def _stat(pid: int) -> tuple[int, str] | None:
    """(ppid, state) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[1]), rest[0]


def descendants(root: int) -> dict[int, str]:
    """Every live (not zombie) process below ``root``, with its state."""
    ppid: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                ppid[int(entry)] = st
    out: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (pp, state) in ppid.items():
            if pp == parent and pid not in out:
                out[pid] = state
                frontier.append(pid)
    return {pid: state for pid, state in out.items() if state not in ("Z", "X")}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _reap_orphans() -> None:
    """Collect the zombies reparented to this process (never a child a
    Popen of the test still owns: those exist before and are excluded)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] == me and st[1] == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(entry), os.WNOHANG)


class Watch:
    def __init__(self) -> None:
        self.before = set(descendants(os.getpid()))

    def survivors(self, grace: float = 2.0) -> dict[int, str]:
        """New live descendants; a process already dying (killed by the
        supervisor an instant ago) gets ``grace`` seconds to be gone."""
        deadline = time.monotonic() + grace
        while True:
            _reap_orphans()
            left = {p: _cmdline(p) for p in descendants(os.getpid()) if p not in self.before}
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def check(self, fail: bool = True) -> None:
        """Fail naming every survivor (when ``fail``); kill and reap them anyway."""
        left = self.survivors()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p in left for p in descendants(os.getpid())):
            _reap_orphans()
            time.sleep(0.02)
        _reap_orphans()
        if left and fail:
            named = ", ".join(f"{pid} ({cmd})" for pid, cmd in sorted(left.items()))
            raise AssertionError(f"processes outlived the run: {named}")


@contextlib.contextmanager
def watched() -> Iterator[Watch]:
    """This process a child subreaper meanwhile (restored after)."""
    was = ctypes.c_int(0)
    _libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0)
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield Watch()
    finally:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, was.value, 0, 0, 0)
