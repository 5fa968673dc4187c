"""The process tree, followed with ptrace event stops only.

Every ptrace request must come from the thread that attached, and that
thread's ``waitpid(-1, __WALL)`` must be the only wait on the traced
children: the session runs the launch and this loop on one dedicated thread,
in a process where nothing else waits.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .._linux import procfs, ptracer

_GROUP_STOP_SIGNALS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}


class SeccompHandler(Protocol):
    def stopped(self, tid: int) -> None: ...
    def pending(self) -> bool: ...
    def apply_answers(self) -> None: ...


@dataclass
class Proc:
    pid: int
    ppid: int
    started: float
    argv: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


class ProcessTable:
    """tid -> process, shared with the notify thread (which reads only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.procs: dict[int, Proc] = {}
        self.tgid: dict[int, int] = {}
        self.tracer_tid = 0  # the thread that attached; set by Tracer.attach
        self._pending: list[float] = []  # forks allowed but not seen yet

    def inside(self, pid: int) -> bool:
        """Is pid a process of the sandboxed tree? The table knows every
        process the tracer has seen; TracerPid covers one not seen yet; a
        zombie (untraced once it exited) is inside when its parent is."""
        with self._lock:
            if pid in self.procs or pid in self.tgid:
                return True
        try:
            if self.tracer_tid != 0 and procfs.tracer_of(pid) == self.tracer_tid:
                return True
            _, ppid = procfs.tgid_ppid(pid)
        except OSError:
            return False
        with self._lock:
            return ppid in self.procs

    def members(self) -> list[int]:
        with self._lock:
            return list(self.procs)

    def kill_all(self) -> None:
        """SIGKILL every process of the tree; the tracer collects the exits."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def reserve_process(self, limit: int | None) -> bool:
        """Count a fork the notify path is about to allow; False at the limit.
        A reservation lapses after 2 s in case the fork failed in the kernel."""
        now = time.monotonic()
        with self._lock:
            self._pending = [t for t in self._pending if now - t < 2.0]
            if limit is not None and len(self.procs) + len(self._pending) >= limit:
                return False
            self._pending.append(now)
            return True

    def tgid_ppid(self, tid: int) -> tuple[int, int]:
        with self._lock:
            pid = self.tgid.get(tid)
            if pid is not None and pid in self.procs:
                return pid, self.procs[pid].ppid
        return procfs.tgid_ppid(tid)  # a task the tracer has not seen yet

    def add_process(self, pid: int, ppid: int, argv: list[str]) -> Proc:
        p = Proc(pid, ppid, time.monotonic(), argv, {pid})
        with self._lock:
            if self._pending:
                self._pending.pop(0)
            self.procs[pid] = p
            self.tgid[pid] = pid
        return p

    def add_thread(self, pid: int, tid: int) -> None:
        with self._lock:
            self.procs[pid].threads.add(tid)
            self.tgid[tid] = pid

    def drop_tid(self, tid: int) -> Proc | None:
        """Forget a task; returns its process when the task was the leader."""
        with self._lock:
            pid = self.tgid.pop(tid, None)
            if pid is None:
                return None
            p = self.procs.get(pid)
            if p is not None:
                p.threads.discard(tid)
            if tid == pid:
                return self.procs.pop(pid, None)
            return None

    def live_tids(self) -> list[int]:
        with self._lock:
            return list(self.tgid)


class Tracer:
    """Follows a seized root and its descendants until all of them are gone."""

    def __init__(
        self,
        table: ProcessTable,
        emit: Callable[..., object],
        on_seccomp: SeccompHandler | None = None,
        on_exec: Callable[[int, list[str]], bool] | None = None,
    ) -> None:
        self.table = table
        self.emit = emit
        self.root = -1
        self.root_status: int | None = None
        # ptrace mode: SECCOMP_RET_TRACE stops are decided here, on the tracer
        # thread, since only it may touch the tracees' registers.
        self.on_seccomp = on_seccomp
        # Checked again at the exec event, on what the kernel actually loaded.
        self.on_exec = on_exec
        # Stops collected while the decider held a process still; replayed
        # in order before the next wait.
        self.deferred: collections.deque[tuple[int, int]] = collections.deque()
        # A SIGSYS stop: the filter's refusals (SECCOMP_RET_TRAP) are answered
        # there, in both modes (_sigsys.py). True: it answered and resumed.
        self.on_sigsys: Callable[[int], bool] | None = None

    def attach(self, pid: int, ppid: int, argv: list[str]) -> None:
        options = ptracer.SEIZE_OPTIONS
        if self.on_seccomp is not None:
            options |= ptracer.O_TRACESECCOMP | ptracer.O_TRACESYSGOOD
        ptracer.seize(pid, options)
        self.table.tracer_tid = threading.get_native_id()
        self.root = pid
        self.table.add_process(pid, ppid, argv)
        self.emit("process_start", pid=pid, ppid=ppid, argv=argv)

    def _new_task(self, tid: int, parent: int | None) -> None:
        """A task we have not seen: a process or a thread of one."""
        if tid in self.table.tgid:
            return
        try:
            tgid, ppid = procfs.tgid_ppid(tid)
        except OSError:
            return
        if tgid != tid and tgid in self.table.procs:
            self.table.add_thread(tgid, tid)
            return
        self.table.add_process(tid, ppid, _cmdline(tid))
        self.emit("process_start", pid=tid, ppid=ppid, argv=self.table.procs[tid].argv)

    def _exited(self, tid: int, status: int) -> None:
        proc = self.table.drop_tid(tid)
        if tid == self.root:
            self.root_status = status
        if proc is None:
            return
        fields: dict[str, object] = {
            "pid": proc.pid,
            "ppid": proc.ppid,
            "duration": round(time.monotonic() - proc.started, 6),
        }
        if os.WIFSIGNALED(status):
            fields["signal"] = os.WTERMSIG(status)
        else:
            fields["exit_code"] = os.WEXITSTATUS(status)
        self.emit("process_exit", **fields)

    def _stopped(self, tid: int, status: int) -> None:
        sig = os.WSTOPSIG(status)
        event = ptracer.event_of(status)
        if tid not in self.table.tgid:
            self._new_task(tid, None)
        if event in (ptracer.EVENT_FORK, ptracer.EVENT_VFORK, ptracer.EVENT_CLONE):
            with contextlib.suppress(OSError):
                self._new_task(ptracer.geteventmsg(tid), tid)
            ptracer.cont(tid)
        elif event == ptracer.EVENT_EXEC:
            self._exec(tid)
            if self.on_exec is not None and not self.on_exec(tid, self.table.procs[tid].argv):
                # The new image has not run an instruction yet: end it here.
                os.kill(tid, signal.SIGKILL)
            ptracer.cont(tid)
        elif event == ptracer.EVENT_SECCOMP and self.on_seccomp is not None:
            self.on_seccomp.stopped(tid)  # it resumes the task, now or later
        elif event == ptracer.EVENT_STOP:
            # With SEIZE a group stop is an EVENT_STOP with a stop signal: keep
            # it stopped (job control) with LISTEN. Anything else (a new
            # child's first stop, an interrupt) just continues.
            if sig in _GROUP_STOP_SIGNALS:
                ptracer.listen(tid)
            else:
                ptracer.cont(tid)
        elif event != 0 or sig == ptracer.SYSCALL_STOP:  # EXIT, VFORK_DONE
            ptracer.cont(tid)
        elif sig == signal.SIGSYS and self.on_sigsys is not None and self.on_sigsys(tid):
            return
        else:
            ptracer.cont(tid, sig)  # signal-delivery stop: deliver it

    def _exec(self, pid: int) -> None:
        # A non-leader thread that execs takes over the leader's pid; its
        # sibling threads are gone without an exit report.
        with self.table._lock:
            p = self.table.procs.get(pid)
            if p is not None:
                for t in list(p.threads):
                    if t != pid:
                        p.threads.discard(t)
                        self.table.tgid.pop(t, None)
                p.argv = _cmdline(pid)
        if p is None:  # an exec from a task we had not registered
            self._new_task(pid, None)

    def loop(self) -> int:
        """Wait until the root exits; returns its wait status."""
        while self.root_status is None:
            self.step()
        assert self.root_status is not None
        return self.root_status

    def step(self) -> bool:
        """One wait. False once there is nothing left to wait for."""
        if self.deferred:
            tid, status = self.deferred.popleft()
            self.handle(tid, status)
            return True
        try:
            if self.on_seccomp is not None and self.on_seccomp.pending():
                # A task waits for a person: poll, so its answer is applied
                # here (on the tracer thread) as soon as it comes.
                self.on_seccomp.apply_answers()
                tid, status = os.waitpid(-1, ptracer.WALL | os.WNOHANG)
                if tid == 0:
                    time.sleep(0.002)
                    return True
            else:
                tid, status = os.waitpid(-1, ptracer.WALL)
        except ChildProcessError:
            # ECHILD: nothing traced is left to wait for. Tasks we still list
            # were reaped without a report; say so rather than invent a status.
            for tid in self.table.live_tids():
                proc = self.table.drop_tid(tid)
                if proc is not None:
                    self.emit(
                        "process_exit", pid=proc.pid, ppid=proc.ppid, reason="exit not observed"
                    )
            if self.root_status is None:
                raise RuntimeError("lost the command's exit status (ECHILD)") from None
            return False
        self.handle(tid, status)
        return True

    def handle(self, tid: int, status: int) -> None:
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self._exited(tid, status)
        elif os.WIFSTOPPED(status):
            self._stopped(tid, status)

    def hold_siblings(self, tid: int) -> list[int]:
        """Stop every other task that shares tid's memory (ptrace mode,
        around a call the kernel will re-read): the threads of its process
        and of any process sharing its memory (clone(CLONE_VM), a vfork
        child); their stops are kept for replay. Returns the threads now held."""
        pid = self.table.tgid.get(tid, tid)
        proc = self.table.procs.get(pid)
        siblings = [t for t in (proc.threads if proc else ()) if t != tid]
        for other in list(self.table.procs.values()):
            if other.pid != pid and _may_share_vm(pid, other.pid):
                siblings += other.threads
        held = [t for t in siblings if ptracer.interrupt(t)]
        waiting = set(held)
        deadline = time.monotonic() + 0.1
        while waiting and time.monotonic() < deadline:
            for t in list(waiting):
                got, status = os.waitpid(t, ptracer.WALL | os.WNOHANG)
                if got:
                    self.deferred.append((t, status))
                    waiting.discard(t)
            if waiting:
                time.sleep(0.0002)
        # A thread that reports nothing was already in a stop we consumed
        # (one waiting for an approval, say): it is held all the same.
        return held

    def finish_syscall(self, tid: int, grace: float = 0.2) -> None:
        """Run tid's current syscall to its exit stop (bounded: a call that
        blocks, a FIFO open say, has resolved its path by then), then let
        it go on."""
        if not ptracer.syscall(tid):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            got, status = os.waitpid(tid, ptracer.WALL | os.WNOHANG)
            if got == 0:
                time.sleep(0.0005)
                continue
            if os.WIFSTOPPED(status) and os.WSTOPSIG(status) == ptracer.SYSCALL_STOP:
                ptracer.cont(tid)
            else:
                self.deferred.append((tid, status))
            return

    def kill_rest(self) -> None:
        """After the root exits nothing may run on unsupervised: kill what
        remains of the tree and collect its exits."""
        for tid in self.table.live_tids():
            try:
                os.kill(tid, signal.SIGKILL)
            except OSError as e:
                if e.errno != errno.ESRCH:
                    raise
        while self.table.live_tids():
            if not self.step():
                break


def _may_share_vm(pid: int, other: int) -> bool:
    """kcmp's answer; where the host refuses kcmp, every other process is
    held (slower, never a silently weaker hold)."""
    try:
        return ptracer.same_vm(pid, other)
    except OSError:
        return True
