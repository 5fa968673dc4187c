"""What this host can enforce: one probe per kernel mechanism the sandbox uses.

Each probe really exercises the mechanism rather than reading a version
number, because what breaks in practice is a container profile or an LSM
refusing a call the kernel supports (DESIGN.md, pitfalls 4-6). A probe that
could change the calling process (no_new_privs, a seccomp filter, a user
namespace, becoming a tracer) runs in a forked child that makes raw syscalls
only, reports one JSON line per message on a pipe, and leaves with
``os._exit``; the parent bounds every wait and kills a child that stalls.

The caller may be multi-threaded (a Jupyter kernel is). After ``fork`` only
the forking thread exists in the child, and a lock held by another thread
stays held forever, so the child code here avoids anything that takes a
lock: no imports, logging, or buffered I/O. Every module and ctypes function
is loaded in the parent before the fork. Should the child stall anyway, the
parent's deadline reports it and kills it.

This module imports on any platform; the Linux plumbing is imported inside
the functions that use it.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .arch import Arch

__all__ = ["PROBE_NAMES", "HostFacts", "Probe", "probe_host"]

PROBE_NAMES = (
    "seccomp_user_notify",
    "seccomp_addfd",
    "pidfd_getfd",
    "unshare_fs",
    "openat2",
    "wait_killable_recv",
    "landlock",
    "ptrace",
    "user_namespaces",
    "process_vm_readv",
    "yama",
    "host_services",
)


@dataclass(frozen=True)
class Probe:
    name: str
    available: bool
    detail: str  # version/ABI in words, or why not, starting with the errno name
    value: int | str | None = None  # e.g. the Landlock ABI, the Yama ptrace_scope


@dataclass(frozen=True)
class HostFacts:
    kernel: str
    machine: str
    arch_supported: bool
    probes: tuple[Probe, ...]

    def get(self, name: str) -> Probe:
        for p in self.probes:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly: probes keyed by name, in probe order."""
        return {
            "kernel": self.kernel,
            "machine": self.machine,
            "arch_supported": self.arch_supported,
            "probes": {
                p.name: {"available": p.available, "detail": p.detail, "value": p.value}
                for p in self.probes
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> HostFacts:
        """The inverse of :meth:`to_dict` (e.g. facts probed in another process)."""
        probes = data["probes"]
        if not isinstance(probes, dict):
            raise ValueError("'probes' must be an object")
        out = []
        for name, p in probes.items():
            value = p.get("value")
            if value is not None and not isinstance(value, int | str):
                raise ValueError(f"probe {name!r}: bad value {value!r}")
            out.append(Probe(str(name), bool(p["available"]), str(p["detail"]), value))
        return cls(
            str(data["kernel"]), str(data["machine"]), bool(data["arch_supported"]), tuple(out)
        )


def probe_host(timeout: float = 5.0, only: Collection[str] | None = None) -> HostFacts:
    """Probe every mechanism, or those named in ``only`` (the facts then hold
    those alone). Never raises on Linux: a failed probe is reported
    unavailable with its reason. ``timeout`` bounds each forked probe."""
    names = PROBE_NAMES if only is None else tuple(n for n in PROBE_NAMES if n in only)
    unknown = set(only or ()) - set(PROBE_NAMES)
    if unknown:
        raise ValueError(f"no such probe: {', '.join(sorted(unknown))}")
    if sys.platform != "linux":
        return HostFacts(
            platform.release(),
            platform.machine(),
            False,
            tuple(Probe(name, False, "not Linux") for name in names),
        )
    uname = os.uname()
    env = _Env(timeout, _kernel_version(uname.release))
    try:
        from . import arch

        env.arch = arch.current()
    except OSError as e:  # an architecture we have no syscall table for
        env.arch_error = str(e)
    except Exception as e:  # python-ptrace missing, or failing to import
        env.arch_error = f"cannot load the syscall tables (python-ptrace): {_describe(e)}"
    unsupported = env.arch_error is not None and env.arch_error.startswith("unsupported")

    yama = _guard("yama", _probe_yama)  # (read a file; the ptrace probes' messages use it)
    scope = yama.value if isinstance(yama.value, int) else None
    run: dict[str, Callable[[], Probe]] = {
        "seccomp_user_notify": lambda: _probe_user_notify(env),
        "seccomp_addfd": lambda: _probe_addfd(env),
        "pidfd_getfd": lambda: _probe_helper(env, "pidfd_getfd"),
        "unshare_fs": lambda: _probe_helper(env, "unshare_fs"),
        "openat2": lambda: _probe_helper(env, "openat2"),
        "wait_killable_recv": lambda: _probe_wait_killable(env),
        "landlock": lambda: _probe_landlock(env),
        "ptrace": lambda: _probe_ptrace(env, scope),
        "user_namespaces": lambda: _probe_userns(env),
        "process_vm_readv": lambda: _probe_vm_readv(env, scope),
        "yama": lambda: yama,
        "host_services": _probe_host_services,
    }
    probes = tuple(_guard(n, run[n]) for n in names)
    return HostFacts(uname.release, uname.machine, not unsupported, probes)


# --- shared plumbing ---------------------------------------------------------

_Report = dict[str, object]

# BPF: "return ALLOW" (a filter that changes nothing but still gets a listener).
_ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)
_SET_MODE_FILTER = 1


class _Unavailable(Exception):
    """A precondition is missing; the message is the probe's detail."""


@dataclass
class _Env:
    timeout: float
    kernel: tuple[int, int]
    arch: Arch | None = None
    arch_error: str | None = None
    helpers: _Report | None = None  # the one child behind the notify-helper probes

    def nr(self, name: str) -> int:
        if self.arch is None:
            raise _Unavailable(self.arch_error or "unknown architecture")
        nr = self.arch.nr(name)
        if nr is None:
            raise _Unavailable(f"no syscall number for {name} on {self.arch.name}")
        return nr


def _guard(name: str, fn: Callable[[], Probe]) -> Probe:
    try:
        return fn()
    except _Unavailable as e:
        return Probe(name, False, str(e))
    except Exception as e:
        return Probe(name, False, f"probe failed: {_describe(e)}")


def _errname(err: int) -> str:
    return errno.errorcode.get(err, f"errno {err}")


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno:
        return f"{_errname(e.errno)}: {e.strerror or e}"
    return f"{type(e).__name__}: {e}"


def _kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


@contextmanager
def _quiet_fork_warning() -> Iterator[None]:
    # Python 3.12+ warns when a multi-threaded process forks. The child here
    # was written for exactly that case (see the module docstring), and the
    # warning, if turned into an error, would raise after the fork and lose
    # the child's pid. warnings.catch_warnings is process-global: only use it
    # when the warning would fire at all.
    if sys.version_info < (3, 12) or threading.active_count() <= 1:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)
        yield


class _Ctx:
    """What a child body gets: where to report, and the step it is on."""

    def __init__(self, wfd: int) -> None:
        self._wfd = wfd
        self.step = "start"

    def send(self, report: _Report) -> None:
        data = json.dumps(report).encode() + b"\n"
        while data:
            data = data[os.write(self._wfd, data) :]


_Body = Callable[[_Ctx], _Report]


def _child_main(body: _Body, rfd: int, wfd: int) -> NoReturn:
    code = 0
    try:
        os.close(rfd)
        ctx = _Ctx(wfd)
        try:
            report = body(ctx)
        except OSError as e:
            report = {"errno": e.errno or 0, "error": str(e), "step": ctx.step}
        except BaseException as e:
            report = {"error": f"{type(e).__name__}: {e}", "step": ctx.step}
        ctx.send(report)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


class _Child:
    """A forked probe process; the parent side. Use as a context manager: on
    exit a child still running is killed and reaped."""

    def __init__(self, body: _Body) -> None:
        rfd, wfd = os.pipe()
        try:
            with _quiet_fork_warning():
                pid = os.fork()
        except BaseException:
            os.close(rfd)
            os.close(wfd)
            raise
        if pid == 0:
            _child_main(body, rfd, wfd)
        os.close(wfd)
        self.pid = pid
        self._rfd = rfd
        self._buf = b""
        self.status: int | None = None
        # A pidfd keeps a later kill from hitting a reused pid (a caller with
        # SIGCHLD ignored has its children reaped behind its back).
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError:
            self._pidfd = None

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recv(self, deadline: float) -> _Report:
        """The next report line; a timeout or a silent exit becomes an error report."""
        poller = select.poll()
        poller.register(self._rfd, select.POLLIN)
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"error": "timed out: the probe process stalled", "timeout": True}
            if not poller.poll(max(1, int(left * 1000))):
                continue
            data = os.read(self._rfd, 65536)
            if not data:
                self._reap(deadline - time.monotonic())
                return {"error": f"the probe process {self._status_text()} without a report"}
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        report = json.loads(line)
        return report if isinstance(report, dict) else {"error": f"bad report {line!r}"}

    def close(self) -> None:
        if self.status is None:
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(2.0)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        os.close(self._rfd)

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 0.05)
        while self.status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored, or waitpid(-1))
                self.status = -1
                return
            if pid:
                self.status = status
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return  # leave it; close() will have sent SIGKILL
            if self._pidfd is not None:
                select.select([self._pidfd], [], [], left)
            else:
                time.sleep(min(0.01, left))

    def _status_text(self) -> str:
        st = self.status
        if st is None or st < 0:
            return "ended"
        if os.WIFSIGNALED(st):
            sig = os.WTERMSIG(st)
            try:
                return f"was killed by {signal.Signals(sig).name}"
            except ValueError:
                return f"was killed by signal {sig}"
        return f"exited with status {os.waitstatus_to_exitcode(st)}"


def _run(body: _Body, timeout: float) -> _Report:
    with _Child(body) as child:
        return child.recv(time.monotonic() + timeout)


# _tracee_dumpable: a probe's stand-in tracee is forked dumpable, as exec
# makes a real tracee. A supervisor already non-dumpable (hardened: a
# same-uid sandbox may not trace it) passes that on to the children it
# forks, and unprivileged ptrace or pidfd_getfd of them would be refused:
# a fact about the probe, not about the host.


def _failure(report: _Report, reasons: dict[int, str]) -> str:
    """'EPERM: <step> failed: <reason>' from a child's error report."""
    err = report.get("errno")
    step = report.get("step")
    where = f"{step} failed: " if step and step != "start" else ""
    if isinstance(err, int) and err:
        reason = reasons.get(err) or os.strerror(err)
        return f"{_errname(err)}: {where}{reason}"
    return f"{where}{report.get('error', 'unknown error')}"


_SECCOMP_REASONS = {
    errno.EPERM: "refused (a container seccomp profile or an LSM?)",
    errno.EACCES: "refused (a container seccomp profile or an LSM?)",
    errno.EINVAL: "not supported by this kernel (user notification needs 5.0+)",
    errno.ENOSYS: "seccomp filters unavailable (CONFIG_SECCOMP_FILTER off, or an outer filter)",
    errno.EBUSY: "this process tree already has a seccomp listener (running inside a sandbox?)",
    errno.ENOMEM: "out of memory, or the filter chain is too long",
}


# --- the probes ----------------------------------------------------------------


def _probe_yama() -> Probe:
    scope = _read_int("/proc/sys/kernel/yama/ptrace_scope")
    if scope is None:
        return Probe(
            "yama",
            False,
            "Yama is not active (no /proc/sys/kernel/yama/ptrace_scope): "
            "classic ptrace permissions",
        )
    meaning = {
        0: "classic ptrace permissions",
        1: "restricted: only ancestors, or a tracer named with PR_SET_PTRACER",
        2: "admin-only: tracing needs CAP_SYS_PTRACE",
        3: "no attach: ptrace is disabled until reboot",
    }.get(scope, "unknown mode")
    return Probe("yama", True, f"ptrace_scope={scope} ({meaning})", scope)


def _probe_user_notify(env: _Env) -> Probe:
    nr = env.nr("seccomp")
    from . import seccomp, wrapper

    def body(ctx: _Ctx) -> _Report:
        ctx.step = "installing a filter with NEW_LISTENER"
        fd = wrapper.install_filter(_ALLOW_ALL, nr)
        ctx.step = "NOTIF_ID_VALID(0) on the listener"
        wrapper.probe_listener(fd)
        return {"ok": True}

    report = _run(body, env.timeout)
    if not report.get("ok"):
        reasons = dict(_SECCOMP_REASONS)
        if str(report.get("step", "")).startswith("NOTIF"):
            reasons[errno.EPERM] = reasons[errno.EACCES] = (
                "the filter installs but the notify ioctls are blocked (container profile?)"
            )
        return Probe("seccomp_user_notify", False, _failure(report, reasons))
    try:
        sizes = "notif sizes ok" if seccomp.sizes_ok() else None
    except OSError as e:
        sizes = f"notif sizes unknown ({_describe(e)})"
    if sizes is None:
        return Probe(
            "seccomp_user_notify",
            False,
            "the kernel's seccomp_notif structures are larger than ours",
        )
    return Probe(
        "seccomp_user_notify",
        True,
        f"listener installed, NOTIF_ID_VALID(0) answered ENOENT; {sizes}",
    )


def _probe_wait_killable(env: _Env) -> Probe:
    nr = env.nr("seccomp")
    from . import _syscall, seccomp

    flags = seccomp.FILTER_FLAG_NEW_LISTENER | seccomp.FILTER_FLAG_WAIT_KILLABLE_RECV
    prog_bytes = ctypes.create_string_buffer(_ALLOW_ALL, len(_ALLOW_ALL))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = ctypes.create_string_buffer(
        struct.pack("@HP", len(_ALLOW_ALL) // 8, ctypes.addressof(prog_bytes))
    )
    fprog_ptr = ctypes.c_void_p(ctypes.addressof(fprog))

    def body(ctx: _Ctx) -> _Report:
        ctx.step = "prctl(NO_NEW_PRIVS)"
        _syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)
        ctx.step = "seccomp(NEW_LISTENER|WAIT_KILLABLE_RECV)"
        _syscall.syscall(nr, _SET_MODE_FILTER, flags, fprog_ptr, what=ctx.step)
        return {"ok": True}

    report = _run(body, env.timeout)
    if report.get("ok"):
        return Probe("wait_killable_recv", True, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV accepted")
    if report.get("errno") == errno.EINVAL and str(report.get("step", "")).startswith("seccomp"):
        return Probe(
            "wait_killable_recv",
            False,
            "EINVAL: flag not supported (needs kernel 5.19+); "
            "the wrapper falls back to a plain NEW_LISTENER",
        )
    return Probe(
        "wait_killable_recv", False, "could not test: " + _failure(report, _SECCOMP_REASONS)
    )


def _probe_addfd(env: _Env) -> Probe:
    """A child traps its own getppid() with USER_NOTIF and hands us the
    listener over SCM_RIGHTS (as the wrapper does); we install /dev/null in
    it with NOTIF_ADDFD and answer with that fd, so its getppid() returns a
    new fd, which the child checks is /dev/null."""
    seccomp_nr = env.nr("seccomp")
    getppid_nr = env.nr("getppid")
    assert env.arch is not None
    from . import _syscall, seccomp, wrapper

    # Arch check (else allow), then getppid -> USER_NOTIF, else allow.
    prog = b"".join(
        struct.pack("<HBBI", *insn)
        for insn in (
            (0x20, 0, 0, 4),  # ld arch
            (0x15, 0, 3, env.arch.audit_arch),  # jeq arch, else -> allow
            (0x20, 0, 0, 0),  # ld nr
            (0x15, 0, 1, getppid_nr),  # jeq getppid, else -> allow
            (0x06, 0, 0, seccomp.RET_USER_NOTIF),
            (0x06, 0, 0, seccomp.RET_ALLOW),
        )
    )
    raw_syscall = _syscall.libc.syscall
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def body(ctx: _Ctx) -> _Report:
        ctx.step = "installing a filter with NEW_LISTENER"
        fd = wrapper.install_filter(prog, seccomp_nr)
        ctx.step = "sending the listener"  # sendmsg is not trapped by this filter
        child_end.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
        os.close(fd)  # the parent's copy keeps the listener alive
        ctx.step = "the trapped getppid()"
        got = _syscall.check(raw_syscall(ctypes.c_long(getppid_nr)), ctx.step)
        ctx.step = "fstat of the injected fd"
        st = os.fstat(got)
        return {"fd": got, "rdev": st.st_rdev, "ino": st.st_ino}

    listener = devnull = -1
    try:
        with _Child(body) as child:
            child_end.close()
            deadline = time.monotonic() + env.timeout
            parent_end.settimeout(env.timeout)
            try:
                _msg, fds, _flags, _addr = socket.recv_fds(parent_end, 16, 1)
            except TimeoutError:
                fds = []
            for extra in fds[1:]:
                os.close(extra)
            if not fds:
                report = child.recv(deadline)
                return Probe("seccomp_addfd", False, _failure(report, _SECCOMP_REASONS))
            listener = fds[0]
            if not select.select([listener], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return Probe("seccomp_addfd", False, "timed out waiting for the notification")
            notif = seccomp.notif_recv(listener)
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                injected = seccomp.notif_addfd(listener, notif.id, devnull, cloexec=True)
            except OSError as e:
                seccomp.notif_send(listener, notif.id, error=errno.ENOSYS)
                why = (
                    "kernel lacks NOTIF_ADDFD (5.9+)"
                    if env.kernel < (5, 9)
                    else e.strerror or str(e)
                )
                return Probe(
                    "seccomp_addfd", False, f"{_errname(e.errno or 0)}: NOTIF_ADDFD failed: {why}"
                )
            seccomp.notif_send(listener, notif.id, val=injected)
            report = child.recv(deadline)
            want = os.fstat(devnull)
            if report.get("fd") != injected or report.get("rdev") != want.st_rdev:
                seen = _failure(report, {}) if "error" in report else report
                return Probe(
                    "seccomp_addfd",
                    False,
                    f"NOTIF_ADDFD answered fd {injected} but the child saw {seen}",
                )
            return Probe(
                "seccomp_addfd",
                True,
                "NOTIF_ADDFD injected /dev/null into a trapped getppid()",
            )
    finally:
        for fd in (listener, devnull):
            if fd >= 0:
                os.close(fd)
        parent_end.close()
        child_end.close()


# What notify mode does for the tracee besides the listener, one forked child
# for all three (each is one syscall): the steps and, when refused, why.
_HELPERS = {
    "pidfd_getfd": (
        "pidfd_getfd of a child's fd",
        "copies the tracee's socket to do an allowed bind, connect or send on it",
        {errno.EPERM: "refused (a container profile without CAP_SYS_PTRACE, Yama, or an LSM?)"},
    ),
    "unshare_fs": (
        "unshare(CLONE_FS)",
        "gives the thread that opens files for the tracee its own umask",
        {errno.EPERM: "refused (a container profile without CAP_SYS_ADMIN?)"},
    ),
    "openat2": (
        "openat2(RESOLVE_NO_SYMLINKS)",
        "opens the decided path for the tracee",
        {errno.ENOSYS: "not in this kernel (needs 5.6+), or blocked by a seccomp filter"},
    ),
}


def _probe_helper(env: _Env, name: str) -> Probe:
    if env.helpers is None:
        env.helpers = _run_helpers(env)
    what, use, reasons = _HELPERS[name]
    got = env.helpers.get(name)
    if got == 0:
        return Probe(name, True, f"{what} works")
    if isinstance(got, int):
        why = reasons.get(got) or os.strerror(got)
        return Probe(name, False, f"{_errname(got)}: {what} failed: {why}; notify mode {use}")
    return Probe(name, False, "could not test: " + _failure(env.helpers, {}))


def _run_helpers(env: _Env) -> _Report:
    from . import _syscall, files, sockets

    unshare_nr = env.nr("unshare")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC

    def getfd(ctx: _Ctx) -> None:
        # A child of ours holding a pipe end, as a tracee holds its socket.
        r, w = os.pipe()
        _syscall.prctl(_syscall.PR_SET_DUMPABLE, 1)  # inherited: see _tracee_dumpable
        child = os.fork()
        if child == 0:
            try:
                _syscall.prctl(_syscall.PR_SET_PDEATHSIG, signal.SIGKILL)
                os.close(w)
                os.read(r, 1)
            finally:
                os._exit(0)
        try:
            pidfd = os.pidfd_open(child)
            try:
                ctx.step = "pidfd_getfd"
                os.close(_syscall.syscall(sockets.NR_PIDFD_GETFD, pidfd, r, 0, what=ctx.step))
            finally:
                os.close(pidfd)
        finally:
            os.close(w)  # the child reads EOF and leaves
            os.close(r)
            os.waitpid(child, 0)

    def body(ctx: _Ctx) -> _Report:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # wait for our own child
        steps: list[tuple[str, Callable[[], object]]] = [
            ("openat2", lambda: os.close(files.openat2("/", flags, 0, files.RESOLVE_NO_SYMLINKS))),
            ("unshare_fs", lambda: _syscall.syscall(unshare_nr, files.CLONE_FS, what="unshare")),
            ("pidfd_getfd", lambda: getfd(ctx)),
        ]
        out: _Report = {}
        for name, step in steps:
            ctx.step = name
            try:
                step()
                out[name] = 0
            except OSError as e:
                out[name] = e.errno or errno.EIO
        return out

    return _run(body, env.timeout)


def _probe_landlock(env: _Env) -> Probe:
    from . import _syscall

    # landlock_create_ruleset is 444 on every architecture since the syscall
    # numbers were unified (5.1); use the table when we have one.
    nr = (env.arch.nr("landlock_create_ruleset") if env.arch else None) or 444
    try:
        abi = _syscall.syscall(nr, 0, 0, 1, what="landlock_create_ruleset(VERSION)")
    except OSError as e:
        why = {
            errno.ENOSYS: "not built into this kernel (needs 5.13+ with CONFIG_SECURITY_LANDLOCK), "
            "or blocked by a seccomp filter",
            errno.EOPNOTSUPP: "built in but disabled at boot (add landlock to the lsm= parameter)",
            errno.EPERM: "refused (a container seccomp profile?)",
        }.get(e.errno or 0, e.strerror or str(e))
        return Probe("landlock", False, f"{_errname(e.errno or 0)}: {why}")
    return Probe("landlock", True, f"ABI {abi}", abi)


def _probe_host_services() -> Probe:
    """What the supervisor asks to tell this host's services from the
    sandbox's own: a route lookup and sock_diag (inet and unix). Without them it
    still refuses (every host-local destination is closed) but cannot
    recognize the sandbox's own servers."""
    from . import netinfo

    steps: list[tuple[str, Callable[[], object]]] = [
        ("route lookup (rtnetlink)", lambda: netinfo.route_type("127.0.0.1")),
        ("inet sock_diag", lambda: netinfo.inet_sockets(0)),
        ("unix sock_diag", netinfo.unix_sockets),
    ]
    for what, step in steps:
        try:
            step()
        except OSError as e:
            why = f"{_describe(e)} ({what}): the sandbox's own servers are refused too"
            return Probe("host_services", False, why)
    return Probe("host_services", True, "route lookup and sock_diag answer")


def _ptrace_refusal(err: int, scope: int | None) -> str:
    if err not in (errno.EPERM, errno.EACCES):
        return os.strerror(err)
    yama = f"Yama ptrace_scope={scope}" if scope is not None else "no Yama"
    return (
        f"refused ({yama}; a container without CAP_SYS_PTRACE, a seccomp profile "
        "that blocks ptrace, or an LSM?)"
    )


def _probe_ptrace(env: _Env, scope: int | None) -> Probe:
    from . import _syscall, ptracer

    def body(ctx: _Ctx) -> _Report:
        # An inherited SIG_IGN would let the kernel reap the tracee behind us.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        me = os.getpid()
        ctx.step = "fork a tracee"
        _syscall.prctl(_syscall.PR_SET_DUMPABLE, 1)  # inherited: see _tracee_dumpable
        tracee = os.fork()
        if tracee == 0:
            try:
                _syscall.prctl(_syscall.PR_SET_PDEATHSIG, signal.SIGKILL)
                while os.getppid() == me:
                    signal.pause()
            finally:
                os._exit(0)
        try:
            ctx.step = "PTRACE_SEIZE"
            ptracer.seize(tracee)
            ctx.step = "waiting for the tracee's stop"
            os.kill(tracee, signal.SIGSTOP)
            _, st = os.waitpid(tracee, ptracer.WALL)
            if not (os.WIFSTOPPED(st) and os.WSTOPSIG(st) == signal.SIGSTOP):
                return {"error": f"unexpected wait status {st:#x}", "step": ctx.step}
        finally:
            os.kill(tracee, signal.SIGKILL)
            while True:  # a traced SIGKILL may still pass an exit-event stop
                try:
                    _, st = os.waitpid(tracee, ptracer.WALL)
                except ChildProcessError:
                    break
                if os.WIFEXITED(st) or os.WIFSIGNALED(st):
                    break
                ptracer.cont(tracee)
        return {"ok": True}

    report = _run(body, env.timeout)
    if report.get("ok"):
        return Probe(
            "ptrace", True, "PTRACE_SEIZE with the supervisor's options; a traced stop was reported"
        )
    err = report.get("errno")
    reasons = {err: _ptrace_refusal(err, scope)} if isinstance(err, int) and err else {}
    return Probe("ptrace", False, _failure(report, reasons))


def _probe_vm_readv(env: _Env, scope: int | None) -> Probe:
    """Read a token that only a forked child wrote, at an address we share
    with it: first with process_vm_readv, then through /proc/PID/mem."""
    from . import _syscall, procfs

    token = os.urandom(16)
    buf = ctypes.create_string_buffer(len(token))  # stays zero in the parent
    addr = ctypes.addressof(buf)

    def body(ctx: _Ctx) -> _Report:
        ctypes.memmove(addr, token, len(token))
        _syscall.prctl(_syscall.PR_SET_PDEATHSIG, signal.SIGKILL)
        ctx.send({"ready": True})
        while True:
            signal.pause()

    results: dict[str, str] = {}
    with _Child(body) as child:
        report = child.recv(time.monotonic() + env.timeout)
        if not report.get("ready"):
            return Probe("process_vm_readv", False, _failure(report, {}))
        try:
            data = procfs.MemoryReader()._vm_read(child.pid, addr, len(token))
            results["process_vm_readv"] = "ok" if data == token else "read the wrong bytes"
        except OSError as e:
            results["process_vm_readv"] = f"{_errname(e.errno or 0)}: " + _ptrace_refusal(
                e.errno or 0, scope
            )
        try:
            fd = os.open(f"/proc/{child.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = os.pread(fd, len(token), addr)
            finally:
                os.close(fd)
            results["/proc/PID/mem"] = "ok" if data == token else "read the wrong bytes"
        except OSError as e:
            results["/proc/PID/mem"] = _describe(e)
    detail = "; ".join(f"{k}: {v}" for k, v in results.items())
    for method in ("process_vm_readv", "/proc/PID/mem"):
        if results[method] == "ok":
            return Probe("process_vm_readv", True, detail, method)
    return Probe("process_vm_readv", False, detail)


def _probe_userns(env: _Env) -> Probe:
    from . import _syscall, syscalls

    unshare = _syscall.libc.unshare  # resolved here, not in the child

    def body(ctx: _Ctx) -> _Report:
        ctx.step = "unshare(CLONE_NEWUSER)"
        _syscall.check(unshare(syscalls.CLONE_NEWUSER), ctx.step)
        return {"ok": True}

    report = _run(body, env.timeout)
    facts = []
    max_ns = _read_int("/proc/sys/user/max_user_namespaces")
    for path in (
        "/proc/sys/user/max_user_namespaces",
        "/proc/sys/kernel/unprivileged_userns_clone",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ):
        value = _read_int(path)
        if value is not None:
            facts.append(f"{os.path.basename(path)}={value}")
    suffix = f" ({', '.join(facts)})" if facts else ""
    if report.get("ok"):
        return Probe("user_namespaces", True, "unshare(CLONE_NEWUSER) works" + suffix, max_ns)
    reasons = {
        errno.EPERM: "refused (unprivileged_userns_clone=0, an AppArmor restriction, "
        "or a container seccomp profile?)",
        errno.ENOSPC: "limit reached (max_user_namespaces=0 disables them)",
        errno.EUSERS: "nesting limit reached",
        errno.EINVAL: "not supported (CONFIG_USER_NS off?)",
    }
    return Probe("user_namespaces", False, _failure(report, reasons) + suffix, max_ns)
