"""The syscall catalog: every syscall the sandbox can meet, and what becomes
of it. Pure data (names, classes, reasons, the argument tests a seccomp
filter can make), no policy: ``seccomp.build_filter`` compiles it, the
supervisor's decoder dispatches on it, and docs/security.md shows it
(``python -m agentsh_ipy._linux.syscalls --markdown``).

Classes:

* decided: the filter sends the call to the supervisor (always, or for the
  arguments listed), which decodes it and asks the policy, or refuses it;
* harmless: the filter allows it; it touches only the caller's own objects
  (its memory, its fds, its own state), or only reads metadata;
* unchecked: allowed although it is not harmless for every argument; its
  sub-commands are not sorted yet (a known gap, listed as such);
* refused: the supervisor answers an errno (EPERM unless said) and audits
  ``syscall_blocked``. So is every number not in the catalog.

An entry names the x86_64 spelling and, where aarch64 differs, that one too
(the catalog is checked against both tables).
"""

from __future__ import annotations

import enum
import errno
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


class Kind(enum.Enum):
    DECIDED = "decided"
    HARMLESS = "harmless"
    UNCHECKED = "unchecked"
    REFUSED = "refused"


# What a filter rule does when its tests hold.
ALLOW = "allow"  # the kernel runs the call, nobody asked
TRAP = "trap"  # the supervisor decides (or refuses)


@dataclass(frozen=True)
class Test:
    """One test of one argument, as BPF can make it (no memory behind a
    pointer). ``wide``: all 64 bits (a pointer); otherwise the low 32 bits,
    which is all the kernel reads of an int, a pid or a flag word."""

    arg: int
    # "eq": equals value; "any": some bit of value is set; "masked": the
    # argument ANDed with mask equals value (a socket type without its flags)
    op: str
    value: int
    wide: bool = False
    label: str = ""  # how the docs name the value (e.g. "TIOCSTI")
    mask: int = 0  # "masked" only; never wide

    def holds(self, args: Sequence[int]) -> bool:
        v = args[self.arg] & (0xFFFFFFFFFFFFFFFF if self.wide else 0xFFFFFFFF)
        if self.op == "masked":
            return v & self.mask == self.value
        return v == self.value if self.op == "eq" else bool(v & self.value)

    def subject(self, names: Sequence[str]) -> str:
        """What is tested: the argument's name, masked where it is."""
        what = names[self.arg] if self.arg < len(names) else f"arg{self.arg}"
        return f"{what} & {self.mask:#x}" if self.op == "masked" else what

    def value_text(self) -> str:
        return self.label or (hex(self.value) if self.value > 9 else str(self.value))

    def text(self, names: Sequence[str]) -> str:
        verb = "has" if self.op == "any" else "="
        return f"{self.subject(names)} {verb} {self.value_text()}"


@dataclass(frozen=True)
class Rule:
    """When every test holds, ``action``; rules are tried in order."""

    action: str
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class Syscall:
    name: str
    kind: Kind
    group: str  # the row it is shown in, with others sharing group and reason
    reason: str
    rules: tuple[Rule, ...] = ()  # argument tests made by the filter itself
    otherwise: str = ""  # with rules: the action when none holds
    args: tuple[str, ...] = ()  # argument names, for the docs
    errno: int = errno.EPERM  # what a refusal answers
    filter_errno: int | None = None  # answered by the filter itself, unaudited
    aliases: tuple[str, ...] = ()  # the same call under another ABI's name

    def action(self, args: Sequence[int]) -> str:
        """What the filter does with this call and these arguments."""
        if self.filter_errno is not None:
            return "errno"
        for rule in self.rules:
            if all(t.holds(args) for t in rule.tests):
                return rule.action
        if self.rules:
            return self.otherwise
        return ALLOW if self.kind in (Kind.HARMLESS, Kind.UNCHECKED) else TRAP


# ---------------------------------------------------------------------------
# Constants the argument tests use (the same on x86_64 and aarch64).

CLONE_THREAD = 0x00010000
CLONE_NEWUSER = 0x10000000
CLONE_UNTRACED = 0x00800000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
# _IOW('f', 2, long), _IOW('f', 2, int), _IOW('X', 32, struct fsxattr)
FS_IOC_SETFLAGS = 0x40086602
FS_IOC32_SETFLAGS = 0x40046602
FS_IOC_FSSETXATTR = 0x401C5820
MADV_HWPOISON = 100
MADV_SOFT_OFFLINE = 101
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_SEQPACKET = 5
SOCK_PACKET = 10
SOCK_TYPE_MASK = 0xF  # the rest of socket()'s type: SOCK_NONBLOCK, SOCK_CLOEXEC
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4


def _t(arg: int, op: str, value: int, label: str = "", wide: bool = False) -> Test:
    return Test(arg, op, value, wide, label)


def _masked(arg: int, mask: int, value: int, label: str = "") -> Test:
    return Test(arg, "masked", value, False, label, mask)


_CATALOG: list[Syscall] = []


def _add(
    kind: Kind,
    group: str,
    reason: str,
    names: str,
    *,
    rules: tuple[Rule, ...] = (),
    otherwise: str = "",
    args: tuple[str, ...] = (),
    err: int = errno.EPERM,
    filter_errno: int | None = None,
    aliases: tuple[str, ...] = (),
) -> None:
    """Entries for ``names`` (space-separated) sharing one reason."""
    for name in names.split():
        _CATALOG.append(
            Syscall(name, kind, group, reason, rules, otherwise, args, err, filter_errno, aliases)
        )


D, H, U, R = Kind.DECIDED, Kind.HARMLESS, Kind.UNCHECKED, Kind.REFUSED

# -- decided: the supervisor reads the arguments and asks the policy ---------
_add(
    D,
    "files",
    "the file rules, on the path the kernel will reach (opens emulated in notify mode)",
    "open openat openat2 creat truncate",
)
_add(
    D,
    "files",
    "the file rules (delete, rename, link, mkdir); done by the supervisor in the pinned parents",
    "unlink unlinkat rename renameat renameat2 link linkat symlink symlinkat mkdir mkdirat rmdir",
)
_add(
    D,
    "files",
    "the file rules (chmod, chown); by path done by the supervisor",
    "chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat",
)
_add(
    D,
    "files",
    "a `create` under the file rules: a FIFO, socket or regular file, done by the supervisor; "
    "device nodes are refused",
    "mknod mknodat",
)
_add(
    D,
    "files",
    "times are a `write` under the file rules (by path done by the supervisor); "
    "issue 17 item 2 may give metadata its own operation",
    "utime utimes futimesat utimensat",
)
_add(D, "exec", "the command rules, on the path and argv", "execve execveat")
_add(
    D,
    "network",
    "the network and unix-socket rules, on the address",
    "connect bind sendmsg sendmmsg",
)
_add(
    D,
    "network",
    "the network and unix-socket rules, on the destination; without one "
    "(a connected socket) the kernel alone",
    "sendto",
    rules=(Rule(ALLOW, (_t(4, "eq", 0, "NULL", wide=True),)),),
    otherwise=TRAP,
    args=("fd", "buf", "len", "flags", "dest_addr"),
)
_add(
    D,
    "signals",
    "the signal rules: the target must be inside the sandbox",
    "kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal",
)
_add(D, "processes", "counted against limits.max_processes", "fork vfork")
_add(
    D,
    "processes",
    "a new thread needs no decision; a process is counted; a new user "
    "namespace and CLONE_UNTRACED (a child the tracer never sees, which would outlive the "
    "command) are refused",
    "clone",
    rules=(
        Rule(
            TRAP, (_t(0, "any", CLONE_NEWUSER | CLONE_UNTRACED, "CLONE_NEWUSER or CLONE_UNTRACED"),)
        ),
        Rule(ALLOW, (_t(0, "any", CLONE_THREAD, "CLONE_THREAD"),)),
    ),
    otherwise=TRAP,
    args=("flags",),
)
_add(
    D,
    "processes",
    "a new user namespace is refused; other namespaces are allowed (root "
    "may unshare a network namespace: a known gap)",
    "unshare",
    rules=(Rule(TRAP, (_t(0, "any", CLONE_NEWUSER, "CLONE_NEWUSER"),)),),
    otherwise=ALLOW,
    args=("flags",),
)
_add(
    D,
    "processes",
    "a query only; any other persona changes the ABI and is refused",
    "personality",
    rules=(Rule(ALLOW, (_t(0, "eq", 0xFFFFFFFF, "0xffffffff"),)),),
    otherwise=TRAP,
    args=("persona",),
)
_add(
    D,
    "limits and priorities",
    "limits of the sandbox's own processes, or a read; a process outside, the supervisor "
    "first, is refused (RLIMIT_CPU 0 would kill it)",
    "prlimit64",
    rules=(Rule(ALLOW, (_t(0, "eq", 0),)), Rule(ALLOW, (_t(2, "eq", 0, "NULL", wide=True),))),
    otherwise=TRAP,
    args=("pid", "resource", "new_limit"),
)
_add(
    D,
    "limits and priorities",
    "the sandbox's own processes; a process outside is refused",
    "sched_setparam sched_setscheduler sched_setaffinity sched_setattr migrate_pages move_pages",
    rules=(Rule(ALLOW, (_t(0, "eq", 0),)),),
    otherwise=TRAP,
    args=("pid",),
)
_add(
    D,
    "limits and priorities",
    "the sandbox's own processes; a process group, a user or a process outside is refused",
    "setpriority",
    rules=(Rule(ALLOW, (_t(0, "eq", PRIO_PROCESS, "PRIO_PROCESS"), _t(1, "eq", 0))),),
    otherwise=TRAP,
    args=("which", "who"),
)
_add(
    D,
    "limits and priorities",
    "the sandbox's own processes; a process group, a user or a process outside is refused",
    "ioprio_set",
    rules=(Rule(ALLOW, (_t(0, "eq", IOPRIO_WHO_PROCESS, "IOPRIO_WHO_PROCESS"), _t(1, "eq", 0))),),
    otherwise=TRAP,
    args=("which", "who"),
)
_add(
    D,
    "ioctl requests",
    "typing into the terminal (an approval prompt, the user's shell) and setting inode "
    "flags or project ids (`chattr`, on any file the caller can open, read-only too) are "
    "refused; other requests are allowed unchecked (a known gap)",
    "ioctl",
    rules=(
        Rule(TRAP, (_t(1, "eq", TIOCSTI, "TIOCSTI"),)),
        Rule(TRAP, (_t(1, "eq", TIOCLINUX, "TIOCLINUX"),)),
        Rule(TRAP, (_t(1, "eq", FS_IOC_SETFLAGS, "FS_IOC_SETFLAGS"),)),
        Rule(TRAP, (_t(1, "eq", FS_IOC32_SETFLAGS, "FS_IOC32_SETFLAGS"),)),
        Rule(TRAP, (_t(1, "eq", FS_IOC_FSSETXATTR, "FS_IOC_FSSETXATTR"),)),
    ),
    otherwise=ALLOW,
    args=("fd", "request"),
)
_add(
    D,
    "memory",
    "hardware-poisoning a page (root) would poison a shared page-cache page "
    "for every process: refused; other advice affects only the caller's memory",
    "madvise",
    rules=(
        Rule(TRAP, (_t(2, "eq", MADV_HWPOISON, "MADV_HWPOISON"),)),
        Rule(TRAP, (_t(2, "eq", MADV_SOFT_OFFLINE, "MADV_SOFT_OFFLINE"),)),
    ),
    otherwise=ALLOW,
    args=("addr", "length", "advice"),
)
_add(
    D,
    "network",
    "the families and types whose traffic the address decisions see: unix sockets; "
    "IPv4 and IPv6 streams, datagrams (UDP, and ping sockets as "
    "`net.ipv4.ping_group_range` allows) and sequenced packets; netlink for routing "
    "(name lookups, `ip addr`; its messages are not inspected) and socket "
    "diagnostics. Refused: raw and packet sockets, other netlink protocols (audit, "
    "netfilter, xfrm, generic, uevents, ...), every other family (vsock, key, "
    "bluetooth, alg, xdp, ...)",
    "socket",
    rules=(
        Rule(ALLOW, (_t(0, "eq", AF_UNIX, "AF_UNIX"),)),
        *(
            Rule(
                ALLOW,
                (_t(0, "eq", family, fname), _masked(1, SOCK_TYPE_MASK, kind, kname)),
            )
            for family, fname in ((AF_INET, "AF_INET"), (AF_INET6, "AF_INET6"))
            for kind, kname in (
                (SOCK_STREAM, "SOCK_STREAM"),
                (SOCK_DGRAM, "SOCK_DGRAM"),
                (SOCK_SEQPACKET, "SOCK_SEQPACKET"),
            )
        ),
        Rule(
            ALLOW,
            (_t(0, "eq", AF_NETLINK, "AF_NETLINK"), _t(2, "eq", NETLINK_ROUTE, "NETLINK_ROUTE")),
        ),
        Rule(
            ALLOW,
            (
                _t(0, "eq", AF_NETLINK, "AF_NETLINK"),
                _t(2, "eq", NETLINK_SOCK_DIAG, "NETLINK_SOCK_DIAG"),
            ),
        ),
    ),
    otherwise=TRAP,
    args=("domain", "type", "protocol"),
)
_add(
    D,
    "network",
    "a connected pair of unix sockets, the process's own; other families are refused",
    "socketpair",
    rules=(Rule(ALLOW, (_t(0, "eq", AF_UNIX, "AF_UNIX"),)),),
    otherwise=TRAP,
    args=("domain", "type", "protocol"),
)
_add(
    D,
    "processes",
    "more filters only restrict the caller; a filter with its own listener "
    "is refused (in ptrace mode its USER_NOTIF answer would outrank our TRACE)",
    "seccomp",
    rules=(
        Rule(
            TRAP,
            (
                _t(0, "eq", SECCOMP_SET_MODE_FILTER, "SET_MODE_FILTER"),
                _t(1, "any", SECCOMP_FILTER_FLAG_NEW_LISTENER, "NEW_LISTENER"),
            ),
        ),
    ),
    otherwise=ALLOW,
    args=("operation", "flags"),
)

# -- harmless: the filter allows them -----------------------------------------
_add(
    H,
    "fds",
    "reads, writes and controls fds the process already holds; the open, "
    "connect or bind that made each was decided",
    "read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 close "
    "close_range dup dup2 dup3 lseek sendfile splice tee vmsplice copy_file_range "
    "ftruncate fallocate fsync fdatasync sync_file_range readahead fadvise64 flock "
    "getdents getdents64 recvfrom recvmsg recvmmsg accept accept4 shutdown getsockname "
    "getpeername getsockopt cachestat io_setup io_destroy io_submit io_cancel "
    "io_getevents io_pgetevents mq_timedsend mq_timedreceive mq_notify mq_getsetattr",
)
_add(
    H,
    "fds",
    "a listening socket on an address its bind decided (without a bind the "
    "kernel picks a port on the wildcard address; inbound traffic is not guarded)",
    "listen",
)
_add(
    H,
    "fds",
    "new fds of the process's own: pipes, events, timers, epoll, inotify, memory files",
    "pipe pipe2 eventfd eventfd2 signalfd signalfd4 "
    "timerfd_settime timerfd_gettime epoll_create epoll_create1 epoll_ctl epoll_wait "
    "epoll_pwait epoll_pwait2 poll ppoll select pselect6 inotify_init inotify_init1 "
    "inotify_add_watch inotify_rm_watch memfd_create memfd_secret",
)
_add(
    H,
    "fds",
    "a timer fd of the process's own (aarch64 names it timerfd_create)",
    "timerfd",
    aliases=("timerfd_create",),
)
_add(
    H,
    "fds",
    "a handle on a process; everything done through it (a signal, its fds, its "
    "namespaces) is decided or refused",
    "pidfd_open",
)
_add(
    H,
    "memory",
    "the caller's own address space",
    "mmap mprotect munmap mremap msync mincore brk remap_file_pages mlock mlock2 munlock "
    "mlockall munlockall mbind set_mempolicy get_mempolicy set_mempolicy_home_node "
    "pkey_mprotect pkey_alloc pkey_free mseal map_shadow_stack membarrier",
)
_add(
    H,
    "threads and waiting",
    "the caller's threads, futexes, signal handling and children",
    "futex futex_waitv futex_wake futex_wait futex_requeue set_robust_list set_tid_address "
    "rseq set_thread_area get_thread_area arch_prctl rt_sigaction rt_sigprocmask "
    "rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend sigaltstack pause "
    "restart_syscall sched_yield nanosleep clock_nanosleep alarm getitimer setitimer "
    "timer_create timer_settime timer_gettime timer_getoverrun timer_delete wait4 waitid "
    "exit exit_group",
)
_add(
    H,
    "own state",
    "the caller's own state: cwd, umask, credentials it may already use, "
    "session and group, limits, capabilities (only ever lowered), Landlock (only ever "
    "narrowed), LSM attributes",
    "chdir fchdir umask setuid setgid setreuid setregid "
    "setresuid setresgid setfsuid setfsgid setgroups setpgid setsid setrlimit capset "
    "landlock_create_ruleset landlock_add_rule landlock_restrict_self lsm_set_self_attr",
)
_add(
    H,
    "reads",
    "reads only: ids, time, system and scheduling information anyone may read",
    "getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid getgroups "
    "getpgid getpgrp getsid capget getrlimit getrusage times sysinfo uname getcpu "
    "getrandom gettimeofday time clock_gettime clock_getres getpriority ioprio_get "
    "sched_getparam sched_getscheduler sched_getaffinity sched_getattr "
    "sched_get_priority_max sched_get_priority_min sched_rr_get_interval lsm_get_self_attr "
    "lsm_list_modules",
)
_add(
    H,
    "reads",
    "metadata reads (names, sizes, times, xattrs of any file are visible: a "
    "documented non-guarantee)",
    "stat fstat lstat newfstatat statx statfs fstatfs ustat "
    "sysfs access faccessat faccessat2 readlink readlinkat getcwd getxattr lgetxattr "
    "fgetxattr getxattrat listxattr llistxattr flistxattr listxattrat file_getattr "
    "statmount listmount",
)
_add(H, "reads", "flushes dirty data to disk; changes no content", "sync syncfs")
_add(
    H,
    "threads and waiting",
    "x86_64: called by the kernel's own uprobe trampolines; from anywhere else the kernel "
    "kills the caller",
    "uretprobe uprobe",
)

# -- unchecked: allowed, not proven harmless for every argument ----------------
_add(
    U,
    "sub-commands",
    "option levels are not sorted yet (`SO_BINDTODEVICE`, `IP_PKTINFO`, ...)",
    "setsockopt",
)
_add(
    U,
    "sub-commands",
    "`F_SETOWN` + `F_SETSIG` + `O_ASYNC` signal a process the caller "
    "names, outside the sandbox too; commands are not sorted yet",
    "fcntl",
)
_add(U, "sub-commands", "options are not sorted yet (most touch only the caller)", "prctl")

# -- refused -------------------------------------------------------------------
_add(
    R,
    "other processes",
    "reads, writes or takes over another process (the supervisor first)",
    "ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp process_madvise "
    "process_mrelease get_robust_list",
)
_add(
    R,
    "mounts and namespaces",
    "changes what paths mean, for the caller or everyone (decisions are made on paths)",
    "mount umount2 pivot_root chroot fsopen fsmount "
    "fsconfig fspick move_mount open_tree open_tree_attr mount_setattr setns",
)
_add(
    R,
    "file metadata",
    "xattrs and ACLs of any file the caller can name (an ACL changes "
    "who may read it); EOPNOTSUPP, so `cp -a` and `tar` fall back to chmod as on a file "
    "system without xattrs. Issue 17 item 2 makes them file decisions",
    "setxattr lsetxattr fsetxattr setxattrat removexattr lremovexattr fremovexattr removexattrat",
    err=errno.EOPNOTSUPP,
)
_add(
    R,
    "file metadata",
    "inode flags and project ids by path (`chattr`); issue 17 item 2",
    "file_setattr",
)
_add(
    R,
    "file metadata",
    "files by handle, past every path check",
    "name_to_handle_at open_by_handle_at lookup_dcookie",
)
_add(
    R,
    "host IPC",
    "System V IPC and POSIX message queues are named by key or name in the "
    "host's namespace: another process's shared memory, semaphores, queues",
    "shmget shmat shmctl shmdt semget semop semtimedop semctl msgget msgsnd msgrcv msgctl "
    "mq_open mq_unlink",
)
_add(
    R,
    "the host",
    "changes the whole machine: clock, host name, swap, accounting, quotas, "
    "power, the terminal's session",
    "settimeofday clock_settime adjtimex clock_adjtime "
    "sethostname setdomainname swapon swapoff acct quotactl quotactl_fd reboot vhangup "
    "syslog",
)
_add(
    R,
    "the kernel",
    "loads code into the kernel or opens its internals",
    "kexec_load kexec_file_load init_module finit_module delete_module bpf "
    "perf_event_open userfaultfd keyctl add_key request_key iopl ioperm fanotify_init "
    "fanotify_mark io_uring_setup io_uring_enter io_uring_register",
)
_add(
    R,
    "the kernel",
    "no ordinary program needs it; kernel attack surface (as in Docker's default profile)",
    "modify_ldt uselib",
)
_add(
    R,
    "not implemented",
    "not implemented by Linux",
    "_sysctl create_module "
    "get_kernel_syms query_module nfsservctl getpmsg putpmsg afs_syscall tuxcall security "
    "vserver epoll_ctl_old epoll_wait_old",
)
_add(
    R,
    "processes",
    "its flags are in memory the filter cannot read: answered ENOSYS by the "
    "filter itself (not audited), so libc falls back to clone",
    "clone3",
    filter_errno=errno.ENOSYS,
    err=errno.ENOSYS,
)


def _by_name() -> dict[str, Syscall]:
    out: dict[str, Syscall] = {}
    for s in _CATALOG:
        for name in (s.name, *s.aliases):
            if name in out:
                raise ValueError(f"{name} is in the syscall catalog twice")
            out[name] = s
    return out


CATALOG: dict[str, Syscall] = _by_name()  # every name, aliases too
# A number not in the catalog (a syscall newer than it): refused as "not
# here", which libc and runtimes take as the cue to fall back to an older
# call (EPERM would fail them; runc moved to ENOSYS for the same reason).
UNKNOWN_ERRNO = errno.ENOSYS


def get(name: str) -> Syscall | None:
    return CATALOG.get(name)


def names(*kinds: Kind) -> list[str]:
    return [n for n, s in CATALOG.items() if s.kind in kinds]


# ---------------------------------------------------------------------------
# The table in docs/security.md

MARK_BEGIN = (
    "<!-- syscall-table: generated by `python -m agentsh_ipy._linux.syscalls --markdown` -->"
)
MARK_END = "<!-- end of syscall-table -->"
_ERRNO_NAME = {errno.EOPNOTSUPP: "EOPNOTSUPP"}  # errorcode says ENOTSUP, the same number
_LABEL = {
    Kind.DECIDED: "decided",
    Kind.HARMLESS: "harmless",
    Kind.UNCHECKED: "**unchecked** (allowed: a gap)",
    Kind.REFUSED: "refused",
}


def _one_more_value(prev: Rule, rule: Rule) -> bool:
    """``rule`` is ``prev`` with another value for its last equality test."""
    *head, last = rule.tests
    *prev_head, prev_last = prev.tests
    return (
        rule.action == prev.action
        and head == prev_head
        and last.op in ("eq", "masked")
        and (last.arg, last.op, last.mask, last.wide)
        == (prev_last.arg, prev_last.op, prev_last.mask, prev_last.wide)
    )


def _filter_text(s: Syscall) -> str:
    if s.filter_errno is not None:
        return f"`{errno.errorcode[s.filter_errno]}` (the filter)"
    if not s.rules:
        return "allowed" if s.action([0] * 6) == ALLOW else "supervisor"
    parts: list[str] = []
    prev: Rule | None = None
    for rule in s.rules:
        verb = "allowed" if rule.action == ALLOW else "supervisor"
        if prev is not None and _one_more_value(prev, rule):
            parts[-1] += f", {rule.tests[-1].value_text()}"  # one of several values
        else:
            parts.append(f"{verb} when " + " and ".join(t.text(s.args) for t in rule.tests))
        prev = rule
    parts.append(f"else {'allowed' if s.otherwise == ALLOW else 'supervisor'}")
    return "; ".join(parts)


def _rows(entries: Iterable[Syscall]) -> Iterator[tuple[Kind, str, list[str], str, str]]:
    """Consecutive entries sharing kind, group, reason and filter action: one row."""
    rows: dict[tuple[Kind, str, str, str, int], list[str]] = {}
    for s in entries:
        rows.setdefault((s.kind, s.group, s.reason, _filter_text(s), s.errno), []).append(s.name)
    order = list(Kind)
    for (kind, group, reason, ftext, err), members in sorted(
        rows.items(), key=lambda kv: order.index(kv[0][0])
    ):
        if kind is Kind.REFUSED and err != errno.EPERM and ftext == "supervisor":
            ftext = f"supervisor, `{_ERRNO_NAME.get(err, errno.errorcode[err])}`"
        yield kind, group, members, ftext, reason


def markdown() -> str:
    """The table docs/security.md carries between its markers."""
    lines = [
        MARK_BEGIN,
        "",
        "| class | what | syscalls | the filter | why |",
        "|---|---|---|---|---|",
    ]
    for kind, group, members, ftext, reason in _rows(_CATALOG):
        calls = ", ".join(f"`{m}`" for m in members)
        lines.append(f"| {_LABEL[kind]} | {group} | {calls} | {ftext} | {reason} |")
    lines.append(
        "| refused | anything else | every number not above (a syscall newer than this "
        "table, an unassigned number) | supervisor | unknown, so not allowed: "
        f"`{errno.errorcode[UNKNOWN_ERRNO]}`, audited like the others |"
    )
    lines += [
        "",
        "Before the table: a call of another ABI (i386 on x86_64, x32) kills the process. "
        '"supervisor": the call is trapped (user-notify, or `SECCOMP_RET_TRACE` in ptrace '
        "mode) and the decoder answers it; a refused call is audited `syscall_blocked`, rule "
        "`seccomp-blocklist`, and answers `EPERM` unless the row says otherwise.",
        "",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def replace_table(text: str) -> str:
    """``text`` (docs/security.md) with the table between the markers made anew."""
    begin, end = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END) + 1
    return text[:begin] + markdown() + text[end:]


def main(argv: Sequence[str]) -> int:
    """``--markdown``: print the table; ``--update FILE``: rewrite it in FILE."""
    if list(argv) == ["--markdown"]:
        sys.stdout.write(markdown())
        return 0
    if len(argv) == 2 and argv[0] == "--update":
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
        with open(argv[1], "w", encoding="utf-8") as f:
            f.write(replace_table(text))
        return 0
    print(
        "usage: python -m agentsh_ipy._linux.syscalls --markdown | --update FILE", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
