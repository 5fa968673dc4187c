"""The front end's handle on a supervisor daemon (one per IPython session).

The IPython kernel cannot trace its own children: it calls ``Popen.wait`` on
them, and a tracer's ``waitpid`` must be the only one. So the tracer lives in a
daemon process of its own (``_daemon.py``), started on first use with the
original ``subprocess.Popen`` and stopped by :meth:`SandboxClient.close`.

A launch goes like this::

    wrapped = client.wrap(argv, executable=None, env=None, cwd=None,
                          cell=3, cell_id="ab12")
    # spawn wrapped.argv with wrapped.env yourself (Popen, os.system, ...):
    # the wrapper connects to the daemon, hands over its seccomp listener,
    # is attached by the daemon and execs the command, keeping its pid, so
    # the caller's wait, pipes and return code are the command's own.

Events come back to ``on_event`` (called on the client's reader thread) as
the daemon writes them to the JSONL audit log, each with ``cell``,
``cell_id`` and ``launch`` (the id ``wrap`` returned).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import audit as aud
from .. import policy as pol
from .._linux import wrapper
from . import _cache
from ._launch import WRAPPER, Timeouts

# Captured at import, before a front end replaces it with a hook: starting
# the daemon must never go through the sandbox it is.
_posix_spawn = os.posix_spawn

# (question, timeout) -> (granted, how it was decided: words for the audit)
AskFn = Callable[[str, float], tuple[bool, str]]

START_TIMEOUT = 60.0  # host probe, policy, Landlock ruleset
STOP_TIMEOUT = 10.0


class SupervisorError(Exception):
    """The daemon could not start, or is gone; nothing was run unsandboxed."""


@dataclass
class Wrapped:
    """How to start one sandboxed command: run ``argv`` (its ``argv[0]`` is
    an absolute path to the Python running the wrapper) with ``env``."""

    launch: str  # id of this launch, in every event it causes
    argv: list[str]
    env: dict[str, str]
    hidden_env: list[str]  # names env_policy removed
    # inline: run ``argv`` as ``file`` with ``preexec`` as Popen's preexec_fn
    # (the wrapper's steps in the forked child, no wrapper process)
    file: str | None = None
    preexec: Callable[[], None] | None = None


@dataclass
class _LaunchState:
    pid: int | None = None
    ended: bool = False
    forgotten: bool = False
    created: float = field(default_factory=time.monotonic)


def find_executable(name: str, env: Mapping[str, str], cwd: str | None) -> str:
    """What Popen would exec for ``name``, or the OSError Popen would raise
    (FileNotFoundError, PermissionError) - raised here, before anything runs."""
    if "/" in name:
        candidates = [name if os.path.isabs(name) or cwd is None else os.path.join(cwd, name)]
    else:
        candidates = [os.path.join(d, name) for d in os.get_exec_path(dict(env))]
    denied = False
    for cand in candidates:
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
        denied = denied or os.path.exists(cand)
    if denied and "/" in name:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


def _ignored_signals() -> str:
    """Which of the signals Python ignores at start-up this process ignores:
    os.system, posix_spawn and pexpect children inherit that, so the command
    behind the wrapper (a Python process too) gets the same."""
    sigs = (signal.SIGPIPE, signal.SIGXFSZ)
    return ",".join(str(int(s)) for s in sigs if signal.getsignal(s) == signal.SIG_IGN)


def _daemon_code() -> str:
    """Run with ``python -I``: the daemon imports what this process imports
    from, but never from the current directory (the sandbox's workspace,
    where a sandboxed process could plant a module)."""
    cwd = os.path.realpath(os.getcwd())
    here = str(Path(__file__).resolve().parent.parent.parent)
    paths = [here] + [
        p for p in sys.path if p and os.path.isabs(p) and os.path.realpath(p) != cwd and p != here
    ]
    return (
        f"import sys; sys.path[:0] = {paths!r}; "
        "from agentsh_ipy.supervisor._daemon import main; sys.exit(main())"
    )


class SandboxClient:
    """Start with :meth:`start`; see the module docstring."""

    def __init__(
        self,
        sock: socket.socket,
        pid: int,
        ready: dict[str, Any],
        on_event: Callable[[aud.Event], None],
        ask: AskFn | None,
        timeouts: Timeouts,
    ) -> None:
        self._sock = sock
        self.pid = pid
        self.session = str(ready["session"])
        self.audit_path = str(ready["audit_path"])
        self.policy_name = str(ready["policy_name"])
        self.policy_source = str(ready["policy_source"])
        self.landlock = bool(ready["landlock"])
        self._socket_path = str(ready["socket"])
        # the daemon's policy lets the sandbox write here (same environment)
        self._cache = _cache.cache_env(_cache.cache_home())
        _cache.ensure(_cache.cache_home())
        # the daemon's proxy, when the policy has rules by name
        self._proxy_env = {str(k): str(v) for k, v in (ready.get("proxy_env") or {}).items()}
        self._on_event = on_event
        self._ask = ask
        self._timeouts = timeouts
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0
        self._launches: dict[str, _LaunchState] = {}
        # env_policy's hidden names depend on the names alone: asked once per set.
        self._hidden: dict[frozenset[str], list[str]] = {}
        self._closed = False
        self._gone = False
        self._status: int | None = None
        self.callback_errors: list[BaseException] = []
        self._reader = threading.Thread(target=self._read, name="agentsh-client", daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        *,
        policy_path: str | None,
        workspace: str,
        audit_path: str,
        on_event: Callable[[aud.Event], None],
        ask: AskFn | None = None,
        timeouts: Timeouts | None = None,
        session: str | None = None,
        hide: Sequence[str] = (),
    ) -> SandboxClient:
        """Start the daemon and wait until it serves. ``hide``: files the
        sandbox may not even read (the kernel's connection file). Raises
        SupervisorError (policy errors as pol.PolicyError) naming the cause."""
        from . import new_session_id

        if not sys.platform.startswith("linux"):
            raise SupervisorError(f"sandboxing is unavailable on {sys.platform}: Linux only")
        timeouts = timeouts or Timeouts()
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        fd = theirs.fileno()
        argv = [sys.executable, "-I", "-c", _daemon_code(),
                "--ctl-fd", str(fd), "--parent", str(os.getpid())]  # fmt: skip
        try:
            pid = _posix_spawn(
                sys.executable,
                argv,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, fd)],
                setsid=True,  # the kernel's ^C (a signal to its group) is not for it
                setsigdef={signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ},
                setsigmask=set(),
            )
        except OSError as e:
            ours.close()
            raise SupervisorError(f"cannot start the supervisor: {e}") from None
        finally:
            theirs.close()
        config = {
            "policy_path": policy_path,
            "workspace": workspace,
            "audit_path": audit_path,
            "hide": [os.path.realpath(p) for p in hide],
            "session": session or new_session_id(),
            "timeouts": {"handoff": timeouts.handoff, "ready": timeouts.ready, "go": timeouts.go},
        }
        try:
            ours.sendall(json.dumps(config).encode())
            ours.settimeout(START_TIMEOUT)
            data = ours.recv(1 << 20)
            ours.settimeout(None)
            first = json.loads(data) if data else {}
        except (OSError, ValueError) as e:
            first = {"error": f"no answer from the supervisor ({e})"}
        if not first.get("ready"):
            ours.close()
            _reap(pid, STOP_TIMEOUT)
            problems = first.get("policy_errors")
            if problems:
                raise pol.PolicyError([(str(a), int(b), str(c)) for a, b, c in problems])
            raise SupervisorError(str(first.get("error") or "the supervisor exited at start-up"))
        first["audit_path"] = audit_path
        return cls(ours, pid, first, on_event, ask, timeouts)

    # -- the control channel ------------------------------------------------
    def _send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, separators=(",", ":")).encode()
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise SupervisorError(f"the supervisor is gone ({e.strerror})") from None

    def _read(self) -> None:
        try:
            while True:
                try:
                    data = self._sock.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                msg = json.loads(data)
                if "events" in msg:
                    for ev in msg["events"]:
                        self._event(ev)
                elif "ask" in msg:
                    threading.Thread(
                        target=self._answer, args=(msg,), name="agentsh-ask", daemon=True
                    ).start()
                elif "id" in msg:
                    with self._cond:
                        self._replies[int(msg["id"])] = msg
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._gone = True
                self._cond.notify_all()

    def _event(self, ev: aud.Event) -> None:
        launch = ev.get("launch")
        if isinstance(launch, str) and ev.get("type") == "sandbox":
            with self._cond:
                state = self._launches.setdefault(launch, _LaunchState())
                if ev.get("op") == "start" and isinstance(ev.get("pid"), int):
                    state.pid = ev["pid"]
                elif ev.get("op") == "end":
                    state.ended = True
                self._cond.notify_all()
        try:
            self._on_event(ev)
        except Exception as e:  # a front end's bug must not stop the audit stream
            self.callback_errors.append(e)

    def _answer(self, msg: dict[str, Any]) -> None:
        question, timeout = str(msg["question"]), float(msg["timeout"])
        if self._ask is None:
            granted, how = False, "denied: no approver available"
        else:
            try:
                granted, how = self._ask(question, timeout)
            except Exception as e:
                granted, how = False, f"denied: the approver failed ({e})"
        with contextlib.suppress(SupervisorError):
            self._send({"op": "answer", "ask": msg["ask"], "granted": granted, "how": how})

    # -- API -----------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return not (self._gone or self._closed)

    def wrap(
        self,
        argv: Sequence[str],
        *,
        executable: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        cell: int | None = None,
        cell_id: str | None = None,
        inline: bool = False,
    ) -> Wrapped:
        """Register a launch with the daemon. ``executable`` is the file to
        run (default: argv[0], searched in env's PATH by the wrapper). Raises
        FileNotFoundError/PermissionError as Popen would (nothing runs),
        SupervisorError when the daemon is gone. ``inline``: for Popen, the
        wrapper's steps as a preexec_fn instead of a wrapper process."""
        if not argv:
            raise ValueError("empty command")
        new_env = dict(os.environ if env is None else env)
        name = executable or argv[0]
        found = find_executable(name, new_env, cwd)
        # What Popen's child execs, after its chdir: a name with a slash as
        # given, else the PATH entry found (PATH is not searched after the filter).
        file = name if "/" in name else found
        if not self.alive:
            raise SupervisorError("the supervisor is gone: nothing is run unsandboxed")
        # The token the wrapper names itself with; registered before it can
        # connect (the caller forks after this returns), with no round trip
        # unless the hidden names of this environment are not known yet. (The
        # daemon works them out for every launch: its start event lists them.)
        launch = os.urandom(16).hex()
        msg = {"op": "wrap", "launch": launch, "argv": list(argv), "env_names": list(new_env),
               "cell": cell, "cell_id": cell_id}  # fmt: skip
        names = frozenset(new_env)
        hidden = self._hidden.get(names)
        if hidden is None:
            hidden = self._ask_hidden(msg)
            if len(self._hidden) >= 64:  # environments that keep changing: keep a few
                self._hidden.clear()
            self._hidden[names] = hidden
        else:
            self._send(msg)
        with self._cond:
            self._launches.setdefault(launch, _LaunchState())
        hidden = list(hidden)  # the caller's copy
        for name in hidden:
            new_env.pop(name, None)
        new_env.update(self._cache)
        new_env.update(self._proxy_env)
        if inline:
            steps = wrapper.preexec(self._socket_path, launch, self._timeouts.handoff)
            return Wrapped(launch, list(argv), new_env, hidden, file, steps)
        wargv = [sys.executable, "-I", "-S", WRAPPER, "--connect", self._socket_path,
                 "--token", launch, "--handoff-timeout", repr(self._timeouts.handoff),
                 "--sigign", _ignored_signals()]  # fmt: skip
        if executable is not None:
            wargv += ["--file", executable]
        return Wrapped(launch, [*wargv, "--", *argv], new_env, hidden)

    def _ask_hidden(self, msg: dict[str, Any]) -> list[str]:
        """Send the registration ``msg`` asking for the names env_policy
        hides of its ``env_names``; wait for the answer."""
        with self._cond:
            self._next_id += 1
            key = self._next_id
        self._send({**msg, "id": key})
        with self._cond:
            if not self._cond.wait_for(lambda: key in self._replies or self._gone, 30.0):
                raise SupervisorError("the supervisor did not answer a launch within 30s")
            if key not in self._replies:
                raise SupervisorError("the supervisor is gone: nothing is run unsandboxed")
            reply = self._replies.pop(key)
        return [str(n) for n in reply["hide"]]

    def forget(self, launch: str) -> None:
        """The caller could not start this launch: do not wait for it unless
        it reached the daemon (an inline launch whose exec was denied did).
        The daemon drops its registration if no wrapper claimed it."""
        with self._cond:
            self._launches.setdefault(launch, _LaunchState()).forgotten = True
            self._cond.notify_all()
        with contextlib.suppress(SupervisorError):  # a daemon that is gone holds nothing
            self._send({"op": "forget", "launch": launch})

    def settle(self, launches: Sequence[str], timeout: float = 5.0) -> list[str]:
        """Wait until every launch in ``launches`` whose command has ended has
        all its events delivered; returns the ids of those still running
        (their later events still arrive)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                waiting, running = [], []
                for launch in launches:
                    s = self._launches.get(launch)
                    if s is None or s.ended or (s.forgotten and s.pid is None):
                        continue
                    if s.pid is not None and _running(s.pid):
                        running.append(launch)
                    else:
                        waiting.append(launch)
                left = deadline - time.monotonic()
                if not waiting or self._gone or left <= 0:
                    return running + waiting
                self._cond.wait(min(left, 0.05))

    def close(self) -> None:
        """Stop the daemon: every sandboxed process still running is killed,
        the audit is flushed, no process is left. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(SupervisorError):
            self._send({"op": "stop"})
        self._status = _reap(self.pid, STOP_TIMEOUT)
        # The daemon is gone, so its end is closed: the reader delivers what
        # is still buffered (the last events) and stops at EOF.
        self._reader.join(STOP_TIMEOUT)
        self._sock.close()


def _running(pid: int) -> bool:
    """Is our child ``pid`` still running (not exited, reaped or not)?"""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False  # reaped already
    return info is None


def _reap(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            return status
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]
