"""Sub-command numbers the syscall catalog sorts: ioctl requests, fcntl
commands, prctl options, setsockopt levels and option names, and the
namespace flags of unshare and clone. Pure data, named as the kernel's
uapi headers name them (the same numbers on x86_64 and aarch64: both use
the generic ioctl and socket-option layouts). ``syscalls`` groups them into
classes (one row of the table each); the decoder names them in the audit.
"""

from __future__ import annotations

# -- ioctl requests (asm-generic/ioctls.h, linux/fs.h, linux/sockios.h) ----
# Terminal requests on a terminal the caller holds: its modes, size,
# foreground group and locks. (Some numbers are shared by other drivers,
# e.g. TCSETS is also SNDCTL_TMR_START: it is the fd's driver that decides.)
IOCTL_TERMINAL = {
    "TCGETS": 0x5401, "TCSETS": 0x5402, "TCSETSW": 0x5403, "TCSETSF": 0x5404,
    "TCGETA": 0x5405, "TCSETA": 0x5406, "TCSETAW": 0x5407, "TCSETAF": 0x5408,
    "TCSBRK": 0x5409, "TCXONC": 0x540A, "TCFLSH": 0x540B, "TIOCEXCL": 0x540C,
    "TIOCNXCL": 0x540D, "TIOCGPGRP": 0x540F, "TIOCSPGRP": 0x5410,
    "TIOCOUTQ": 0x5411, "TIOCGWINSZ": 0x5413, "TIOCSWINSZ": 0x5414, "TIOCMGET": 0x5415,
    "TIOCPKT": 0x5420, "TIOCNOTTY": 0x5422, "TIOCGETD": 0x5424, "TCSBRKP": 0x5425,
    "TIOCSBRK": 0x5427, "TIOCCBRK": 0x5428, "TIOCGSID": 0x5429, "TCGETS2": 0x802C542A,
    "TCSETS2": 0x402C542B, "TCSETSW2": 0x402C542C, "TCSETSF2": 0x402C542D,
    "TIOCGPTN": 0x80045430, "TIOCSPTLCK": 0x40045431, "TIOCGDEV": 0x80045432,
    "TIOCGPKT": 0x80045438, "TIOCGPTLCK": 0x80045439, "TIOCGEXCL": 0x80045440,
    "TIOCGICOUNT": 0x545D,
}  # fmt: skip
# Making a terminal the controlling one: arg 1 with CAP_SYS_ADMIN steals it
# from the session that has it (the user's shell outside).
TIOCSCTTY = 0x540E
IOCTL_FD = {
    "FIONREAD": 0x541B, "FIONBIO": 0x5421, "FIONCLEX": 0x5450, "FIOCLEX": 0x5451,
    "FIOASYNC": 0x5452, "FIOQSIZE": 0x5460, "FIOGETOWN": 0x8903, "SIOCGPGRP": 0x8904,
}  # fmt: skip
IOCTL_SOCKET = {
    "SIOCATMARK": 0x8905, "SIOCGSTAMP_OLD": 0x8906, "SIOCGSTAMPNS_OLD": 0x8907,
    "SIOCGSTAMP_NEW": 0x80108906, "SIOCGSTAMPNS_NEW": 0x80108907, "SIOCGIFNAME": 0x8910,
    "SIOCGIFCONF": 0x8912, "SIOCGIFFLAGS": 0x8913, "SIOCGIFADDR": 0x8915,
    "SIOCGIFDSTADDR": 0x8917, "SIOCGIFBRDADDR": 0x8919, "SIOCGIFNETMASK": 0x891B,
    "SIOCGIFMETRIC": 0x891D, "SIOCGIFMTU": 0x8921, "SIOCGIFHWADDR": 0x8927,
    "SIOCGIFINDEX": 0x8933, "SIOCGIFPFLAGS": 0x8935, "SIOCGIFTXQLEN": 0x8942,
    "SIOCOUTQNSD": 0x894B, "SIOCGIFMAP": 0x8970,
}  # fmt: skip
IOCTL_FILE = {
    "FIGETBSZ": 0x2, "FS_IOC_GETFLAGS": 0x80086601, "FS_IOC32_GETFLAGS": 0x80046601,
    "FS_IOC_GETVERSION": 0x80087601, "FS_IOC32_GETVERSION": 0x80047601,
    "FS_IOC_FSGETXATTR": 0x801C581F, "FS_IOC_FIEMAP": 0xC020660B, "FICLONE": 0x40049409,
    "FICLONERANGE": 0x4020940D, "FIDEDUPERANGE": 0xC0189436,
    "FS_IOC_GETFSLABEL": 0x81009431, "FS_IOC_GETFSUUID": 0x80111500,
    "FS_IOC_GETFSSYSFSPATH": 0x80811501,
}  # fmt: skip
# SECCOMP_IOCTL_NOTIF_ID_VALID (and its pre-5.17 number): the wrapper
# probes the listener before the supervisor exists, after the filter is on.
IOCTL_LISTENER = {"SECCOMP_IOCTL_NOTIF_ID_VALID": 0x40082102,
                  "SECCOMP_IOCTL_NOTIF_ID_VALID_OLD": 0x80082102}  # fmt: skip
# Setting who receives SIGIO/SIGURG (the pid, or -pgid, in memory).
IOCTL_OWNER = {"FIOSETOWN": 0x8901, "SIOCSPGRP": 0x8902}
# Inode flags and project ids: file decisions (issue 17 item 2).
IOCTL_INODE = {
    "FS_IOC_SETFLAGS": 0x40086602, "FS_IOC32_SETFLAGS": 0x40046602,
    "FS_IOC_FSSETXATTR": 0x401C5820,
}  # fmt: skip
IOCTL_REFUSED = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}
# Opening a pty's peer through its master, past the file rules on /dev/pts.
TIOCGPTPEER = 0x5441

# -- fcntl commands (asm-generic/fcntl.h, linux/fcntl.h) -------------------
F_SETOWN, F_SETOWN_EX, F_SETLEASE = 8, 15, 1024
FCNTL_OWN = {
    "F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "F_GETLK": 5,
    "F_SETLK": 6, "F_SETLKW": 7, "F_GETOWN": 9, "F_SETSIG": 10, "F_GETSIG": 11,
    "F_GETOWN_EX": 16, "F_GETOWNER_UIDS": 17, "F_OFD_GETLK": 36, "F_OFD_SETLK": 37,
    "F_OFD_SETLKW": 38, "F_GETLEASE": 1025, "F_NOTIFY": 1026, "F_DUPFD_QUERY": 1027,
    "F_CREATED_QUERY": 1028, "F_DUPFD_CLOEXEC": 1030, "F_SETPIPE_SZ": 1031,
    "F_GETPIPE_SZ": 1032, "F_ADD_SEALS": 1033, "F_GET_SEALS": 1034, "F_GET_RW_HINT": 1035,
    "F_SET_RW_HINT": 1036, "F_GET_FILE_RW_HINT": 1037, "F_SET_FILE_RW_HINT": 1038,
}  # fmt: skip
FCNTL_REFUSED = {"F_SETOWN_EX": F_SETOWN_EX, "F_SETLEASE": F_SETLEASE}

# -- prctl options (linux/prctl.h) --------------------------------------------
PRCTL_OWN = {
    "PR_SET_PDEATHSIG": 1, "PR_GET_PDEATHSIG": 2, "PR_GET_DUMPABLE": 3, "PR_SET_DUMPABLE": 4,
    "PR_GET_UNALIGN": 5, "PR_SET_UNALIGN": 6, "PR_GET_KEEPCAPS": 7, "PR_SET_KEEPCAPS": 8,
    "PR_GET_FPEMU": 9, "PR_SET_FPEMU": 10, "PR_GET_FPEXC": 11, "PR_SET_FPEXC": 12,
    "PR_GET_TIMING": 13, "PR_SET_TIMING": 14, "PR_SET_NAME": 15, "PR_GET_NAME": 16,
    "PR_GET_ENDIAN": 19, "PR_SET_ENDIAN": 20, "PR_GET_SECCOMP": 21, "PR_SET_SECCOMP": 22,
    "PR_CAPBSET_READ": 23, "PR_CAPBSET_DROP": 24, "PR_GET_TSC": 25, "PR_SET_TSC": 26,
    "PR_GET_SECUREBITS": 27, "PR_SET_SECUREBITS": 28, "PR_SET_TIMERSLACK": 29,
    "PR_GET_TIMERSLACK": 30, "PR_TASK_PERF_EVENTS_DISABLE": 31,
    "PR_TASK_PERF_EVENTS_ENABLE": 32, "PR_MCE_KILL": 33, "PR_MCE_KILL_GET": 34,
    "PR_SET_CHILD_SUBREAPER": 36, "PR_GET_CHILD_SUBREAPER": 37, "PR_SET_NO_NEW_PRIVS": 38,
    "PR_GET_NO_NEW_PRIVS": 39, "PR_GET_TID_ADDRESS": 40, "PR_SET_THP_DISABLE": 41,
    "PR_GET_THP_DISABLE": 42, "PR_SET_FP_MODE": 45, "PR_GET_FP_MODE": 46,
    "PR_CAP_AMBIENT": 47, "PR_SVE_SET_VL": 50, "PR_SVE_GET_VL": 51,
    "PR_GET_SPECULATION_CTRL": 52, "PR_SET_SPECULATION_CTRL": 53, "PR_PAC_RESET_KEYS": 54,
    "PR_SET_TAGGED_ADDR_CTRL": 55, "PR_GET_TAGGED_ADDR_CTRL": 56, "PR_GET_IO_FLUSHER": 58,
    "PR_SET_SYSCALL_USER_DISPATCH": 59, "PR_PAC_SET_ENABLED_KEYS": 60,
    "PR_PAC_GET_ENABLED_KEYS": 61, "PR_SME_SET_VL": 63, "PR_SME_GET_VL": 64,
    "PR_SET_MDWE": 65, "PR_GET_MDWE": 66, "PR_SET_MEMORY_MERGE": 67,
    "PR_GET_MEMORY_MERGE": 68, "PR_GET_SHADOW_STACK_STATUS": 74,
    "PR_SET_SHADOW_STACK_STATUS": 75, "PR_LOCK_SHADOW_STACK_STATUS": 76,
    "PR_TIMER_CREATE_RESTORE_IDS": 77, "PR_FUTEX_HASH": 78, "PR_SET_VMA": 0x53564D41,
    "PR_GET_AUXV": 0x41555856,
}  # fmt: skip
PRCTL_REFUSED = {
    "PR_SET_MM": 35, "PR_SET_PTRACER": 0x59616D61, "PR_SET_IO_FLUSHER": 57,
    "PR_SCHED_CORE": 62,
}  # fmt: skip

# -- setsockopt levels and option names ----------------------------------------
SOL_SOCKET, SOL_IP, SOL_IPV6, SOL_TCP, SOL_UDP, SOL_ICMPV6 = 1, 0, 41, 6, 17, 58
SOL_NETLINK, SOL_TLS = 270, 282
LEVELS = {
    "SOL_SOCKET": SOL_SOCKET, "IPPROTO_IP": SOL_IP, "IPPROTO_IPV6": SOL_IPV6,
    "IPPROTO_TCP": SOL_TCP, "IPPROTO_UDP": SOL_UDP, "IPPROTO_ICMPV6": SOL_ICMPV6,
    "SOL_NETLINK": SOL_NETLINK, "SOL_TLS": SOL_TLS,
}  # fmt: skip
# Options of an allowed level that change where traffic goes or who sees it.
SOCKOPT_REFUSED = {
    SOL_SOCKET: {
        "SO_BINDTODEVICE": 25, "SO_MARK": 36, "SO_ATTACH_BPF": 50,
        "SO_ATTACH_REUSEPORT_CBPF": 51, "SO_ATTACH_REUSEPORT_EBPF": 52,
        "SO_BINDTOIFINDEX": 62,
    },
    SOL_IP: {"IP_HDRINCL": 3, "IP_OPTIONS": 4, "IP_TRANSPARENT": 19, "IP_UNICAST_IF": 50},
    SOL_IPV6: {
        "IPV6_2292RTHDR": 5, "IPV6_2292PKTOPTIONS": 6, "IPV6_NEXTHOP": 9, "IPV6_PKTINFO": 50,
        "IPV6_RTHDR": 57, "IPV6_TRANSPARENT": 75, "IPV6_UNICAST_IF": 76,
    },
}  # fmt: skip

# -- control messages of sendmsg (cmsg level, type) ------------------------------
# Allowed as they are: per-packet TTL, TOS, hop limit, class, timestamps,
# GSO size; fds and credentials on unix sockets.
CMSG_OK = {
    (SOL_SOCKET, 1): "SCM_RIGHTS", (SOL_SOCKET, 2): "SCM_CREDENTIALS",
    (SOL_SOCKET, 12): "SO_PRIORITY", (SOL_SOCKET, 37): "SO_TIMESTAMPING",
    (SOL_SOCKET, 61): "SCM_TXTIME", (SOL_IP, 1): "IP_TOS", (SOL_IP, 2): "IP_TTL",
    (SOL_IPV6, 3): "IPV6_2292HOPOPTS", (SOL_IPV6, 4): "IPV6_2292DSTOPTS",
    (SOL_IPV6, 8): "IPV6_2292HOPLIMIT", (SOL_IPV6, 52): "IPV6_HOPLIMIT",
    (SOL_IPV6, 54): "IPV6_HOPOPTS", (SOL_IPV6, 55): "IPV6_RTHDRDSTOPTS",
    (SOL_IPV6, 59): "IPV6_DSTOPTS", (SOL_IPV6, 62): "IPV6_DONTFRAG",
    (SOL_IPV6, 67): "IPV6_TCLASS", (SOL_UDP, 103): "UDP_SEGMENT",
    (SOL_TLS, 1): "TLS_SET_RECORD_TYPE",
}  # fmt: skip
# A source address and an interface: allowed only with no interface and no
# source, or the socket's own address as the source.
CMSG_PKTINFO = {(SOL_IP, 8): "IP_PKTINFO", (SOL_IPV6, 50): "IPV6_PKTINFO",
                (SOL_IPV6, 2): "IPV6_2292PKTINFO"}  # fmt: skip
# Another first hop (source routes, a next hop) or a firewall mark.
CMSG_REFUSED = {
    (SOL_IP, 7): "IP_RETOPTS", (SOL_IPV6, 5): "IPV6_2292RTHDR", (SOL_IPV6, 9): "IPV6_NEXTHOP",
    (SOL_IPV6, 57): "IPV6_RTHDR", (SOL_SOCKET, 36): "SO_MARK",
}  # fmt: skip

# -- namespace flags (linux/sched.h) ---------------------------------------------
CLONE_NEW = {
    "CLONE_NEWTIME": 0x00000080, "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
}  # fmt: skip
NEW_NAMESPACES = sum(CLONE_NEW.values())
# clone()'s low byte is the exit signal, so CLONE_NEWTIME (0x80) is not a
# flag there: only unshare and clone3 can make a time namespace.
CLONE_NEW_CLONE = NEW_NAMESPACES & ~CLONE_NEW["CLONE_NEWTIME"]


def namespaces(flags: int) -> list[str]:
    """The CLONE_NEW* names set in ``flags``."""
    return [n for n, bit in CLONE_NEW.items() if flags & bit]
