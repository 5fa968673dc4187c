"""A sandbox session: one command, its process tree, its policy and its audit.

Threads: the caller's thread waits (and so stays free for signals); one
"agentsh-trace" thread starts the command (a fork running the wrapper's
steps), runs the handshake, attaches and then is the only thread that
waits on the children; one "agentsh-notify" thread answers the seccomp
listener; approvals and connects get threads of their own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import audit as aud
from .. import policy as pol
from .._linux import arch as arch_mod
from .._linux import caps, procfs, ptracer, seccomp
from .._linux.tty import Foreground
from . import _cache, _fast, _landlock, _mechanism
from ._approval import Approver, NoApprover, ask_async
from ._decoder import Decoder
from ._hosts import HostServices
from ._launch import EXIT_SETUP, Launch, LaunchError, Timeouts
from ._notify import NotifyLoop
from ._proxy import Proxy
from ._ptrace_mode import PtraceDecider
from ._redirect import Redirector
from ._request import Request
from ._sigsys import TrappedRefusals
from ._terminals import OWN_TERMINAL_RULE
from ._tracer import Tracer
from ._trash import Trash
from ._treeaudit import TreeAudit


@dataclass
class Result:
    """How the command ended. ``error`` is a one-line reason when the
    sandbox itself failed or refused (then ``status`` is 125/126/127)."""

    status: int
    error: str | None = None
    hidden_env: list[str] = field(default_factory=list)
    # The host refused a seccomp listener: nothing ran, ptrace mode may.
    notify_unavailable: bool = False


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def own_terminals(fds: Sequence[int] = (0, 1, 2)) -> list[str]:
    """The device paths of the terminals among ``fds`` (sorted, unique)."""
    out: set[str] = set()
    for fd in fds:
        try:
            if os.isatty(fd):
                out.add(os.ttyname(fd))
        except OSError:
            continue
    return sorted(p for p in out if p.startswith("/dev/"))


class Session(TreeAudit):
    def __init__(
        self,
        policy: pol.Policy,
        log: aud.AuditLog,
        *,
        timeouts: Timeouts | None = None,
        approver: Approver | None = None,
        wrapper_cmd: Sequence[str] | None = None,
        new_process_group: bool = True,
        workspace: str | None = None,
        mode: str = "notify",
        signal_group: bool = False,
        weaker: Sequence[str] = (),
        mechanism: Mapping[str, str] | None = None,
    ) -> None:
        # The terminal the command is started on: it inherits it as
        # stdin/stdout/stderr, so opening it by name gives nothing new (the
        # built-in policy denies every other /dev/pts/N, rule devices-private).
        policy = policy.allow_first(
            OWN_TERMINAL_RULE,
            own_terminals(),
            ("read", "write", "create"),
            "the terminal the sandbox was started on",
        )
        super().__init__(policy, log)
        self.timeouts = timeouts or Timeouts()
        self.approver = approver or NoApprover()
        self.wrapper_cmd = wrapper_cmd
        self.new_process_group = new_process_group
        self.trash = Trash(workspace) if workspace else None
        self.redirector = Redirector()
        if mode not in ("notify", "ptrace"):
            raise ValueError(f"mode {mode!r} is not notify or ptrace")
        self.mode = mode
        # The weaker guarantees accepted for this host (_mechanism.WEAKER):
        # named in the start event, and only then used.
        self.weaker = list(weaker)
        # How notify mode does its opens and socket calls on this host
        # (_mechanism.choose): the full mechanism, or a stand-in for a
        # facility the host refuses. Named in the start event.
        self.mechanism = {**_mechanism.FULL_MECHANISM, **(mechanism or {})}
        # Forward signals to the sandbox's whole process group (a kernel: an
        # interrupt reaches the cell's children too, as without the sandbox).
        self.signal_group = signal_group and new_process_group
        self._loop: NotifyLoop | None = None
        self._decider: PtraceDecider | None = None
        self.arch = arch_mod.current()
        self.root_pid = -1
        # Set once the launch is over: the command was let go, or it failed.
        self.launched = threading.Event()
        self._result: Result | None = None
        self._killed_for: str | None = None
        self._foreground: Foreground | None = None
        self._crash: BaseException | None = None
        self.proxy: Proxy | None = None

    def _approve(self, req: Request, done: Any) -> None:
        target = req.fields.get("argv") or req.fields.get("path") or req.fields.get("addr")
        question = f"{req.kind} {req.op} {target} (pid {req.pid}, rule {req.decision.rule})"
        ask_async(_AtTheTerminal(self.approver, self), question, self.policy.approval_timeout, done)

    # -- running ------------------------------------------------------------
    def run(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> Result:
        """Run argv sandboxed and wait for it. Never runs it unsandboxed."""
        if not argv:
            raise ValueError("empty command")
        caps.lower_effective()  # before the threads that act for the sandbox
        kept, hidden = self.policy.filter_env(os.environ if env is None else env)
        cache = _cache.cache_home()
        _cache.ensure(cache)
        kept.update(_cache.cache_env(cache))
        if self.policy.has_domains:  # names are decided by the proxy (_proxy)
            self.proxy = Proxy(self.policy, self._emit, HostServices(self.table.members),
                               ask=_AtTheTerminal(self.approver, self).ask)  # fmt: skip
            kept.update(self.proxy.env())
        self._emit(
            "sandbox",
            op="start",
            argv=list(argv),
            policy=self.policy.name,
            policy_source=self.policy.source,
            mode=self.mode,
            fast_path=_fast.status(),  # the file rules in C, or why not
            weaker=self.weaker or None,
            mechanism=self.mechanism if self.mode == "notify" else None,
            hidden_env=hidden,
            cache_home=cache,
            capabilities=caps.kept() or None,  # root's, the rest dropped
            proxy=None if self.proxy is None else self.proxy.url,
        )
        self._emit_unprotected()
        if hidden:
            self._emit(
                "sandbox", op="env", decision="deny", rule="env_policy", hidden_env=hidden,
                message="hidden from the sandboxed environment",
            )  # fmt: skip
        t = threading.Thread(
            target=self._trace_thread,
            args=(list(argv), kept, cwd),
            name="agentsh-trace",
            daemon=True,
        )
        if self.proxy is not None:
            self.proxy.start()
        t.start()
        forward = self._forward_signals()
        wall = self.policy.limits.wall_clock
        deadline = time.monotonic() + wall if wall else None
        try:
            while t.is_alive():
                t.join(0.1)
                if deadline is not None and time.monotonic() > deadline and t.is_alive():
                    deadline = None
                    self._wall_clock_exceeded(wall or 0)
        finally:
            for sig, old in forward.items():
                signal.signal(sig, old)
            if self.proxy is not None:
                self.proxy.close()
        if self._crash is not None:
            self._emit("sandbox", op="error", reason=f"supervisor failure: {self._crash!r}")
            raise self._crash
        self.redirector.cleanup()
        assert self._result is not None
        self._result.hidden_env = hidden
        if self._killed_for is not None and self._result.error is None:
            self._result.error = self._killed_for
        self._flush_suppressed()
        self._emit(
            "sandbox",
            op="end",
            exit_code=self._result.status,
            **({"reason": self._result.error} if self._result.error else {}),
            stats=self._stats(),
        )
        return self._result

    def _stats(self) -> dict[str, Any]:
        """What the supervisor spent: the notify thread's calls and CPU time
        (its throughput on one core) and the process's peak RSS (VmHWM: the
        rusage maximum would include whatever ran in this pid before exec)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        loop = self._loop
        try:
            peak: int | None = int(procfs.status(os.getpid())["VmHWM"].split()[0])
        except (OSError, KeyError, ValueError):
            peak = None
        return {
            "notifications": loop.handled if loop is not None else 0,
            **({"traced": self._decider.handled} if self._decider is not None else {}),
            "notify_cpu_s": round(loop.cpu, 6) if loop is not None else 0.0,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 6),
            "peak_rss_kb": peak,
        }

    def sync(self, timeout: float = 1.0) -> None:
        """Wait until the events of every call answered so far are emitted
        (notify mode; ptrace mode audits on the tracer thread as it goes)."""
        loop = self._loop
        if loop is not None and loop.is_alive():
            loop.sync(timeout)

    def _wall_clock_exceeded(self, seconds: float) -> None:
        reason = f"wall-clock limit of {seconds:g}s reached: the command was killed"
        self._emit("sandbox", op="limit", decision="deny", rule="limits.wall_clock",
                   message=reason)  # fmt: skip
        self.stop(reason)

    def stop(self, reason: str) -> None:
        """Kill the whole tree, or end a launch before its GO; the run's
        error is ``reason``. The tracer collects the exits as usual."""
        self._killed_for = reason
        self.table.kill_all()

    def _forward_signals(self) -> dict[int, Any]:
        """SIGTERM, SIGHUP, SIGINT and SIGQUIT sent to the supervisor go to
        the command (the terminal's own ^C reaches the command's process
        group directly, since it is the foreground). SIGTTOU is ignored so the
        supervisor can take the terminal back from the background."""
        old: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return old

        def forward(sig: int, _frame: Any) -> None:
            if self.root_pid > 0:
                with contextlib.suppress(ProcessLookupError):
                    if self.signal_group:
                        os.killpg(self.root_pid, sig)
                    else:
                        os.kill(self.root_pid, sig)

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
            old[sig] = signal.signal(sig, forward)
        old[signal.SIGTTOU] = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        return old

    def _trace_thread(self, argv: list[str], env: dict[str, str], cwd: str | None) -> None:
        try:
            self._result = self._launch_and_trace(argv, env, cwd)
        except BaseException as e:
            self._crash = e
        finally:
            self.launched.set()

    def _launch_and_trace(self, argv: list[str], env: dict[str, str], cwd: str | None) -> Result:
        nr = self.arch.nr("seccomp")
        assert nr is not None
        ptrace_mode = self.mode == "ptrace"
        if ptrace_mode and not ptracer.ptrace_mode_supported():
            return Result(EXIT_SETUP, f"ptrace mode is not supported on {self.arch.name}")
        decide = seccomp.RET_TRACE if ptrace_mode else seccomp.RET_USER_NOTIF
        # Without pidfd_getfd the socket calls are traced, in notify mode too.
        held = not ptrace_mode and self.mechanism["sockets"] == "ptrace-held"
        overrides = dict.fromkeys(_TRACED_SOCKET_CALLS, seccomp.RET_TRACE) if held else None
        if held and not ptracer.ptrace_mode_supported():
            return Result(EXIT_SETUP, f"tracing socket calls is not supported on {self.arch.name}")
        try:  # Landlock ruleset (None: the host has none; the audit says so)
            ruleset = _landlock.prepare(self.policy, self._emit, one_domain=True)
        except LaunchError as e:
            return Result(e.code, e.reason)
        launch = Launch(
            argv,
            env,
            cwd,
            seccomp.build_filter(self.arch, decide=decide, overrides=overrides),
            nr,
            self.timeouts,
            self.wrapper_cmd,
            self.new_process_group,
            landlock_fd=ruleset,
            mode=self.mode,
            memory_limit=self.policy.limits.memory,
        )
        self.root_pid = launch.pid
        foreground = self._foreground = Foreground()
        if self.new_process_group:
            foreground.give(launch.pid)  # its group (pgid == pid) gets the terminal
        decoder = Decoder(self.policy, self.arch, self.table, self.trash, self.redirector)
        decoder.emulate_net = not ptrace_mode
        decoder.proxy = self.proxy
        decider = None
        if ptrace_mode:
            decider = PtraceDecider(decoder, self.arch, self._on_request, self._approve)
        elif held:
            # The traced calls' own decoder: the tracer thread reads through
            # a RecordingReader of its own, and nothing is emulated on a copy.
            traced = Decoder(self.policy, self.arch, self.table, self.trash, self.redirector)
            traced.proxy = self.proxy
            decider = PtraceDecider(traced, self.arch, self._on_request, self._approve)
        self._decider = decider
        tracer = Tracer(self.table, self._emit, on_seccomp=decider, on_exec=self._check_exec)
        tracer.on_sigsys = TrappedRefusals(decoder, self.arch, self._on_request)
        if decider is not None:
            decider.tracer = tracer
        loop: NotifyLoop | None = None
        try:
            try:
                listener = launch.receive_listener()
                if not ptrace_mode:
                    loop = NotifyLoop(listener, decoder, self.arch, self._on_request, self._approve)
                    loop.emulate_opens = "opens-continue" not in self.weaker
                    loop.private_umask = self.mechanism["opens"] == "private-umask"
                    self._loop = loop
                launch.probe_memory()
                if loop is not None:
                    loop.start()
                    unfit = loop.wait_setup(self.timeouts.handoff)
                    if unfit is not None:  # before the command runs: fail closed
                        raise LaunchError(unfit)
                launch.ack()
                launch.wait_ready()
                try:
                    tracer.attach(launch.pid, os.getpid(), argv)
                except OSError as e:
                    # Gone between READY and the attach: its own status is the answer.
                    status = launch.reap_if_dead()
                    if status is not None:
                        return Result(exit_status(status))
                    raise LaunchError(
                        f"cannot attach to the sandboxed process: {e.strerror}"
                    ) from e
                if self._killed_for is not None:  # stopped during the launch
                    raise LaunchError(self._killed_for)
                launch.go()
                self.launched.set()
            except (LaunchError, OSError) as e:
                if tracer.root < 0:
                    launch.abort()
                else:
                    tracer.kill_rest()
                if isinstance(e, LaunchError):
                    return Result(e.code, e.reason, notify_unavailable=e.notify_unavailable)
                return Result(EXIT_SETUP, f"sandbox setup failed: {e}")
            status = tracer.loop()
            tracer.kill_rest()
            code = exit_status(status)
            failed = launch.exec_failure()
            if failed is not None:
                if loop is not None:
                    # A denial's event is recorded after its answer: wait for
                    # the loop to be past it before reading it back.
                    loop.sync(5.0)
                return Result(code, self._exec_message(argv[0], failed))
            return Result(code)
        finally:
            foreground.take_back()
            foreground.close()
            if loop is not None:
                if loop.is_alive():
                    loop.stop()
                    loop.join()
                loop.drain(5.0)
                loop.close()
                if loop.error is not None:
                    raise loop.error
            launch.close()

    def _exec_message(self, cmd: str, err: int) -> str:
        denial = self._exec_denied.get(self.root_pid)
        if err == errno.EACCES and denial is not None:
            return f"{cmd}: execution denied by policy (rule {denial.decision.rule})"
        return f"{cmd}: cannot execute: {os.strerror(err)}"


# What notify mode traces instead where the host refuses pidfd_getfd: the
# calls it would otherwise make itself on a copy of the caller's socket.
_TRACED_SOCKET_CALLS = ("connect", "bind", "sendto", "sendmsg", "sendmmsg")


class _AtTheTerminal:
    """An approver that takes the terminal's foreground back from the sandbox
    while it asks (a background group reading the terminal would be stopped),
    and gives it back after, as sudo does."""

    _lock = threading.Lock()

    def __init__(self, approver: Approver, session: Session) -> None:
        self.approver = approver
        self.session = session

    def ask(self, question: str, timeout: float) -> tuple[bool, str]:
        fg = self.session._foreground
        with self._lock:
            if fg is not None and self.session.new_process_group:
                fg.take_back()
            try:
                return self.approver.ask(question, timeout)
            finally:
                if fg is not None and self.session.new_process_group:
                    fg.give(self.session.root_pid)
