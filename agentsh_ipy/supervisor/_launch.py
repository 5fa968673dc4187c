"""The supervisor side of the launch handshake (see _linux/wrapper.py).

Every wait is bounded by a timeout on a ``socket.socket`` object (which, unlike
``os.read`` on a raw fd, honours it) and the timeout is cleared before the
next phase sets its own, so no bound leaks into another wait.
"""

from __future__ import annotations

import array
import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._linux import procfs, wrapper

WRAPPER = os.path.realpath(wrapper.__file__)

EXIT_SETUP = 125


class LaunchError(Exception):
    """The sandbox could not be set up; the command did not run."""

    def __init__(
        self, reason: str, code: int = EXIT_SETUP, notify_unavailable: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.notify_unavailable = notify_unavailable  # ptrace mode may still work


@dataclass
class Timeouts:
    handoff: float = 10.0  # the listener fd
    ready: float = 30.0  # READY after ACK
    go: float = 30.0  # the wrapper's wait for GO


def _signals_to_reset() -> set[int]:
    """Dispositions Python changed at start-up (or we changed) that a command
    must get back as default, as subprocess does."""
    out: set[int] = {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTTOU}
    if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_DFL):
        out.add(signal.SIGINT)
    return out


class Handshake:
    """The supervisor's side of the protocol with one wrapper, on ``sock``:
    from the listener fd to GO. ``pid`` is the wrapper's."""

    def __init__(self, sock: socket.socket, pid: int, timeouts: Timeouts, mode: str) -> None:
        self.sock = sock
        self.pid = pid
        self.timeouts = timeouts
        self.mode = mode
        self.status: int | None = None

    def _recv(self, timeout: float, what: str) -> tuple[bytes, list[int]]:
        self.sock.settimeout(timeout)
        fds = array.array("i")
        try:
            msg, anc, _flags, _addr = self.sock.recvmsg(
                512, socket.CMSG_SPACE(16 * fds.itemsize), socket.MSG_CMSG_CLOEXEC
            )
        except TimeoutError:
            raise LaunchError(f"the sandbox wrapper sent no {what} within {timeout:g}s") from None
        finally:
            self.sock.settimeout(None)
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if msg[:1] in (b"E", b"N"):
            for fd in fds:
                os.close(fd)
            code = int(msg[1:4]) if msg[1:4].isdigit() else EXIT_SETUP
            raise LaunchError(msg[4:].decode(errors="replace"), code, msg.startswith(b"N"))
        if not msg:
            for fd in fds:
                os.close(fd)
            raise LaunchError(f"the sandbox wrapper exited before sending {what}")
        return msg, list(fds)

    def receive_listener(self) -> int:
        msg, fds = self._recv(self.timeouts.handoff, "seccomp listener fd")
        if self.mode == "ptrace":  # both sides agree: no fd in ptrace mode
            for fd in fds:
                os.close(fd)
            if msg != b"P":
                raise LaunchError(f"bad ptrace-mode handoff message from the wrapper: {msg[:8]!r}")
            return -1
        # Keep exactly one fd, and only a seccomp listener; close any surplus.
        listener = fds[0] if msg == b"F" and fds else -1
        for fd in fds[1:]:
            os.close(fd)
        if listener < 0:
            raise LaunchError(f"bad fd handoff message from the wrapper: {msg[:8]!r}")
        try:
            kind = os.readlink(f"/proc/self/fd/{listener}")
        except OSError:
            kind = "?"
        if "seccomp" not in kind:
            os.close(listener)
            raise LaunchError(f"the wrapper sent an fd that is not a seccomp listener ({kind})")
        return listener

    def close(self) -> None:
        self.sock.close()

    def probe_memory(self) -> None:
        """Notifications need the child's memory; check before serving them."""
        try:
            addr = procfs.first_readable_address(self.pid)
            procfs.MemoryReader().read_exact(self.pid, addr, 8)
        except OSError as e:
            raise LaunchError(f"cannot read the sandboxed process's memory: {e}") from None

    def ack(self) -> None:
        self.sock.send(b"A")

    def wait_ready(self) -> None:
        msg, fds = self._recv(self.timeouts.ready, "READY")
        for fd in fds:
            os.close(fd)
        if msg != b"R":
            raise LaunchError(f"bad READY message from the wrapper: {msg[:8]!r}")

    def go(self) -> None:
        # A wrapper that died after READY is not a setup failure: the tracer
        # reports its real status.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.send(b"G")

    def exec_failure(self) -> int | None:
        """After the command is gone: the errno of a failed exec, if any."""
        self.sock.setblocking(False)
        try:
            msg = self.sock.recv(64)
        except (BlockingIOError, OSError):
            return None
        if msg.startswith(b"X") and msg[1:].isdigit():
            return int(msg[1:])
        return None


class Launch(Handshake):
    """One sandboxed process, started by this process, from start to GO.

    By default this process forks and the child runs the wrapper's steps
    (:func:`wrapper.forked`): no second interpreter starts. ``wrapper_cmd``
    spawns that program as the wrapper instead (``python wrapper.py`` is
    the same steps; tests swap in faulty ones)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        filter_program: bytes,
        seccomp_nr: int,
        timeouts: Timeouts,
        wrapper_cmd: Sequence[str] | None = None,
        new_group: bool = False,
        landlock_fd: int | None = None,
        mode: str = "notify",
        memory_limit: int | None = None,
    ) -> None:
        """Start the child. ``landlock_fd``, a Landlock ruleset, is passed
        like the socket end and enforced by the wrapper before READY; this
        call owns it and closes it once the child has its copy."""
        try:
            self.sock, child = socket.socketpair(
                socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
            )
        except BaseException:
            if landlock_fd is not None:
                os.close(landlock_fd)
            raise
        opts = {
            "supervisor": str(os.getpid()),
            "handoff-timeout": repr(timeouts.handoff),
            "go-timeout": repr(timeouts.go),
            "filter": filter_program.hex(),
            "seccomp-nr": str(seccomp_nr),
        }
        if cwd is not None:
            opts["cwd"] = cwd
        opts["mode"] = mode
        if memory_limit is not None:
            opts["rlimit-as"] = str(memory_limit)
        inherit = [child.fileno()]
        if landlock_fd is not None:
            opts["landlock"] = str(landlock_fd)
            inherit.append(landlock_fd)
        try:
            if wrapper_cmd is None:
                pid = self._fork(child, opts, list(argv), env, new_group)
            else:
                # dup2(fd, fd) clears CLOEXEC in the child only: the fds it gets.
                opts["fd"] = str(child.fileno())
                args = [*wrapper_cmd, *(x for k, v in opts.items() for x in (f"--{k}", v)),
                        "--", *argv]  # fmt: skip
                pid = os.posix_spawn(
                    args[0],
                    args,
                    dict(env),
                    file_actions=[(os.POSIX_SPAWN_DUP2, fd, fd) for fd in inherit],
                    setsigdef=_signals_to_reset(),
                    setsigmask=set(),
                    **({"setpgroup": 0} if new_group else {}),  # type: ignore[arg-type]
                )
        finally:
            child.close()
            if landlock_fd is not None:
                os.close(landlock_fd)
        super().__init__(self.sock, pid, timeouts, mode)

    def _fork(
        self,
        child: socket.socket,
        opts: dict[str, str],
        argv: list[str],
        env: Mapping[str, str],
        new_group: bool,
    ) -> int:
        sigdef = _signals_to_reset()
        env = dict(env)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                # Its copy of our end would keep the channel open: a
                # supervisor that went away must show as EOF.
                self.sock.close()
            finally:
                wrapper.forked(child, opts, argv, env, sigdef, new_group)
        if new_group:
            # Also here, as shells do: the caller gives the group the
            # terminal next, which must not depend on the child's timing.
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
        return pid

    def reap_if_dead(self, grace: float = 0.5) -> int | None:
        """The wrapper's wait status if it exits within ``grace`` seconds.

        A task that is already exiting refuses PTRACE_SEIZE (EPERM or
        ESRCH); that is its own ending, not a setup failure."""
        deadline = time.monotonic() + grace
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.status = status
                return status
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def abort(self) -> int:
        """Kill the wrapper (it runs no command yet) and reap it."""
        if self.status is not None:
            return self.status
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        _, self.status = os.waitpid(self.pid, 0)
        return self.status
