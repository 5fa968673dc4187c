"""The sandbox side of the launch handshake; runs as ``python -I -S wrapper.py``.

This file is deliberately stdlib-only and imports nothing from agentsh_ipy:
it runs isolated, in the child, before the command, and its steps are one
ordered list (``main``). The supervisor builds the BPF program and passes it
in; the wrapper only installs it. Likewise the Landlock ruleset: the
supervisor builds it and passes the fd (``--landlock FD``, inherited like the
socket); the wrapper only enforces it on itself.

Protocol on the SOCK_SEQPACKET pair (one message per byte string):

  wrapper -> supervisor   b"F" + SCM_RIGHTS(listener)   the notify fd
                          b"E" + b"NNN" + reason          cannot start (exit NNN)
                          b"N" + b"NNN" + reason          no usable seccomp listener
                          b"P"                            ptrace mode: no fd to send
                          b"R"                            READY (ptrace may attach)
                          b"X" + errno digits             exec failed after GO
  supervisor -> wrapper   b"A"                            ACK: notifications served
                          b"G"                            GO: traced, exec now

Connect mode (``--connect PATH --token T``, the supervisor daemon of a
notebook, which is not our parent): the wrapper connects to the daemon's
socket, checks the peer is its own user, sends b"H" + token and receives
b"C" + "key=value" lines (the options above) with the Landlock ruleset, if
any, as SCM_RIGHTS; or b"E" + reason when the daemon refuses. The daemon's
pid comes from SO_PEERCRED. Then the steps are the same.

Inline (:func:`preexec`): the connect-mode steps up to GO run as the
``preexec_fn`` of the caller's own Popen, in its forked child, and Popen
execs the command; no wrapper interpreter starts (the magic's subprocess
launches).

Forked (:func:`forked`): the supervisor forks and its child runs the same
steps, then execs the command; no wrapper interpreter starts (``agentsh-ipy
exec`` and the sandboxed kernel). ``python wrapper.py`` remains for a
supervisor that cannot fork, and for tests that swap the wrapper.

Between installing the filter and receiving ACK this process must make no
trapped syscall: nothing would answer it. That is why the fd is sent from a
second thread created *before* the filter: seccomp filters are per thread, so
that thread's sendmsg is not trapped, while the main thread (the one that
execs) carries the filter and only waits on a futex meanwhile.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import NoReturn

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PTRACER = 0x59616D61
SECCOMP_SET_MODE_FILTER = 1
FLAG_NEW_LISTENER = 1 << 3
FLAG_WAIT_KILLABLE_RECV = 1 << 5
IOCTL_NOTIF_ID_VALID = 0x40082102
IOCTL_NOTIF_ID_VALID_OLD = 0x80082102
# Unified syscall number (the same on x86_64 and aarch64).
NR_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_ERRORS = {
    errno.ENOSYS: "this kernel has no Landlock",
    errno.EOPNOTSUPP: "Landlock is disabled at boot",
    errno.EPERM: "no_new_privs is not set, or the ruleset fd is not readable",
    errno.EBADF: "the ruleset fd is not open",
    errno.EBADFD: "the fd is not a Landlock ruleset",
    errno.E2BIG: "too many stacked Landlock domains",
    errno.EINVAL: "flags not supported by this kernel",
}

EXIT_SETUP = 125

# The capabilities a sandboxed root keeps (docs/security.md, "Capabilities",
# says why each): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
# SETPCAP, NET_BIND_SERVICE. Every other one guards something the sandbox
# does not decide (interfaces, mounts, inode flags, limits, raw devices).
KEPT_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10)
KEPT_MASK = sum(1 << c for c in KEPT_CAPS)
CAP_SETPCAP = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


class SetupError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class NotifyUnavailable(SetupError):
    """No usable seccomp listener here (reported as b"N" + reason)."""


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def install_filter(program: bytes, seccomp_nr: int, listener: bool = True) -> int:
    """no_new_privs, then the filter with NEW_LISTENER; returns the listener fd
    (or -1 without a listener: ptrace mode, where the filter traces instead).

    WAIT_KILLABLE_RECV (5.19+) keeps a signal from restarting a trapped
    syscall in a loop once the supervisor has it; older kernels say EINVAL.
    """
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Fprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if not listener:
        _check(
            _libc.syscall(
                ctypes.c_long(seccomp_nr), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                ctypes.c_long(0), ctypes.byref(prog),
            ),
            "seccomp(SET_MODE_FILTER)",
        )  # fmt: skip
        return -1
    for flags in (FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV, FLAG_NEW_LISTENER):
        fd = _libc.syscall(
            ctypes.c_long(seccomp_nr),
            ctypes.c_long(SECCOMP_SET_MODE_FILTER),
            ctypes.c_long(flags),
            ctypes.byref(prog),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.EINVAL or flags == FLAG_NEW_LISTENER:
            raise OSError(err, f"seccomp(SET_MODE_FILTER): {os.strerror(err)}")
    raise AssertionError("unreachable")


def _capsets() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) sets, 64 bits each."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def _bounding() -> int:
    """This thread's bounding set (PR_CAPBSET_READ up to the kernel's last cap)."""
    out = 0
    for cap in range(64):
        res = _libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0)
        if res == -1:
            break  # EINVAL: past CAP_LAST_CAP
        out |= res << cap
    return out


def drop_capabilities() -> None:
    """Keep at most KEPT_CAPS, in every set, before the filter exists.

    Ambient first (no capability needed), then the bounding set (needs
    CAP_SETPCAP, which is kept), then effective/permitted/inheritable with
    capset (lowering needs nothing). For root, exec grants the bounding set,
    so it must shrink too; without CAP_SETPCAP it cannot, and no_new_privs
    still limits an exec to the permitted set set here. An unprivileged
    process holds nothing: this changes nothing for it. Any step failing, or
    a set still holding more afterwards, is a setup failure: the command
    never runs with the rest. Capabilities are per thread: this runs on the
    thread that execs, before the handoff thread exists."""
    try:
        res = _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        if res == -1 and ctypes.get_errno() != errno.EINVAL:  # EINVAL: before Linux 4.3
            _check(-1, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
        effective, permitted, inheritable = _capsets()
        bounding = _bounding()
        if effective >> CAP_SETPCAP & 1:
            for cap in range(bounding.bit_length()):
                if bounding >> cap & 1 and not KEPT_MASK >> cap & 1:
                    _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"PR_CAPBSET_DROP({cap})")
            bounding = _bounding()
        if (effective | permitted | inheritable) & ~KEPT_MASK:
            header = _CapHeader(_CAP_VERSION_3, 0)
            data = (_CapData * 2)()
            for i in (0, 1):
                data[i].effective = (effective & KEPT_MASK) >> 32 * i & 0xFFFFFFFF
                data[i].permitted = (permitted & KEPT_MASK) >> 32 * i & 0xFFFFFFFF
                data[i].inheritable = (inheritable & KEPT_MASK) >> 32 * i & 0xFFFFFFFF
            _check(_libc.capset(ctypes.byref(header), data), "capset")
        left = bounding if effective >> CAP_SETPCAP & 1 else 0
        for held in _capsets():
            left |= held
    except OSError as e:
        raise SetupError(EXIT_SETUP, f"cannot drop capabilities: {e}") from None
    for cap in range(64):
        res = _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0)
        if res == -1:
            break  # past CAP_LAST_CAP, or no ambient set at all
        left |= res << cap
    if left & ~KEPT_MASK:
        raise SetupError(EXIT_SETUP, f"cannot drop capabilities: {left & ~KEPT_MASK:#x} still held")


def restrict_self(ruleset: int) -> None:
    """Enforce the supervisor's Landlock ruleset on this thread (the one that
    execs), then close it: the command must not hold it."""
    res = _libc.syscall(
        ctypes.c_long(NR_LANDLOCK_RESTRICT_SELF), ctypes.c_long(ruleset), ctypes.c_long(0)
    )
    if res == -1:
        err = ctypes.get_errno()
        why = _LANDLOCK_ERRORS.get(err, os.strerror(err))
        name = errno.errorcode.get(err, str(err))
        raise SetupError(EXIT_SETUP, f"landlock_restrict_self: {name}: {why}")
    os.close(ruleset)


def probe_listener(fd: int) -> None:
    """NOTIF_ID_VALID(0) must answer ENOENT; a profile that blocks the
    notify ioctls (EPERM, EACCES) would leave every trapped call hanging."""
    zero = ctypes.c_uint64(0)
    for req in (IOCTL_NOTIF_ID_VALID, IOCTL_NOTIF_ID_VALID_OLD):
        if _libc.ioctl(fd, req, ctypes.addressof(zero)) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.ENOENT:
            return
        if err != errno.ENOTTY:
            break
    raise OSError(err, f"seccomp notify ioctls unusable: {os.strerror(err)}")


def resolve(cmd: str, path_env: str | None) -> str | None:
    """PATH search, done before the filter exists (each probe would be trapped)."""
    if "/" in cmd:
        return cmd if os.path.exists(cmd) else None
    for d in (path_env if path_env is not None else os.defpath).split(os.pathsep):
        cand = os.path.join(d or ".", cmd)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def wait_byte(fd: int, expected: bytes, timeout: float, what: str) -> None:
    """Read one byte with a deadline that works on a raw fd (poll, not a
    socket timeout), retrying EINTR, and reject anything but ``expected``."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SetupError(EXIT_SETUP, f"no {what} from the supervisor within {timeout:g}s")
        try:
            if not poller.poll(left * 1000):
                continue
            data = os.read(fd, 16)
        except InterruptedError:
            continue
        except BlockingIOError:
            continue
        if data == expected:
            return
        if not data:
            raise SetupError(EXIT_SETUP, f"supervisor closed the channel before {what}")
        raise SetupError(EXIT_SETUP, f"bad {what} message from the supervisor: {data[:8]!r}")


class _Sender(threading.Thread):
    """Unfiltered thread: sends the listener fd and waits for ACK."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__(name="agentsh-handoff", daemon=True)
        self.sock = sock
        self.timeout = timeout
        self.listener = -1
        self.ptrace_mode = False  # no listener to send: say so with b"P"
        self.go = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.go.wait()
            if self.ptrace_mode:
                self.sock.send(b"P")
            elif self.listener < 0:
                return
            else:
                rights = bytes(ctypes.c_int(self.listener))
                self.sock.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
            wait_byte(self.sock.fileno(), b"A", self.timeout, "ACK")
        except BaseException as e:
            self.error = e
        finally:
            self.done.set()


def _parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i].lstrip("-")
        opts[key] = argv[i + 1]
        i += 2
    return opts, argv[i + 1 :]


def connect(opts: dict[str, str]) -> socket.socket:
    """Connect mode: reach the daemon and fetch the launch options into
    ``opts`` (and ``supervisor``, from SO_PEERCRED)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(opts["connect"])
    except OSError as e:
        sock.close()
        raise SetupError(EXIT_SETUP, f"cannot reach the supervisor: {e.strerror}") from None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, uid = int.from_bytes(creds[0:4], sys.byteorder), int.from_bytes(creds[4:8], sys.byteorder)
    if uid != os.getuid():
        raise SetupError(EXIT_SETUP, f"the supervisor socket belongs to uid {uid}, not to us")
    opts["supervisor"] = str(pid)
    sock.send(b"H" + opts["token"].encode())
    timeout = float(opts.get("handoff-timeout", "10"))
    sock.settimeout(timeout)
    try:
        msg, anc, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
    except TimeoutError:
        raise SetupError(
            EXIT_SETUP, f"no launch options from the supervisor within {timeout:g}s"
        ) from None
    finally:
        sock.settimeout(None)
    fds = [
        int.from_bytes(data[i : i + 4], sys.byteorder)
        for level, kind, data in anc
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
        for i in range(0, len(data) - len(data) % 4, 4)
    ]
    if not msg.startswith(b"C"):
        for fd in fds:
            os.close(fd)
        reason = msg[1:].decode(errors="replace") if msg else "closed the connection"
        raise SetupError(EXIT_SETUP, f"the supervisor refused the launch: {reason}")
    for line in msg[1:].decode().splitlines():
        key, _, value = line.partition("=")
        opts[key] = value
    if fds:
        opts["landlock"] = str(fds[0])
        for fd in fds[1:]:
            os.close(fd)
    return sock


def _unreached(e: SetupError) -> int:
    # The daemon never had this launch, so nobody else can say why; the
    # command did not run, so this line mixes with no output of it.
    with contextlib.suppress(OSError):
        os.write(2, f"agentsh: {e.reason}; the command was not run\n".encode())
    return e.code


def main(argv: list[str]) -> int:
    opts, cmd = _parse(argv)
    if "connect" in opts:
        try:
            sock = connect(opts)
        except SetupError as e:
            return _unreached(e)
    else:
        fd = int(opts["fd"])
        # posix_spawn's dup2 cleared CLOEXEC so the fd could arrive; set it
        # again so no supervisor fd survives into the command.
        os.set_inheritable(fd, False)
        if "landlock" in opts:  # the Landlock ruleset, likewise
            os.set_inheritable(int(opts["landlock"]), False)
        sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    try:
        return _run(sock, opts, cmd, os.environ)
    except (SetupError, OSError) as e:
        return _failed(sock, e)


def _failed(sock: socket.socket, e: BaseException) -> int:
    """Tell the supervisor why the launch failed (it audits it); the exit code."""
    if isinstance(e, SetupError):
        kind = b"N" if isinstance(e, NotifyUnavailable) else b"E"
        _report(sock, kind + b"%03d" % e.code + e.reason.encode(errors="replace"))
        return e.code
    reason = str(e) if isinstance(e, OSError) else f"sandbox setup failed: {e!r}"
    _report(sock, b"E%03d" % EXIT_SETUP + reason.encode(errors="replace"))
    return EXIT_SETUP


def preexec(socket_path: str, token: str, handoff_timeout: float) -> Callable[[], None]:
    """Connect mode without a wrapper process: the steps up to GO as a
    ``Popen(preexec_fn=...)``, run in the forked child of an interpreter that
    is already warm, so a launch costs no Python start-up. Popen then closes
    the fds and execs the command (resolved by the caller: PATH is searched
    before the filter, as step 2 wants), and that execve is the first call
    the supervisor decides. A failure ends the child with the wrapper's exit
    code (125, or 127) before anything runs.

    SIGPIPE is blocked meanwhile: Popen's child has it at SIG_DFL, and a
    supervisor that went away must fail the handshake, not kill the child
    silently. The mask is restored before the exec (it is inherited)."""
    base = {"connect": socket_path, "token": token, "handoff-timeout": repr(handoff_timeout)}

    def steps() -> None:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        opts = dict(base)
        try:
            sock = connect(opts)
        except SetupError as e:
            os._exit(_unreached(e))
        except BaseException:
            os._exit(_unreached(SetupError(EXIT_SETUP, "cannot reach the supervisor")))
        try:
            sock.setblocking(True)
            _setup(sock, opts, None)
        except BaseException as e:
            os._exit(_failed(sock, e))
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

    return steps


def forked(
    sock: socket.socket,
    opts: dict[str, str],
    cmd: list[str],
    env: Mapping[str, str],
    sigdef: Collection[int],
    new_group: bool,
) -> NoReturn:
    """The wrapper's steps in a child the supervisor forked, then the exec;
    never returns. ``sigdef``, ``new_group`` and ``env`` are what
    posix_spawn would have set.

    The child is a copy of the supervisor, so first: dumpable again (the
    supervisor made itself non-dumpable, and the handshake's memory probe
    and PTRACE_SEIZE need this process readable until the exec resets it),
    Python's own handlers off (a signal before the exec must act as it
    would on the command), SIGPIPE left ignored until the exec (a closed
    channel must fail the handshake, not end the child silently). Only
    ``os._exit`` leaves: nothing of the supervisor (stdio buffers, atexit)
    may run twice."""
    code = EXIT_SETUP
    try:
        try:
            _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(SET_DUMPABLE)")
            for sig in signal.valid_signals():
                reset = sig in sigdef or callable(signal.getsignal(sig))
                if reset and sig != signal.SIGPIPE:
                    signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            if new_group:
                os.setpgid(0, 0)
            code = _run(sock, opts, cmd, env)
        except BaseException as e:
            code = _failed(sock, e)
    finally:
        os._exit(code)


def _report(sock: socket.socket, msg: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(sock.fileno(), msg)  # write(2), never trapped


def _run(sock: socket.socket, opts: dict[str, str], cmd: list[str], env: Mapping[str, str]) -> int:
    path = _setup(sock, opts, opts.get("file", cmd[0]), env.get("PATH"))
    assert path is not None
    # 7. Exec, with the signals Python ignores at start-up as the launcher
    #    had them (dispositions survive exec: `yes | head` needs SIGPIPE at
    #    its default; ``--sigign`` lists those the launcher ignores). The
    #    socket is CLOEXEC: it closes on success, and reports failure.
    ignored = {int(n) for n in opts.get("sigign", "").split(",") if n}
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)
    try:
        os.execve(path, cmd, env)
    except OSError as e:
        _report(sock, b"X%d" % (e.errno or 0))
        return 127 if e.errno == errno.ENOENT else 126
    raise AssertionError("unreachable")


def _setup(
    sock: socket.socket,
    opts: dict[str, str],
    target: str | None,
    path_env: str | None = None,
) -> str | None:
    """Steps 1-6, up to GO and the limits; returns ``target`` resolved on
    ``path_env`` (None when the caller resolved it: :func:`preexec`)."""
    supervisor = int(opts["supervisor"])
    handoff_timeout = float(opts["handoff-timeout"])
    go_timeout = float(opts["go-timeout"])
    program = bytes.fromhex(opts["filter"])
    seccomp_nr = int(opts["seccomp-nr"])

    # 1. Die with the supervisor; and make sure it has not died already. (A
    #    daemon is not our parent: its PTRACE_O_EXITKILL does this after the
    #    attach, and a closed socket fails the handshake before.)
    if "connect" not in opts:
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        if os.getppid() != supervisor:
            raise SetupError(EXIT_SETUP, "supervisor exited during launch")
    if "cwd" in opts:
        try:
            os.chdir(opts["cwd"])
        except OSError as e:
            raise SetupError(EXIT_SETUP, f"cannot enter {opts['cwd']}: {e.strerror}") from None
    # 2. Resolve the command before the filter exists. ``--file`` names the
    #    file to run when it is not argv[0] (Popen's executable=, os.spawnv).
    path = None if target is None else resolve(target, path_env)
    if target is not None and path is None:
        raise SetupError(127, f"{target}: command not found")
    # 3. Under Yama ptrace_scope=1 name the supervisor as our tracer (EINVAL: no Yama).
    if (
        _libc.prctl(PR_SET_PTRACER, supervisor, 0, 0, 0) == -1
        and ctypes.get_errno() != errno.EINVAL
    ):
        _check(-1, "prctl(PR_SET_PTRACER)")
    # 3b. Capabilities down to KEPT_CAPS, before the filter (and the thread).
    drop_capabilities()
    # 4. The sender thread must exist before the filter so it is not filtered.
    sender = _Sender(sock, handoff_timeout)
    sender.start()
    ptrace_mode = opts.get("mode") == "ptrace"
    try:
        listener = install_filter(program, seccomp_nr, listener=not ptrace_mode)
        if listener >= 0:
            probe_listener(listener)
    except OSError as e:
        sender.go.set()
        sender.join()
        if ptrace_mode:
            raise SetupError(EXIT_SETUP, f"seccomp filter refused: {e}") from None
        # The host will not give us a listener: tell the supervisor, which
        # may use ptrace mode instead (nothing has run).
        raise NotifyUnavailable(EXIT_SETUP, f"seccomp user-notify unavailable: {e}") from None
    except BaseException:
        sender.go.set()
        sender.join()
        raise
    # 5. From here until ACK: no trapped syscall on this thread.
    sender.listener = listener
    sender.ptrace_mode = ptrace_mode
    sender.go.set()
    sender.done.wait()
    if listener >= 0:
        os.close(listener)  # the command must never hold its own listener
    if sender.error is not None:
        if isinstance(sender.error, SetupError):
            raise sender.error
        raise SetupError(EXIT_SETUP, f"fd handoff failed: {sender.error}")
    sender.join()  # ptrace attaches to this thread alone: no other may remain
    # 6. Landlock, built by the supervisor (it opens the paths; we could not,
    #    the filter is on). After the filter on purpose: landlock_restrict_self
    #    is not trapped and no_new_privs is already set. Failing is a setup
    #    failure: never run without a ruleset that was asked for. Then READY,
    #    and wait for GO around the attach.
    if "landlock" in opts:
        restrict_self(int(opts["landlock"]))
    os.write(sock.fileno(), b"R")
    wait_byte(sock.fileno(), b"G", go_timeout, "GO")
    if "rlimit-as" in opts:  # limits.memory: per process, inherited by children
        limit = int(opts["rlimit-as"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
