"""The supervisor daemon of one IPython session.

The kernel spawns sandboxed commands itself (so its ``Popen.wait``, pipes and
return codes stay natural) but cannot trace them: a tracer must be the only
waiter on its tracees. This process is that tracer. It is started by
``SandboxClient.start`` with a control socket (one SOCK_SEQPACKET end, JSON
per message) and a listening socket in a 0700 directory that the policy
protects; each wrapper connects there, names itself with a one-time launch
token the kernel registered, hands over its seccomp listener and is seized
(a same-uid process that named us with PR_SET_PTRACER; not our child).

Threads: the main thread is the only one that seizes and waits (SIGCHLD
wakes it through signal.set_wakeup_fd, other threads post seize requests
through a pipe); "agentsh-accept" takes connections and gives each
handshake to a worker thread (an idle one, else a new one); each launch has
its notify thread and a finisher thread (wall clock, its end event,
closing); "agentsh-ctl" reads the control socket; "agentsh-events" sends
audit events to the kernel.

Control messages, kernel -> daemon: the config (first message), then
``{"op": "wrap", "launch", "argv", "env_names", "cell", "cell_id"}``
registering a launch under a token the kernel chose (sent before it forks
the launch: the wrapper's hello may arrive before it is handled, and waits
for it), with
``"id"`` when the kernel wants the names env_policy hides (answered ``{"id",
"hide"}``; they depend on the names alone, so it asks once per set of
names), ``{"op": "forget", "launch"}`` (the kernel could not start
it), ``{"op": "answer", "ask", "granted", "how"}`` and
``{"op": "stop"}``. Daemon -> kernel: ``{"ready": ...}`` or ``{"error":
...}`` once, replies, ``{"events": [EVENT, ...]}`` for every audit event, in
order (those written while the previous message went out go together) and
``{"ask": K, "question", "timeout"}`` for approvals.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any

from .. import policy as pol
from .._linux import arch as arch_mod
from .._linux import caps, detect, procfs, ptracer, seccomp
from . import _cache, _landlock, _mechanism
from ._approval import Approver, ask_async
from ._decoder import Decoder
from ._hosts import HostServices
from ._launch import Handshake, LaunchError, Timeouts
from ._notify import NotifyLoop
from ._proxy import Proxy
from ._redirect import Redirector
from ._request import Request
from ._sigsys import TrappedRefusals
from ._tracer import Tracer
from ._trash import Trash
from ._treeaudit import TreeAudit
from ._workers import Workers

# A wrapper that registered but never connected is forgotten after this long.
PENDING_TTL = 600.0
# Audit events sent to the kernel in one control message: at most this many
# bytes of them (one larger event goes alone).
EVENTS_BYTES = 65536
# How long the events thread lets events gather after the first one, so a
# burst goes to the kernel in one message: one wake-up of the kernel's reader
# and one GIL hand-over here per message instead of per event (with the
# lines, an open loop in a %%agentsh cell went from 8,000 to 12,300 opens/s:
# docs/performance.md). The events reach the kernel this much later.
EVENTS_GATHER = 0.002
# A launch token: 128 random bits in hex, chosen by the kernel.
TOKEN = re.compile(r"[0-9a-f]{32}")
# A stop from a task no launch claims yet (a child whose parent's fork event
# is still to come) is kept this long, then let go.
PARK_TTL = 1.0


class Ctl:
    """The control socket; ``send`` may be called from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self.closed = False

    def send(self, msg: dict[str, Any]) -> None:
        self._send(json.dumps(msg, separators=(",", ":")).encode())

    def send_events(self, lines: list[str]) -> None:
        """The events (their JSON lines, as the log wrote them) in
        ``{"events": [...]}`` messages of at most EVENTS_BYTES each."""
        parts = [line.encode() for line in lines]
        while parts:
            n, size = 1, len(parts[0])
            while n < len(parts) and size + len(parts[n]) + 1 <= EVENTS_BYTES:
                size += len(parts[n]) + 1
                n += 1
            self._send(b'{"events":[' + b",".join(parts[:n]) + b"]}")
            del parts[:n]

    def _send(self, data: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def recv(self) -> dict[str, Any] | None:
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            return None
        if not data:
            return None
        msg = json.loads(data)
        if not isinstance(msg, dict):
            raise ValueError("a control message is not a JSON object")
        return msg


class CtlApprover:
    """Asks the person at the kernel's frontend, through the control socket."""

    def __init__(self, ctl: Ctl) -> None:
        self.ctl = ctl
        self._next = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}

    def ask(self, question: str, timeout: float) -> tuple[bool, str]:
        with self._lock:
            self._next += 1
            key = self._next
            done = threading.Event()
            box: list[Any] = []
            self._waiting[key] = (done, box)
        self.ctl.send({"ask": key, "question": question, "timeout": timeout})
        # The kernel side bounds the question by ``timeout``; a little more
        # here covers the round trip, and a dead kernel.
        answered = done.wait(timeout + 2.0)
        with self._lock:
            self._waiting.pop(key, None)
        if not answered or not box:
            return False, f"denied: no answer within {timeout:g}s"
        return bool(box[0]), str(box[1])

    def answer(self, key: int, granted: bool, how: str) -> None:
        with self._lock:
            waiting = self._waiting.get(key)
        if waiting is not None:
            waiting[1][:] = [granted, how]
            waiting[0].set()


class Tree(TreeAudit):
    """One launch: a wrapper, its command and every descendant. Built when
    the kernel registers the launch, so the handshake finds it ready."""

    def __init__(
        self, daemon: Daemon, launch: str, argv: list[str], tags: dict[str, Any], hidden: list[str]
    ) -> None:
        super().__init__(daemon.policy, daemon.log, **tags, launch=launch)
        self.daemon = daemon
        self.argv = argv
        self.hidden = hidden
        self.created = time.monotonic()
        self.tracer = Tracer(self.table, self._emit, on_exec=self._check_exec)
        # Every launch of this IPython session is one sandbox: a server one
        # cell started is the sandbox's own to the next.
        self.decoder = Decoder(
            daemon.policy, daemon.arch, self.table, daemon.trash, daemon.redirector,
            sandbox=daemon.members,
        )  # fmt: skip
        # Allowed connects, binds and sends are made by the supervisor on a
        # copy of the socket with the address it decided on: a thread of the
        # program cannot swap the address after the decision (notify mode,
        # the only one the daemon runs).
        self.decoder.emulate_net = True
        self.tracer.on_sigsys = TrappedRefusals(self.decoder, daemon.arch, self._on_request)
        self.decoder.proxy = daemon.proxy
        self.loop: NotifyLoop | None = None
        self.handshake: Handshake | None = None
        self.root_done = threading.Event()
        self.empty = threading.Event()
        self.root_status = 0

    def _approve(self, req: Request, done: Any) -> None:
        target = req.fields.get("argv") or req.fields.get("path") or req.fields.get("addr")
        question = f"{req.kind} {req.op} {target} (pid {req.pid}, rule {req.decision.rule})"
        ask_async(self.daemon.approver, question, self.policy.approval_timeout, done)

    def finish(self) -> None:
        """The finisher thread: the wall clock, the end event once the root
        is gone, and the notify loop's end once every process is."""
        wall = self.policy.limits.wall_clock
        if not self.root_done.wait(wall) and wall:
            msg = f"wall-clock limit of {wall:g}s reached: the command was killed"
            self._emit("sandbox", op="limit", decision="deny", rule="limits.wall_clock",
                       message=msg)  # fmt: skip
            self.table.kill_all()
            self.root_done.wait()
        if self.loop is not None:
            self.loop.sync(1.0)  # the root's last answered calls are audited first
            self.loop.drain(1.0)  # and an approval answered just before it exited
        status = self.root_status
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        reason = None
        failed = self.handshake.exec_failure() if self.handshake is not None else None
        if failed is not None:
            reason = f"{self.argv[0]}: cannot execute: {os.strerror(failed)}"
        self._flush_suppressed()
        running = len(self.table.members())
        self._emit("sandbox", op="end", exit_code=code, reason=reason,
                   running=running or None)  # fmt: skip
        self.empty.wait()
        self.close()

    def close(self) -> None:
        if self.loop is not None:
            if self.loop.is_alive():
                self.loop.stop()
                self.loop.join()
            self.loop.close()
            if self.loop.error is not None:
                self._emit("sandbox", op="error", reason=f"notify loop failed: {self.loop.error!r}")
        if self.handshake is not None:
            self.handshake.close()


class Daemon:
    # How notify mode does its opens here (main sets it from the host's
    # choice; the socket calls' stand-in is not built for the daemon).
    opens = _mechanism.FULL_MECHANISM["opens"]

    def __init__(self, ctl: Ctl, config: dict[str, Any]) -> None:
        from . import load_policy, open_audit

        self.ctl = ctl
        self.timeouts = Timeouts(**config.get("timeouts", {}))
        workspace = os.path.realpath(config["workspace"])
        self.sockdir = tempfile.mkdtemp(prefix="agentsh-ipy-")
        self.sockpath = os.path.join(self.sockdir, "launch")
        audit_path = os.path.abspath(config["audit_path"])
        policy = load_policy(config.get("policy_path"), workspace, protect=(audit_path,))
        policy = policy.hide([str(p) for p in config.get("hide", [])])
        self.policy = policy.protect([], trees=[self.sockdir])
        self.cache_home = _cache.cache_home()  # the client sets the variables
        self.log = open_audit(audit_path, config["session"])
        self.arch = arch_mod.current()
        self.trash = Trash(workspace)
        self.redirector = Redirector()
        self.approver: Approver = CtlApprover(ctl)
        self.trees: list[Tree] = []
        self.trees_lock = threading.Lock()
        self.pending: dict[str, Tree] = {}  # by launch token, until its wrapper connects
        self.registered = threading.Condition()
        self.ctl_busy = False  # a control message read and not yet handled
        self.handshakes = Workers("agentsh-handshake")
        self.parked: list[tuple[int, int, float]] = []
        self.seize_q: queue.SimpleQueue[tuple[Tree, int, list[Any], threading.Event]] = (
            queue.SimpleQueue()
        )
        self.events: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # JSON lines
        self.log.subscribe_lines(self.events.put)
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        nr = self.arch.nr("seccomp")
        assert nr is not None
        self.seccomp_nr = nr
        self.filter = seccomp.build_filter(self.arch, decide=seccomp.RET_USER_NOTIF)
        self.ruleset = _landlock.prepare(self.policy, self._emit, one_domain=False)
        # Names are decided by a proxy (_proxy), one for every launch of the session.
        self.proxy: Proxy | None = None
        if self.policy.has_domains:
            self.proxy = Proxy(self.policy, self._proxy_emit, HostServices(self.members),
                               ask=self.approver.ask)  # fmt: skip
        self.config = self._config_message()
        self.listen = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self.listen.bind(self.sockpath)
        self.listen.listen(64)

    def _emit(self, type: str, **fields: Any) -> None:
        self.log.emit(type, **fields)

    def _proxy_emit(self, type: str, **fields: Any) -> None:
        """A proxy event, tagged with the cell of the launch that connected."""
        with self.trees_lock:
            trees = list(self.trees)
        for tree in trees:
            if fields.get("pid") in tree.table.members():
                return tree._emit(type, **fields)
        self._emit(type, **fields)

    def members(self) -> list[int]:
        """Every process of every launch."""
        with self.trees_lock:
            trees = list(self.trees)
        return [pid for tree in trees for pid in tree.table.members()]

    # -- threads other than main -------------------------------------------
    def send_events(self) -> None:
        """Every audit event to the kernel, in order, gathered (EVENTS_GATHER)."""
        while True:
            batch = [self.events.get()]
            if batch[0] is not None:
                time.sleep(EVENTS_GATHER)
            while batch[-1] is not None and len(batch) < 1000:
                try:
                    batch.append(self.events.get_nowait())
                except queue.Empty:
                    break
            events = [ev for ev in batch if ev is not None]
            if events:
                self.ctl.send_events(events)
            if batch[-1] is None:
                return

    def read_ctl(self) -> None:
        poller = select.poll()
        poller.register(self.ctl.sock, select.POLLIN)
        try:
            while True:
                poller.poll()
                with self.registered:  # (see _claim)
                    self.ctl_busy = True
                msg = self.ctl.recv()
                if msg is None or msg.get("op") == "stop":
                    return
                if msg.get("op") == "wrap":
                    hidden = self._register(msg)
                    if "id" in msg:
                        self.ctl.send({"id": msg["id"], "hide": hidden})
                elif msg.get("op") == "forget":
                    with self.registered:  # (claimed already: it reached us, nothing to drop)
                        self.pending.pop(str(msg.get("launch")), None)
                elif msg.get("op") == "answer":
                    assert isinstance(self.approver, CtlApprover)
                    self.approver.answer(int(msg["ask"]), bool(msg["granted"]), str(msg["how"]))
                with self.registered:
                    self.ctl_busy = False
                    self.registered.notify_all()
        finally:
            with self.registered:
                self.stopping = True
                self.registered.notify_all()
            os.write(self.wake_w, b"s")

    def _register(self, msg: dict[str, Any]) -> list[str]:
        """Register a launch; the names env_policy hides of ``env_names``. A
        malformed or reused token is not registered: its wrapper is refused."""
        _, hidden = self.policy.filter_env(dict.fromkeys(map(str, msg.get("env_names", [])), ""))
        launch = msg.get("launch")
        if not isinstance(launch, str) or not TOKEN.fullmatch(launch) or launch in self.pending:
            return hidden
        tags = {"cell": msg.get("cell"), "cell_id": msg.get("cell_id")}
        tree = Tree(self, launch, [str(a) for a in msg["argv"]], tags, hidden)
        now = time.monotonic()
        with self.registered:
            for key in [k for k, t in self.pending.items() if now - t.created > PENDING_TTL]:
                del self.pending[key]
            self.pending[launch] = tree
            self.registered.notify_all()
        return hidden

    def _claim(self, token: str) -> Tree | None:
        """The launch registered under ``token``, or None. The kernel sent
        the registration before it forked the wrapper, so by now it is
        registered, being handled, or unread on the control socket: while
        one of the last two, wait (up to the handoff timeout); else the
        token is unknown, and refused at once."""
        deadline = time.monotonic() + self.timeouts.handoff
        with self.registered:
            while token not in self.pending and not self.stopping:
                left = deadline - time.monotonic()
                if left <= 0 or not (self.ctl_busy or self._ctl_unread()):
                    break
                # Woken when a message has been handled; polled meanwhile,
                # as nothing wakes us when one arrives unread.
                self.registered.wait(min(left, 0.01))
            return self.pending.pop(token, None)

    def _ctl_unread(self) -> bool:
        poller = select.poll()
        poller.register(self.ctl.sock, select.POLLIN)
        return bool(poller.poll(0))

    def accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.listen.accept()
            except OSError:
                return
            try:
                self.handshakes.submit(functools.partial(self.handshake, conn))
            except OSError as e:  # no thread (the sandbox spent the user's limit)
                self._emit("sandbox", op="error", decision="deny",
                           reason=f"a launch was refused: {e}")  # fmt: skip
                conn.close()

    def handshake(self, conn: socket.socket) -> None:
        """One wrapper, from its hello to GO (the attach itself is the main
        thread's). A failure is audited; the wrapper either exits by itself
        (it reported the failure) or is killed here: it never runs the
        command unattached."""
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        pid = int.from_bytes(creds[0:4], sys.byteorder)
        conn.settimeout(self.timeouts.handoff)
        try:
            hello = conn.recv(256)
        except OSError:
            conn.close()
            return
        tree = self._claim(hello[1:].decode(errors="replace")) if hello.startswith(b"H") else None
        if tree is None:
            self._emit("sandbox", op="error", pid=pid, decision="deny",
                       reason="a connection with an unknown launch token was refused")  # fmt: skip
            with contextlib.suppress(OSError):
                conn.send(b"Eunknown launch token")
            conn.close()
            return
        conn.settimeout(None)
        tree._emit("sandbox", op="start", pid=pid, argv=tree.argv, policy=self.policy.name,
                   policy_source=self.policy.source, mode="notify",
                   mechanism={**_mechanism.FULL_MECHANISM, "opens": self.opens},
                   fast_path="on" if tree.decoder.files.on else f"off: {tree.decoder.files.why}",
                   hidden_env=tree.hidden or None, cache_home=self.cache_home,
                   capabilities=caps.kept(pid) or None)  # fmt: skip
        tree._emit_unprotected()
        hs = tree.handshake = Handshake(conn, pid, self.timeouts, "notify")
        try:
            conn.sendmsg(*self.config)
            listener = hs.receive_listener()
            tree.loop = NotifyLoop(
                listener, tree.decoder, self.arch, tree._on_request, tree._approve
            )
            tree.loop.private_umask = self.opens == "private-umask"
            hs.probe_memory()
            tree.loop.start()
            hs.ack()
            hs.wait_ready()
            done = threading.Event()
            result: list[Any] = []
            self.seize_q.put((tree, pid, result, done))
            os.write(self.wake_w, b"a")
            done.wait()
            if result:
                raise result[0]
            hs.go()
        except (LaunchError, OSError, RuntimeError) as e:  # RuntimeError: no thread
            reason = e.reason if isinstance(e, LaunchError) else f"sandbox setup failed: {e}"
            tree._emit("sandbox", op="error", pid=pid, reason=reason)
            # Not attached: it has not run the command, and must not.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            code = e.code if isinstance(e, LaunchError) else 125
            tree._emit("sandbox", op="end", exit_code=code, reason=reason)
            tree.close()
            return
        try:
            threading.Thread(target=tree.finish, name="agentsh-finish", daemon=True).start()
        except RuntimeError:
            tree.finish()  # no thread to be had: this handshake thread waits instead

    def _config_message(self) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
        """The launch options every wrapper gets (sendmsg's arguments)."""
        opts = {
            "filter": self.filter.hex(),
            "seccomp-nr": str(self.seccomp_nr),
            "mode": "notify",
            "handoff-timeout": repr(self.timeouts.handoff),
            "go-timeout": repr(self.timeouts.go),
        }
        if self.policy.limits.memory is not None:
            opts["rlimit-as"] = str(self.policy.limits.memory)
        body = b"C" + "\n".join(f"{k}={v}" for k, v in opts.items()).encode()
        rights = []
        if self.ruleset is not None:
            rights = [
                (socket.SOL_SOCKET, socket.SCM_RIGHTS, self.ruleset.to_bytes(4, sys.byteorder))
            ]
        return [body], rights

    # -- the main thread: seize and wait -----------------------------------
    def serve(self) -> None:
        caps.lower_effective()  # before the threads that act for the sandbox
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._stop_soon())
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        # Ready first: the events queued meanwhile (Landlock) follow it.
        self.ctl.send({
            "ready": True, "pid": os.getpid(), "socket": self.sockpath,
            "session": self.log.session, "policy_name": self.policy.name,
            "policy_source": self.policy.source,
            "landlock": self.ruleset is not None,
            "proxy_env": self.proxy.env() if self.proxy is not None else {},
        })  # fmt: skip
        if self.proxy is not None:
            self.proxy.start()
        self.sender = threading.Thread(target=self.send_events, name="agentsh-events", daemon=True)
        threads = [
            self.sender,
            threading.Thread(target=self.read_ctl, name="agentsh-ctl", daemon=True),
            threading.Thread(target=self.accept, name="agentsh-accept", daemon=True),
        ]
        for t in threads:
            t.start()
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        while not self.stopping:
            self._reap()
            self._seize()
            self._retry_parked()
            if self.parked:
                poller.poll(50)
            else:
                poller.poll()
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake_r, 4096)
        self._shutdown()

    def _stop_soon(self) -> None:
        self.stopping = True

    def _seize(self) -> None:
        while True:
            try:
                tree, pid, result, done = self.seize_q.get_nowait()
            except queue.Empty:
                return
            try:
                tree.tracer.attach(pid, procfs.tgid_ppid(pid)[1], tree.argv)
                with self.trees_lock:
                    self.trees.append(tree)
            except OSError as e:
                result.append(LaunchError(f"cannot attach to the sandboxed process: {e.strerror}"))
            done.set()

    def _reap(self) -> None:
        while True:
            try:
                tid, status = os.waitpid(-1, ptracer.WALL | os.WNOHANG)
            except ChildProcessError:
                return
            if tid == 0:
                return
            self._dispatch(tid, status)

    def _owner(self, tid: int) -> Tree | None:
        with self.trees_lock:
            trees = list(self.trees)
        for t in trees:
            if tid in t.table.tgid:
                return t
        try:
            tgid, ppid = procfs.tgid_ppid(tid)
        except OSError:
            return None
        for t in trees:
            if tgid in t.table.procs or ppid in t.table.procs:
                return t
        return None

    def _dispatch(self, tid: int, status: int) -> bool:
        tree = self._owner(tid)
        if tree is None:
            self.parked.append((tid, status, time.monotonic()))
            return False
        try:
            tree.tracer.handle(tid, status)
        except OSError as e:
            # The tracer lost track of this tree: it must not run on unwatched.
            tree._emit("sandbox", op="error", pid=tid,
                       reason=f"tracer failure ({e}): the launch was killed")  # fmt: skip
            tree.table.kill_all()
        if tree.tracer.root_status is not None and not tree.root_done.is_set():
            tree.root_status = tree.tracer.root_status
            tree.root_done.set()
        if not tree.table.live_tids():
            with self.trees_lock:
                self.trees.remove(tree)
            tree.empty.set()
        return True

    def _retry_parked(self) -> None:
        parked, self.parked = self.parked, []
        now = time.monotonic()
        for tid, status, since in parked:
            if self._owner(tid) is not None:
                self._dispatch(tid, status)
            elif now - since < PARK_TTL:
                self.parked.append((tid, status, since))
            elif os.WIFSTOPPED(status):
                # Claimed by no launch (it cannot be outside them: only our
                # tracees report here); it still carries the filter.
                with contextlib.suppress(OSError):
                    ptracer.cont(tid)

    def _shutdown(self) -> None:
        """Kill every sandboxed process, collect what we can, close the log."""
        with self.trees_lock:
            trees = list(self.trees)
        for t in trees:
            t.table.kill_all()
        deadline = time.monotonic() + 5.0
        while self.trees and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)
        for t in trees:
            t.root_done.set()
            t.empty.set()
        self._emit("sandbox", op="stop", message="supervisor stopped")
        self.events.put(None)
        self.sender.join(5.0)  # the kernel gets every event before we exit
        if self.proxy is not None:
            self.proxy.close()
        self.log.close()
        self.listen.close()
        self.handshakes.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)


def _fail(ctl: Ctl, message: str, problems: list[Any] | None = None) -> int:
    ctl.send({"error": message, "policy_errors": problems})
    return 125


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    opts = dict(zip(args[::2], args[1::2], strict=False))
    ctl = Ctl(socket.socket(fileno=int(opts["--ctl-fd"])))
    # Die with the kernel; and not before it knows why.
    from .._linux import _syscall

    _syscall.prctl(_syscall.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(opts["--parent"]):
        return 125
    config = ctl.recv()
    if config is None:
        return 125
    # The probe traces a child of ours: before we become non-dumpable (which
    # children inherit until they exec).
    choice = _mechanism.choose(detect.probe_host(only=_mechanism.CHOICE_PROBES))
    if choice["mode"] != "notify":
        return _fail(ctl, "the notebook sandbox needs seccomp user-notify and ptrace: "
                     + choice["summary"])  # fmt: skip
    if choice["mechanism"]["sockets"] != "fd-copy":
        # Never silently: allowed socket calls would fail (issue 19).
        return _fail(ctl, "the notebook sandbox needs pidfd_getfd (tracing the socket calls "
                     "instead is built for agentsh-ipy exec and the sandboxed kernel only): "
                     + choice["summary"])  # fmt: skip
    Daemon.opens = choice["mechanism"]["opens"]
    from . import harden_supervisor_process

    harden_supervisor_process()
    try:
        daemon = Daemon(ctl, config)
    except pol.PolicyError as e:
        return _fail(ctl, str(e), [list(p) for p in e.problems])
    except (LaunchError, OSError, ValueError, KeyError) as e:
        return _fail(ctl, f"the supervisor could not start: {e}")
    daemon.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
