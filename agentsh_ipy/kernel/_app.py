"""``python -m agentsh_ipy.kernel -f CONNECTION_FILE``: the process Jupyter
starts is the supervisor; the IPython kernel runs inside the sandbox.

The supervisor (this process, trusted, never running notebook code):

1. reads Jupyter's connection file and keeps its key to itself: the policy
   hides that file from the sandbox (reads included), and this process is
   made non-dumpable, so the sandbox cannot read it from /proc either;
2. writes a second connection file (loopback ports, a fresh key) for the
   inner kernel, and starts ``python -m ipykernel_launcher -f`` that file
   through the sandbox (a ``Session``: seccomp user-notify, ptrace, Landlock)
   in a process group of its own;
3. proxies the channels (``_proxy.Proxy``). Which cell an event belongs to
   is set when the proxy forwards the frontend's execute_request, one at a
   time; the JSONL log (which the sandbox cannot write) gets a ``sandbox
   cell`` event there. The inner kernel cannot forge a frontend message, so
   it cannot make the supervisor start a cell; an inner kernel that answers
   a cell early only moves that cell's later events to the next cell, and
   every event stays in the log. The cell's audit is published by the
   supervisor, before the inner kernel's ``idle`` reaches the frontend.
   Outputs reach the frontend only in inert forms (``_outputs``); what was
   held back is a denied ``output`` event of the cell;
4. asks ``approve`` decisions itself, as an input_request on the outer stdin
   channel of the cell that caused them (their answers never reach the
   inner kernel); a request without stdin is a deny "no approver available";
5. forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to the sandbox's process group
   (jupyter_client interrupts by signalling the kernel's group, which
   includes only the supervisor), and when the inner kernel exits kills
   whatever its cells left running and exits with its status. If the
   supervisor dies, PTRACE_O_EXITKILL takes the sandbox with it.

Where the sandbox cannot run, the kernel does not start (exit 125, the
reason on stderr) unless started with ``--allow-unsandboxed``; then it runs
ipykernel directly and every cell's output says NOT SANDBOXED.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from .. import audit as aud
from .. import policy as pol
from .. import supervisor as sup
from . import KERNEL_AUDIT_ENV, KERNEL_POLICY_ENV, KERNEL_SESSION_ENV

if TYPE_CHECKING:
    from ._outputs import Refused
    from ._proxy import Proxy

EXIT_SETUP = 125
NOT_SANDBOXED = "NOT SANDBOXED: this kernel runs without the agentsh sandbox (--allow-unsandboxed)"


def _decided(event: aud.Event) -> bool:
    """An event that says something the sandbox decided or saw start: a
    decision, a blocked call, a process or a program started."""
    return event.get("decision") is not None or event.get("type") in (
        "syscall_blocked", "process_start", "exec")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentsh_ipy.kernel")
    p.add_argument("-f", dest="connection_file", required=True)
    p.add_argument("--policy", help="policy file (default: the built-in policy)")
    p.add_argument("--workspace", help="read-write workspace (default: the working directory)")
    p.add_argument("--audit", help="JSON Lines audit file")
    p.add_argument(
        "--display",
        choices=("summary", "full"),
        default="summary",
        help="per-cell audit: the counts, the denials, the allowed operations folded and "
        "where the cell's events are in the audit log (summary); the same and every event, "
        "kept in the notebook (full)",
    )
    p.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        help="where the sandbox cannot run, run the kernel without it (every cell says so)",
    )
    return p


def _fail(message: str) -> int:
    print(f"agentsh kernel: {message}; the kernel was not started", file=sys.stderr, flush=True)
    return EXIT_SETUP


_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _inner_connection(
    directory: str, avoid: Collection[int] = ()
) -> tuple[str, dict[str, Any], list[socket.socket]]:
    """The inner kernel's connection file: loopback ports the OS picked, a
    fresh key. (Written here, as jupyter_client's write_connection_file
    would: the supervisor does not import jupyter_client, ~70 ms of
    start-up; the proxy signs messages itself.)

    ``avoid``: the frontend's ports. jupyter_client released them after
    picking them, so the OS may offer them again, but the proxy binds them
    next: an inner kernel given one of them could not bind it.

    The sockets that picked the ports are returned still bound, with
    SO_REUSEADDR and not listening: the caller holds them while the kernel
    runs. zmq binds with SO_REUSEADDR too, so the kernel can still listen
    there, but no other port pick can take them meanwhile (the proxy's
    connects to the channels and the next kernel's picks come from the same
    range). Either way the kernel died of EADDRINUSE now and then."""
    held: list[socket.socket] = []
    passed_over: list[socket.socket] = []  # held until the end: not offered twice
    try:
        while len(held) < len(_CHANNELS):
            s = socket.socket()
            held.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))  # EADDRINUSE when the range is exhausted
            if s.getsockname()[1] in avoid:
                passed_over.append(held.pop())
        ports = [s.getsockname()[1] for s in held]
        info: dict[str, Any] = dict(zip(_CHANNELS, ports, strict=True))
        info.update(ip="127.0.0.1", key=os.urandom(32).hex(), transport="tcp",
                    signature_scheme="hmac-sha256", kernel_name="")  # fmt: skip
        path = os.path.join(directory, "kernel.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    except BaseException:
        for s in held:
            s.close()
        raise
    finally:
        for s in passed_over:
            s.close()
    return path, info, held


def _kernel_argv(connection: str) -> list[str]:
    # History in memory: the sandbox may not write ~/.ipython, and a failing
    # sqlite file would warn in every cell.
    return [sys.executable, "-m", "ipykernel_launcher", "-f", connection,
            "--HistoryManager.hist_file=:memory:"]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    conn_path = os.path.realpath(args.connection_file)
    try:
        with open(conn_path, encoding="utf-8") as f:
            outer = json.load(f)
    except (OSError, ValueError) as e:
        return _fail(f"cannot read the connection file {conn_path}: {e}")
    if not isinstance(outer, dict):
        return _fail(f"the connection file {conn_path} does not hold a JSON object")
    workspace = os.path.realpath(args.workspace or os.getcwd())
    private = tempfile.mkdtemp(prefix="agentsh-kernel-")
    held: list[socket.socket] = []
    try:
        outer_ports = {outer[c] for c in _CHANNELS if isinstance(outer.get(c), int)}
        inner_path, inner, held = _inner_connection(private, avoid=outer_ports)
        os.chmod(private, 0o700)
        if not sys.platform.startswith("linux"):
            return _unsandboxed(args, outer, inner, inner_path, f"Linux only ({sys.platform})")
        use = sup.host_choice()
        if not use["enforcing"]:
            return _unsandboxed(args, outer, inner, inner_path, str(use["summary"]))
        return _sandboxed(
            args, outer, inner, inner_path, conn_path, workspace, str(use["mode"]),
            use["mechanism"],
        )  # fmt: skip
    finally:
        for s in held:
            s.close()
        shutil.rmtree(private, ignore_errors=True)


def _unsandboxed(
    args: argparse.Namespace, outer: dict[str, Any], inner: dict[str, Any], path: str, why: str
) -> int:
    if not args.allow_unsandboxed:
        return _fail(f"the sandbox is unavailable here: {why}")
    from ._proxy import Proxy

    proxy = Proxy(outer, inner, on_cell=lambda *_: None, audit_for=lambda _: None,
                  note=f"{NOT_SANDBOXED}: {why}")  # fmt: skip
    proxy.start()
    try:
        return subprocess.call(_kernel_argv(path))
    finally:
        proxy.stop()
        proxy.join(5)


def _ensure_ipython_profile(private_dir: str) -> None:
    """IPython creates its profile directory on first use, which the sandbox
    may not do (~/.ipython is outside the workspace): create it here, as the
    user, before the kernel starts; where even that fails (a read-only
    home), give the kernel a private one."""
    home = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    if os.path.isdir(os.path.join(home, "profile_default")) and os.access(home, os.W_OK):
        return  # the usual case; IPython's own lookup below costs ~25 ms of imports
    from IPython.core.profiledir import ProfileDir, ProfileDirError
    from IPython.paths import get_ipython_dir

    create: Any = ProfileDir.create_profile_dir_by_name  # (untyped)
    try:
        ipython_dir = get_ipython_dir()
        os.makedirs(ipython_dir, mode=0o700, exist_ok=True)
        create(ipython_dir, "default")
    except (OSError, ProfileDirError):
        ipython_dir = os.environ["IPYTHONDIR"] = os.path.join(private_dir, "ipython")
        os.makedirs(ipython_dir, mode=0o700, exist_ok=True)
        create(ipython_dir, "default")


class _ProxyStart(threading.Thread):
    """Builds, binds and starts the proxy while the sandboxed kernel starts:
    its imports (zmq) need not delay the sandbox, and the frontend keeps
    asking for kernel_info until the channels answer. It begins once the
    kernel process is running (the import would otherwise compete with
    the launch for the GIL), long before that kernel answers. If the
    channels cannot be bound, the sandbox is stopped."""

    def __init__(self, make: Callable[[], Proxy], session: sup.Session) -> None:
        super().__init__(name="agentsh-proxy-start", daemon=True)
        self.make = make
        self.session = session
        self.proxy: Proxy | None = None
        self.error: str | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        self.session.launched.wait()
        try:
            proxy = self.make()
            proxy.start()
            self.proxy = proxy
        except Exception as e:  # zmq: a port taken, a bad address
            self.error = f"cannot bind the kernel's channels: {e}"
            self.session.stop(self.error)
        finally:
            self.ready.set()

    def stop(self) -> None:
        self.ready.wait()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy.join(5)


class _FrontendApprover:
    """Asks the person at the frontend of the running cell."""

    def __init__(self, starter: _ProxyStart) -> None:
        self.starter = starter

    def ask(self, question: str, timeout: float) -> tuple[bool, str]:
        prompt = f"agentsh: {question}\nallow? [y/N] (denied if no answer within {timeout:g}s) "
        self.starter.ready.wait()
        proxy = self.starter.proxy
        answer = None if proxy is None else proxy.ask(prompt, timeout)
        if answer is None:
            return False, (
                "denied: no approver available (the request does not accept input) "
                "or no answer in time"
            )
        granted = answer.strip().lower() in ("y", "yes")
        return granted, "granted at the frontend" if granted else "denied at the frontend"


def _sandboxed(
    args: argparse.Namespace,
    outer: dict[str, Any],
    inner: dict[str, Any],
    inner_path: str,
    conn_path: str,
    workspace: str,
    mode: str,
    mechanism: dict[str, str] | None = None,
) -> int:
    session_id = sup.new_session_id()
    try:
        audit_path = os.path.abspath(args.audit or sup.default_audit_path(session_id))
        policy = sup.load_policy(args.policy, workspace, protect=(audit_path,))
    except pol.PolicyError as e:
        return _fail(f"policy error:\n{e}")
    except sup.NoStateDir as e:
        return _fail(str(e.strerror))
    # The frontend's key: not even readable inside. The inner file: readable.
    policy = policy.hide([conn_path]).protect([inner_path])
    # The inner kernel binds its channels on loopback, whatever the policy
    # says of the network (it may allow none), and so does ipykernel's pipe
    # for the output of forked processes, on a port of its choosing: binding
    # loopback is allowed; connecting anywhere stays the policy's.
    policy = policy.allow_bind("kernel-channels", str(inner["ip"]), range(1, 65536))
    try:
        log = sup.open_audit(audit_path, session_id)
    except OSError as e:
        return _fail(f"cannot open the audit log {audit_path}: {e.strerror}")
    store = aud.EventStore()
    log.subscribe(store.add)
    programs: dict[int, str] = {}  # pid -> program, for the audit of a later cell
    programs_lock = threading.Lock()  # written by the log's emitters, read by the proxy

    def note_program(event: aud.Event) -> None:
        if event.get("type") in ("process_start", "exec"):
            with programs_lock:
                aud.note_program(programs, event)
                if len(programs) > 100_000:  # a long session: forget the oldest
                    del programs[next(iter(programs))]

    log.subscribe(note_program)
    sup.harden_supervisor_process()
    session = sup.Session(
        policy, log, workspace=workspace, mode=mode, signal_group=True, mechanism=mechanism
    )

    def on_cell(cell: int | None, cell_id: str | None) -> None:
        session.sync()  # the previous cell's last calls stay the previous cell's
        if cell is not None:
            cell_ids[cell] = cell_id
            while len(cell_ids) > 200:  # as many cells as the store keeps
                del cell_ids[next(iter(cell_ids))]
        log.set_cell(cell)
        log.emit("sandbox", op="cell", cell_id=cell_id)

    def audit_size(cell: int) -> int:
        return len(store.events(cell)) + store.dropped(cell)

    cell_ids: dict[int, str | None] = {}

    def audit_for(cell: int) -> tuple[dict[str, Any], int] | None:
        session.sync()
        events, dropped = store.events(cell), store.dropped(cell)
        if not dropped and not any(_decided(e) for e in events):
            return None  # `1+1`: nothing the sandbox decided, nothing to show
        with programs_lock:
            known = dict(programs)
        log_ref = aud.LogRef(audit_path, cell_ids.get(cell), programs=known)
        bundle = aud.mimebundle(events, cell=cell, dropped=dropped,
                                detail=args.display == "full", log=log_ref)  # fmt: skip
        return bundle, len(events) + dropped

    def on_refused(refused: Refused, cell: int | None) -> None:
        # the cell of the message (None: the current one; it may have ended)
        where = {} if cell is None else {"cell": cell}
        log.emit("sandbox", op="output", decision="deny", rule="frontend-outputs",
                 message=refused.message, mime=refused.what, msg_type=refused.msg_type,
                 **where)  # fmt: skip

    def make_proxy() -> Proxy:
        from ._proxy import Proxy

        return Proxy(outer, inner, on_cell=on_cell, audit_for=audit_for, audit_size=audit_size,
                     on_refused=on_refused)  # fmt: skip

    starter = _ProxyStart(make_proxy, session)
    session.approver = _FrontendApprover(starter)
    _ensure_ipython_profile(private_dir=os.path.dirname(inner_path))
    starter.start()
    try:
        # The magic, loaded in this kernel, runs its cells as they are.
        env = {**os.environ, KERNEL_SESSION_ENV: session_id, KERNEL_AUDIT_ENV: audit_path,
               KERNEL_POLICY_ENV: f"{policy.name} ({policy.source})"}  # fmt: skip
        result = session.run(_kernel_argv(inner_path), env=env, cwd=workspace)
    finally:
        starter.stop()
        log.close()
    if starter.error:
        return _fail(starter.error)
    if result.error:
        print(f"agentsh kernel: {result.error}", file=sys.stderr, flush=True)
    return result.status
