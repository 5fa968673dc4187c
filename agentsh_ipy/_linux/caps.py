"""The capabilities a sandboxed process keeps, by name (the wrapper drops
the rest before the filter exists: wrapper.drop_capabilities)."""

from __future__ import annotations

import ctypes

from . import wrapper
from ._syscall import check, libc

# linux/capability.h, the ones the sandbox keeps.
NAMES = {
    0: "CAP_CHOWN",
    1: "CAP_DAC_OVERRIDE",
    3: "CAP_FOWNER",
    4: "CAP_FSETID",
    5: "CAP_KILL",
    6: "CAP_SETGID",
    7: "CAP_SETUID",
    8: "CAP_SETPCAP",
    10: "CAP_NET_BIND_SERVICE",
}
assert set(NAMES) == set(wrapper.KEPT_CAPS)


def _status_mask(field: str, status: str) -> int:
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    return 0


def kept(pid: int | str = "self") -> list[str]:
    """What a sandbox started from ``pid`` runs with: the kept capabilities
    that process holds (none for an unprivileged user)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return []
    held = _status_mask("CapPrm", status) & _status_mask("CapBnd", status)
    return [NAMES[c] for c in wrapper.KEPT_CAPS if held >> c & 1]


CAP_LINUX_IMMUTABLE = 9
CAP_SYS_ADMIN = 21


def holds(pid: int, cap: int) -> bool:
    """Whether ``pid`` has ``cap`` in its effective set. An operation the
    supervisor performs for the sandbox runs with the supervisor's own
    capabilities: one that needs a capability outside the kept set must
    first check the sandboxed process holds it (unreadable: it does not)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return bool(_status_mask("CapEff", f.read()) >> cap & 1)
    except OSError:
        return False


CAP_SYS_PTRACE = 19


def _yama_admin_only() -> bool:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return f.read().strip() == "2"
    except OSError:
        return False


def lower_effective() -> None:
    """Make this thread's effective set the kept capabilities (those it
    holds); the threads it starts afterwards inherit it. What the supervisor
    does for the sandbox (an emulated open, rename, chmod, ioctl, connect) it
    then does with no capability the sandbox lacks, and its own credentials
    equal a root caller's where it compares them. The permitted set stays:
    the ptrace access checks (attach, process_vm_readv, pidfd_getfd) use it.
    Under Yama ptrace_scope 2 an attach needs CAP_SYS_PTRACE in effect, so
    that one is kept as well there."""
    header = wrapper._CapHeader(wrapper._CAP_VERSION_3, 0)
    data = (wrapper._CapData * 2)()
    check(libc.capget(ctypes.byref(header), data), "capget")
    keep = wrapper.KEPT_MASK | (1 << CAP_SYS_PTRACE if _yama_admin_only() else 0)
    for i in (0, 1):
        data[i].effective &= keep >> 32 * i & 0xFFFFFFFF
    check(libc.capset(ctypes.byref(header), data), "capset")
