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

A refusal that needs no decision (a refused row, an argument no rule
allows) is the filter's REFUSE: SECCOMP_RET_TRAP, which outranks the ERRNO
of a container's filter installed before ours, so the tracer still sees
the SIGSYS, audits it and answers the errno (supervisor/_sigsys.py).

An entry names the x86_64 spelling and, where aarch64 differs, that one too
(the catalog is checked against both tables).
"""

from __future__ import annotations

import enum
import errno
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from . import subcommands as sc


class Kind(enum.Enum):
    DECIDED = "decided"
    HARMLESS = "harmless"
    UNCHECKED = "unchecked"
    REFUSED = "refused"


# What a filter rule does when its tests hold.
ALLOW = "allow"  # the kernel runs the call, nobody asked
TRAP = "trap"  # the supervisor decides (or refuses)
REFUSE = "refuse"  # always refused: SIGSYS to the tracer, which audits and answers


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
class Sub:
    """One class of a call's sub-commands (ioctl requests, fcntl commands,
    prctl options, setsockopt levels): one row of the table. Its rules come
    before the next class's; a sub-command no class names is refused with
    the call's ``errno``."""

    what: str  # the row's name, e.g. "terminal"
    kind: Kind  # HARMLESS: the filter allows; DECIDED: the decoder; REFUSED
    reason: str
    rules: tuple[Rule, ...]
    errno: int = errno.EPERM  # what a refused class answers


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
    subs: tuple[Sub, ...] = ()  # sub-command classes; ``rules`` is made of theirs
    sub_key: str = ""  # the audit field naming the sub-command ("request", ...)

    def sub(self, args: Sequence[int]) -> tuple[Sub | None, str]:
        """The class of this call's sub-command and the sub-command's name
        (hex when unknown), decided as the filter decides: first rule wins."""
        for sub in self.subs:
            for rule in sub.rules:
                if all(t.holds(args) for t in rule.tests):
                    named = [t for t in rule.tests if t.label] or list(rule.tests)
                    return sub, named[-1].value_text()
        return None, hex(args[self.subs[0].rules[0].tests[-1].arg] & 0xFFFFFFFF)

    def action(self, args: Sequence[int]) -> str:
        """What the filter does with this call and these arguments."""
        if self.filter_errno is not None:
            return "errno"
        for rule in self.rules:
            if all(t.holds(args) for t in rule.tests):
                return rule.action
        if self.rules:
            return self.otherwise
        if self.kind is Kind.REFUSED:
            return REFUSE
        return ALLOW if self.kind in (Kind.HARMLESS, Kind.UNCHECKED) else TRAP

    def refusal_errno(self, rule: Rule | None) -> int:
        """The errno a REFUSE answers: that of the sub-command class ``rule``
        belongs to, else the call's (``otherwise``, a row refused whole)."""
        for sub in self.subs:
            if rule in sub.rules:
                return sub.errno
        return self.errno


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
    subs: tuple[Sub, ...] = (),
    sub_key: str = "",
) -> None:
    """Entries for ``names`` (space-separated) sharing one reason. With
    ``subs``, the filter's rules are the classes' in order, and a
    sub-command none names is refused."""
    if subs:
        rules = tuple(r for sub in subs for r in sub.rules)
        otherwise = REFUSE
    for name in names.split():
        _CATALOG.append(
            Syscall(
                name,
                kind,
                group,
                reason,
                rules,
                otherwise,
                args,
                err,
                filter_errno,
                aliases,
                subs,
                sub_key,
            )
        )


def _one_of(arg: int, values: dict[str, int], action: str = ALLOW) -> tuple[Rule, ...]:
    """One rule per named value of ``arg`` (a sub-command number)."""
    return tuple(Rule(action, (_t(arg, "eq", v, k),)) for k, v in values.items())


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
    "the file rules (chmod, chown), done by the supervisor: by path on the decided path, "
    "by fd on its copy of the fd (pidfd_getfd), whose file is the one decided",
    "chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat",
)
_add(
    D,
    "files",
    "xattrs by name: a POSIX ACL (`system.posix_acl_*`) is a `chmod`, a `user.*` "
    "attribute a `write`; `security.*` (file capabilities, LSM labels), `trusted.*` and "
    "other `system.*` are refused with EOPNOTSUPP. Done by the supervisor with the name "
    "and value read once, on the decided path or its copy of the fd",
    "setxattr lsetxattr fsetxattr setxattrat removexattr lremovexattr fremovexattr removexattrat",
)
_add(
    D,
    "files",
    "inode flags and project ids by path (`chattr`): a `chmod`, done by the supervisor",
    "file_setattr",
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
    "times are a `write` under the file rules, done by the supervisor: by path on the "
    "decided path, by fd (`futimens`) on its copy of the fd",
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
    "a new thread needs no decision; a process is counted; a new namespace "
    "(a thread may ask for one too) and CLONE_UNTRACED (a child the tracer never sees, "
    "which would outlive the command) are refused",
    "clone",
    rules=(
        Rule(
            REFUSE,
            (_t(0, "any", sc.CLONE_NEW_CLONE | CLONE_UNTRACED, "CLONE_NEW* or CLONE_UNTRACED"),),
        ),
        Rule(ALLOW, (_t(0, "any", CLONE_THREAD, "CLONE_THREAD"),)),
    ),
    otherwise=TRAP,
    args=("flags",),
)
_add(
    D,
    "processes",
    "the caller's own fd table, fs context and semaphore undo list; every new namespace "
    "(mount, UTS, IPC, network, pid, cgroup, time, user) is refused, for root too: one "
    "would change what paths, addresses and host names the decisions are about",
    "unshare",
    rules=(Rule(REFUSE, (_t(0, "any", sc.NEW_NAMESPACES, "CLONE_NEW*"),)),),
    otherwise=ALLOW,
    args=("flags",),
)
_add(
    D,
    "processes",
    "a query only; any other persona changes the ABI and is refused",
    "personality",
    rules=(Rule(ALLOW, (_t(0, "eq", 0xFFFFFFFF, "0xffffffff"),)),),
    otherwise=REFUSE,
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
    "any other request (a device's, a file system's, a driver's) is refused with ENOTTY, "
    "what a program expects of a file that does not support it",
    "ioctl",
    subs=(
        Sub(
            "refused",
            R,
            "typing into a terminal (an approval prompt, the user's shell), the console",
            _one_of(1, sc.IOCTL_REFUSED, REFUSE),
        ),
        Sub(
            "pty peer",
            D,
            "`TIOCGPTPEER` opens a pty's other end without a path: allowed on a master the "
            "caller opened from `/dev/ptmx` (its own pty, as `openpty` and `pexpect` use it), "
            "refused on anything else",
            (Rule(TRAP, (_t(1, "eq", sc.TIOCGPTPEER, "TIOCGPTPEER"),)),),
        ),
        Sub(
            "controlling terminal",
            D,
            "`TIOCSCTTY` 1 with `CAP_SYS_ADMIN` steals the terminal from the session that "
            "has it (the user's shell outside): refused to a caller that has it; without it "
            "the 1 means nothing (`script` passes it) and the call is allowed",
            (Rule(TRAP, (_t(1, "eq", sc.TIOCSCTTY, "TIOCSCTTY"), _t(2, "eq", 1))),),
        ),
        Sub(
            "terminal",
            H,
            "modes, size, foreground group, locks, breaks and the pty number of a terminal "
            "the caller holds (`stty`, `script`, job control, readline)",
            (
                *_one_of(1, sc.IOCTL_TERMINAL),
                Rule(ALLOW, (_t(1, "eq", sc.TIOCSCTTY, "TIOCSCTTY"),)),
            ),
        ),
        Sub(
            "fds",
            H,
            "the caller's own fds: bytes waiting, non-blocking, close-on-exec, async mode and "
            "its owner's reading",
            _one_of(1, sc.IOCTL_FD),
        ),
        Sub(
            "sockets",
            H,
            "reads of the caller's socket and of the interfaces' names, addresses and flags "
            "(`ip addr`, `if_nameindex`)",
            _one_of(1, sc.IOCTL_SOCKET),
        ),
        Sub(
            "files",
            H,
            "reads of a file's flags, extents, block size and file system's label, and "
            "clones or dedupes between fds the caller opened (`cp --reflink`)",
            _one_of(1, sc.IOCTL_FILE),
        ),
        Sub(
            "seccomp listener",
            H,
            "the wrapper's check of the listener it hands over, made with the filter on and "
            "no supervisor yet; the command never holds a listener (it is closed before the "
            "command runs, and a filter with its own listener is refused)",
            _one_of(1, sc.IOCTL_LISTENER),
        ),
        Sub(
            "signal owner",
            D,
            "who gets SIGIO/SIGURG, as `F_SETOWN`: a process or group of the sandbox, else "
            "refused; the pid is read once and set by the supervisor on its copy of the socket",
            _one_of(1, sc.IOCTL_OWNER, TRAP),
        ),
        Sub(
            "inode flags",
            D,
            "setting inode flags or project ids (`chattr`) is a `chmod` of the fd's file, "
            "done by the supervisor on its copy of the fd",
            _one_of(1, sc.IOCTL_INODE, TRAP),
        ),
    ),
    sub_key="request",
    err=errno.ENOTTY,
    args=("fd", "request", "arg"),
)
_add(
    D,
    "memory",
    "hardware-poisoning a page (root) would poison a shared page-cache page "
    "for every process: refused; other advice affects only the caller's memory",
    "madvise",
    rules=(
        Rule(REFUSE, (_t(2, "eq", MADV_HWPOISON, "MADV_HWPOISON"),)),
        Rule(REFUSE, (_t(2, "eq", MADV_SOFT_OFFLINE, "MADV_SOFT_OFFLINE"),)),
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
    "(name lookups, `ip addr`; changes sent through trapped calls are refused) and socket "
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
    otherwise=REFUSE,
    args=("domain", "type", "protocol"),
)
_add(
    D,
    "network",
    "a connected pair of unix sockets, the process's own; other families are refused",
    "socketpair",
    rules=(Rule(ALLOW, (_t(0, "eq", AF_UNIX, "AF_UNIX"),)),),
    otherwise=REFUSE,
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
            REFUSE,
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

_add(
    D,
    "fcntl commands",
    "any other command is refused with EINVAL, as the kernel answers one it does not know",
    "fcntl",
    subs=(
        Sub(
            "the caller's",
            H,
            "duplicating, flags, locks (a lock only delays others' lock calls), pipe sizes, "
            "seals, hints, directory notices and reading or choosing the signal of SIGIO",
            (
                *_one_of(1, sc.FCNTL_OWN),
                Rule(ALLOW, (_t(1, "eq", sc.F_SETOWN, "F_SETOWN"), _t(2, "eq", 0))),
            ),
        ),
        Sub(
            "signal owner",
            D,
            "`F_SETOWN` other than 0: a process of the sandbox, or a process group whose "
            "members are all inside (as `kill` of a group); anything else, the supervisor "
            "first, is refused (with `F_SETSIG` and `O_ASYNC` it would be a signal to it)",
            (Rule(TRAP, (_t(1, "eq", sc.F_SETOWN, "F_SETOWN"),)),),
        ),
        Sub(
            "refused",
            R,
            "`F_SETOWN_EX` (its target is in memory a racing thread can change after the "
            "decision: `F_SETOWN` does the same for a process), `F_SETLEASE` (a lease makes "
            "every other process's open of the file wait, outside ones too)",
            _one_of(1, sc.FCNTL_REFUSED, REFUSE),
        ),
    ),
    sub_key="command",
    err=errno.EINVAL,
    args=("fd", "cmd", "arg"),
)
_add(
    D,
    "prctl options",
    "any other option is refused with EINVAL, as the kernel answers one it does not know",
    "prctl",
    subs=(
        Sub(
            "the caller's",
            H,
            "the caller's own name, signals, dumpability, capabilities (only lowered), "
            "securebits, no_new_privs, seccomp (only narrowed; prctl cannot ask for a "
            "listener), timer slack, THP, subreaper, memory names and merging, MDWE, "
            "speculation and CPU features, perf counters, machine-check policy, user "
            "dispatch (it turns the caller's own calls into signals to itself before seccomp "
            "runs: the call is then not made at all, and what its handler calls meets the "
            "filter), futex hash",
            _one_of(0, sc.PRCTL_OWN),
        ),
        Sub(
            "refused",
            R,
            "`PR_SET_MM` (rewrites /proc/self/exe and the command line: exec is decided by "
            "what runs), `PR_SET_PTRACER` (invites a process outside to ptrace this one; the "
            "wrapper sets it before the filter exists), `PR_SET_IO_FLUSHER`, `PR_SCHED_CORE` "
            "(acts on other processes)",
            _one_of(0, sc.PRCTL_REFUSED, REFUSE),
        ),
    ),
    sub_key="option",
    err=errno.EINVAL,
    args=("option", "arg2"),
)
_add(
    D,
    "setsockopt levels",
    "any other level (SCTP, raw, packet, ...) or option is refused with ENOPROTOOPT, as "
    "for a level the socket does not have",
    "setsockopt",
    subs=(
        Sub(
            "refused",
            R,
            "options that change where traffic goes or who sees it: an interface "
            "(`SO_BINDTODEVICE`, `SO_BINDTOIFINDEX`, `IP_UNICAST_IF`, `IPV6_UNICAST_IF`), "
            "a firewall mark (`SO_MARK`: policy routing), eBPF and reuseport steering, source "
            "routes and next hops (`IP_OPTIONS`, `IPV6_RTHDR`, `IPV6_2292RTHDR`, "
            "`IPV6_NEXTHOP`, `IPV6_2292PKTOPTIONS`), a sticky source and interface "
            "(`IPV6_PKTINFO`), transparent proxying, raw headers",
            tuple(
                Rule(REFUSE, (_t(1, "eq", level, lname), _t(2, "eq", v, k)))
                for lname, level in sc.LEVELS.items()
                for k, v in sc.SOCKOPT_REFUSED.get(level, {}).items()
            ),
            errno.ENOPROTOOPT,
        ),
        Sub(
            "levels",
            H,
            "the socket's own behaviour: buffers, timeouts, keepalive, reuse, TCP and UDP "
            "tuning, IP TTL, TOS, multicast, error queues, packet info to receive, hop-by-hop "
            "and destination options (they carry no route), netlink groups and kTLS keys",
            _one_of(1, sc.LEVELS),
        ),
    ),
    sub_key="option",
    err=errno.ENOPROTOOPT,
    args=("fd", "level", "optname"),
)

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


_VERB = {ALLOW: "allowed", TRAP: "supervisor", REFUSE: "trapped"}


def _filter_text(s: Syscall) -> str:
    if s.filter_errno is not None:
        return f"`{errno.errorcode[s.filter_errno]}` (the filter)"
    if not s.rules:
        return _VERB[s.action([0] * 6)]
    parts = _rules_text(s.rules, s.args)
    parts.append(f"else {_VERB[s.otherwise]}")
    return "; ".join(parts)


def _rules_text(rules: Iterable[Rule], args: Sequence[str]) -> list[str]:
    parts: list[str] = []
    prev: Rule | None = None
    for rule in rules:
        verb = _VERB[rule.action]
        if prev is not None and _one_more_value(prev, rule):
            parts[-1] += f", {rule.tests[-1].value_text()}"  # one of several values
        else:
            parts.append(f"{verb} when " + " and ".join(t.text(args) for t in rule.tests))
        prev = rule
    return parts


def _errno_text(err: int) -> str:
    return f"`{_ERRNO_NAME.get(err, errno.errorcode[err])}`"


def _sub_rows(s: Syscall) -> Iterator[str]:
    """A call with sub-command classes: a row for each, and one for the rest."""
    for sub in s.subs:
        ftext = "; ".join(_rules_text(sub.rules, s.args))
        if sub.kind is Kind.REFUSED:
            ftext += f": refused with {_errno_text(sub.errno)}"
        label, what = _LABEL[sub.kind], f"{s.group}: {sub.what}"
        yield f"| {label} | {what} | `{s.name}` | {ftext} | {sub.reason} |"
    yield (
        f"| refused | {s.group}: any other | `{s.name}` | trapped, {_errno_text(s.errno)} "
        f"| {s.reason} |"
    )


def _rows(entries: Iterable[Syscall]) -> Iterator[tuple[Kind, str, list[str], str, str]]:
    """Consecutive entries sharing kind, group, reason and filter action: one row."""
    rows: dict[tuple[Kind, str, str, str, int], list[str]] = {}
    for s in entries:
        if s.subs:
            continue  # rows of their own: _sub_rows
        rows.setdefault((s.kind, s.group, s.reason, _filter_text(s), s.errno), []).append(s.name)
    order = list(Kind)
    for (kind, group, reason, ftext, err), members in sorted(
        rows.items(), key=lambda kv: order.index(kv[0][0])
    ):
        if kind is Kind.REFUSED and err != errno.EPERM and ftext == "trapped":
            ftext = f"trapped, `{_ERRNO_NAME.get(err, errno.errorcode[err])}`"
        yield kind, group, members, ftext, reason


def markdown() -> str:
    """The table docs/security.md carries between its markers."""
    lines = [
        MARK_BEGIN,
        "",
        "| class | what | syscalls | the filter | why |",
        "|---|---|---|---|---|",
    ]
    subs_done = False
    for kind, group, members, ftext, reason in _rows(_CATALOG):
        if kind is not Kind.DECIDED and not subs_done:  # after the decided rows
            lines += [row for s in _CATALOG if s.subs for row in _sub_rows(s)]
            subs_done = True
        calls = ", ".join(f"`{m}`" for m in members)
        lines.append(f"| {_LABEL[kind]} | {group} | {calls} | {ftext} | {reason} |")
    lines.append(
        "| refused | anything else | every number not above (a syscall newer than this "
        "table, an unassigned number) | trapped | unknown, so not allowed: "
        f"`{errno.errorcode[UNKNOWN_ERRNO]}`, audited like the others |"
    )
    lines += [
        "",
        "Before the table: a call of another ABI (i386 on x86_64, x32) kills the process. "
        '"supervisor": the call is trapped (user-notify, or `SECCOMP_RET_TRACE` in ptrace '
        'mode) and the decoder answers it. "trapped": a refusal that needs no decision, '
        "`SECCOMP_RET_TRAP` in both modes (it outranks a container's `ERRNO`): the tracer "
        "takes the `SIGSYS`, answers the errno and the program never sees the signal. A "
        "refused call is audited `syscall_blocked`, rule `seccomp-blocklist`, and answers "
        "`EPERM` unless the row says otherwise.",
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
