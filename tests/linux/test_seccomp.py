"""The BPF assembler and the filter built from the syscall catalog, checked
by running the program in a small BPF interpreter (no kernel needed for
most of it)."""

from __future__ import annotations

import errno
import struct
from collections.abc import Sequence

import pytest

from agentsh_ipy._linux import arch, seccomp, syscalls
from tests.conftest import linux_only

pytestmark = linux_only

DECIDE = 0x7FC00000  # what build_filter returns for "ask the supervisor" (USER_NOTIF)
UNKNOWN = seccomp.RET_TRAP | errno.ENOSYS  # a number not in the catalog


def _insns(prog: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]


def run_bpf(
    prog: bytes, nr: int, args: Sequence[int] = (0,) * 6, audit_arch: int | None = None
) -> tuple[int, set[int]]:
    """The filter's return value for one call, and the seccomp_data offsets
    it loaded. Only the opcodes build_filter emits are known."""
    if audit_arch is None:
        audit_arch = arch.current().audit_arch
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, audit_arch, 0, *args)
    insns = _insns(prog)
    pc, acc, loaded = 0, 0, set()
    for _ in range(len(insns)):  # forward jumps only: at most one pass
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
            loaded.add(k)
            pc += 1
            continue
        if code == 0x06:  # ret k
            return k, loaded
        if code == 0x54:  # and #k
            acc &= k
            pc += 1
            continue
        if code == 0x05:  # ja +k
            pc += 1 + k
            continue
        tests = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}
        if code not in tests:
            raise AssertionError(f"unknown BPF opcode {code:#x} at {pc}")
        pc += 1 + (jt if tests[code] else jf)
    raise AssertionError("the program did not return")


def _expected(entry: syscalls.Syscall | None, args: Sequence[int]) -> int:
    if entry is None:
        return UNKNOWN
    action = entry.action(args)
    if action == "errno":
        assert entry.filter_errno is not None
        return seccomp.RET_ERRNO | entry.filter_errno
    if action == syscalls.REFUSE:  # trapped, with the errno the refusal answers
        sub = entry.sub(args)[0] if entry.subs else None
        return seccomp.RET_TRAP | (sub.errno if sub else entry.errno)
    return seccomp.RET_ALLOW if action == syscalls.ALLOW else DECIDE


def _arg_vectors(entry: syscalls.Syscall | None) -> list[tuple[int, ...]]:
    """Zeros, all ones, and for each rule arguments that make it hold, and
    make it fail by one bit: enough to reach every branch of a block."""
    vectors = [(0,) * 6, (0xFFFFFFFFFFFFFFFF,) * 6, (0x1234_0000_0000,) * 6]
    for rule in entry.rules if entry else ():
        args = [0] * 6
        for t in rule.tests:
            args[t.arg] |= t.value
        vectors.append(tuple(args))
        for t in rule.tests:
            if t.op == "masked":  # the same, with every bit outside the mask set
                outside = list(args)
                outside[t.arg] |= 0xFFFFFFFF & ~t.mask
                vectors.append(tuple(outside))
        for t in rule.tests:
            changed = list(args)
            changed[t.arg] ^= 1 << 40 if t.wide else 1
            vectors.append(tuple(changed))
    return vectors


def test_filter_starts_with_the_arch_check_and_ends_in_returns() -> None:
    a = arch.current()
    insns = _insns(seccomp.build_filter(a))
    assert insns[0] == (0x20, 0, 0, 4)  # ld arch
    assert insns[1][0] == 0x15 and insns[1][3] == a.audit_arch
    rets = {k for code, _jt, _jf, k in insns if code == 0x06}
    assert seccomp.RET_USER_NOTIF in rets and seccomp.RET_ALLOW in rets
    assert seccomp.RET_KILL_PROCESS in rets
    assert seccomp.RET_TRAP | errno.EPERM in rets  # the refusals
    assert insns[-1] == (0x06, 0, 0, UNKNOWN)  # the default: refused as unknown
    assert len(insns) < 4096


def test_every_jump_lands_inside_the_program() -> None:
    insns = _insns(seccomp.build_filter(arch.current()))
    for i, (code, jt, jf, _k) in enumerate(insns):
        if code == 0x05:  # BPF_JA
            assert i + 1 + _k < len(insns)
        elif code & 0x07 == 0x05:  # BPF_JMP
            assert i + 1 + max(jt, jf) < len(insns)


def test_out_of_range_jump_is_refused() -> None:
    asm = seccomp._Asm()
    asm.emit(0x15, 1, "far", 0)
    for _ in range(300):
        asm.emit(0x06, seccomp.RET_ALLOW)
    asm.label("far")
    asm.emit(0x06, seccomp.RET_ALLOW)
    with pytest.raises(ValueError, match="out of range"):
        asm.assemble()


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_every_syscall_of_the_abi_is_in_the_catalog(machine: str) -> None:
    table = arch.table(machine)
    missing = sorted(set(table) - set(syscalls.CATALOG))
    assert not missing, f"not classified in _linux/syscalls.py: {missing}"


def test_every_decided_syscall_has_a_handler() -> None:
    from agentsh_ipy.supervisor._decoder import Decoder

    for name in syscalls.names(syscalls.Kind.DECIDED):
        assert callable(getattr(Decoder, "_h_" + syscalls.CATALOG[name].name, None)), name


def test_the_filter_does_what_the_catalog_says_for_every_number() -> None:
    """Each number from 0 past the highest known one, with arguments that
    take every branch: harmless and unchecked calls allowed, decided ones
    to the supervisor, refused ones (and unknown numbers) trapped with
    their errno, clone3 ENOSYS."""
    a = arch.current()
    prog = seccomp.build_filter(a, decide=DECIDE)
    by_nr = {
        a.nr(name): entry for name, entry in syscalls.CATALOG.items() if a.nr(name) is not None
    }
    for nr in range(max(by_nr) + 64):
        entry = by_nr.get(nr)
        for args in _arg_vectors(entry):
            got, _ = run_bpf(prog, nr, args)
            name = entry.name if entry else f"unknown {nr}"
            assert got == _expected(entry, args), f"{name}{tuple(hex(x) for x in args)}"


def test_the_decide_action_is_the_one_asked_for() -> None:
    a = arch.current()
    prog = seccomp.build_filter(a, decide=seccomp.RET_TRACE)
    nr = a.nr("openat")
    assert nr is not None
    assert run_bpf(prog, nr)[0] == seccomp.RET_TRACE
    assert run_bpf(prog, _nr("mount"))[0] == seccomp.RET_TRAP | errno.EPERM  # in every mode
    assert run_bpf(prog, 1000)[0] == UNKNOWN


def test_harmless_calls_never_load_an_argument() -> None:
    """So the kernel's action cache can prove them always-allowed and skip
    the filter for them (it gives up on any load of an argument)."""
    a = arch.current()
    prog = seccomp.build_filter(a)
    for name in syscalls.names(syscalls.Kind.HARMLESS, syscalls.Kind.UNCHECKED):
        nr = a.nr(name)
        if nr is None:
            continue
        action, loaded = run_bpf(prog, nr, (0xFFFFFFFF,) * 6)
        assert action == seccomp.RET_ALLOW, name
        assert loaded <= {0, 4}, f"{name} loads an argument: not cacheable"


def _nr(name: str) -> int:
    nr = arch.current().nr(name)
    assert nr is not None
    return nr


@pytest.mark.parametrize(
    ("name", "args", "allowed"),
    [
        ("read", (3, 0, 10), True),
        ("openat", (0,), False),
        ("setxattr", (0,), False),
        ("sethostname", (0,), False),
        ("shmat", (0,), False),
        ("vhangup", (), False),
        ("clone", (syscalls.CLONE_THREAD | 0x3D0F00,), True),  # pthread_create's flags
        ("clone", (syscalls.CLONE_THREAD | syscalls.CLONE_UNTRACED,), False),
        ("clone", (0x01200011,), False),  # fork(): counted by the supervisor
        ("clone", (syscalls.CLONE_UNTRACED | 17,), False),
        ("ioctl", (1, 0x5401), True),  # TCGETS
        ("ioctl", (1, syscalls.TIOCSTI), False),
        ("ioctl", (1, 0xFFFF_FFFF_0000_0000 | syscalls.TIOCSTI), False),  # the kernel reads 32 bits
        ("sendto", (3, 0, 1, 0, 0), True),
        ("sendto", (3, 0, 1, 0, 1 << 32), False),  # a destination above 4 GiB
        ("prlimit64", (0, 7, 0x1000, 0), True),  # its own
        ("prlimit64", (1234, 0, 0, 0x1000), True),  # a read
        ("prlimit64", (1234, 0, 0x1000, 0), False),
        ("setpriority", (0, 0, 5), True),
        ("setpriority", (0, 1234, 5), False),
        ("setpriority", (2, 0, 5), False),  # PRIO_USER: every process of the user
        ("sched_setaffinity", (0, 8, 0x1000), True),
        ("sched_setaffinity", (1234, 8, 0x1000), False),
        ("madvise", (0x1000, 4096, 4), True),  # MADV_DONTNEED
        ("madvise", (0x1000, 4096, syscalls.MADV_HWPOISON), False),
        ("seccomp", (1, 0, 0x1000), True),
        ("seccomp", (1, syscalls.SECCOMP_FILTER_FLAG_NEW_LISTENER, 0x1000), False),
        ("personality", (0xFFFFFFFF,), True),
        ("personality", (0x0040000,), False),
        ("unshare", (0x200,), True),  # CLONE_FS
        ("unshare", (syscalls.CLONE_NEWUSER,), False),
        ("unshare", (0x40000000,), False),  # CLONE_NEWNET: root too
        ("unshare", (0x04000000 | 0x200,), False),  # CLONE_NEWUTS with CLONE_FS
        ("unshare", (0x80,), False),  # CLONE_NEWTIME
        ("unshare", (0x400 | 0x40000,), True),  # CLONE_FILES | CLONE_SYSVSEM
        ("clone", (syscalls.CLONE_THREAD | 0x3D0F00 | 0x40000000,), False),  # a thread's NEWNET
        ("clone", (0x01200011 | 0x04000000,), False),  # fork with CLONE_NEWUTS
        ("clone", (0x01200000 | 0x80 | 17,), False),  # 0x80 is the exit signal's byte: a fork
        ("ioctl", (1, 0x5413), True),  # TIOCGWINSZ
        ("ioctl", (3, 0x40049409), True),  # FICLONE
        ("ioctl", (3, 0x8927), True),  # SIOCGIFHWADDR
        ("ioctl", (3, 0x891C), False),  # SIOCSIFNETMASK: unknown, refused
        ("ioctl", (3, 0x8901), False),  # FIOSETOWN: decided
        ("ioctl", (1, 0x5441), False),  # TIOCGPTPEER: decided on the fd
        ("ioctl", (1, 0x540E, 0), True),  # TIOCSCTTY 0
        ("ioctl", (1, 0x540E, 1), False),  # TIOCSCTTY 1: decided on the caller's capabilities
        ("ioctl", (1, 0x5437), False),  # TIOCVHANGUP: unknown
        ("fcntl", (3, 4, 0o4000), True),  # F_SETFL
        ("fcntl", (3, 1030, 3), True),  # F_DUPFD_CLOEXEC
        ("fcntl", (3, 8, 0), True),  # F_SETOWN 0: no owner
        ("fcntl", (3, 8, 1234), False),  # F_SETOWN: decided
        ("fcntl", (3, 8, 0xFFFFFF00), False),  # F_SETOWN -256: a group, decided
        ("fcntl", (3, 15, 0x1000), False),  # F_SETOWN_EX: refused
        ("fcntl", (3, 1024, 1), False),  # F_SETLEASE: refused
        ("fcntl", (3, 999, 0), False),  # unknown
        ("prctl", (15, 0x1000), True),  # PR_SET_NAME
        ("prctl", (38, 1), True),  # PR_SET_NO_NEW_PRIVS
        ("prctl", (35, 13), False),  # PR_SET_MM
        ("prctl", (0x59616D61, 1), False),  # PR_SET_PTRACER
        ("prctl", (62, 0), False),  # PR_SCHED_CORE
        ("prctl", (1000, 0), False),  # unknown
        ("setsockopt", (3, 1, 2), True),  # SOL_SOCKET SO_REUSEADDR
        ("setsockopt", (3, 6, 1), True),  # TCP_NODELAY
        ("setsockopt", (3, 0, 1), True),  # IP_TOS
        ("setsockopt", (3, 41, 26), True),  # IPV6_V6ONLY
        ("setsockopt", (3, 270, 11), True),  # NETLINK_EXT_ACK
        ("setsockopt", (3, 1, 25), False),  # SO_BINDTODEVICE
        ("setsockopt", (3, 1, 36), False),  # SO_MARK
        ("setsockopt", (3, 0, 4), False),  # IP_OPTIONS
        ("setsockopt", (3, 41, 57), False),  # IPV6_RTHDR
        ("setsockopt", (3, 41, 50), False),  # IPV6_PKTINFO (sticky source and interface)
        ("setsockopt", (3, 132, 1), False),  # SOL_SCTP: not on the list
    ],
)
def test_argument_checks(name: str, args: tuple[int, ...], allowed: bool) -> None:
    prog = seccomp.build_filter(arch.current(), decide=DECIDE)
    full = (*args, *(0,) * (6 - len(args)))
    got = run_bpf(prog, _nr(name), full)[0]
    assert (got == seccomp.RET_ALLOW) == allowed
    assert got == _expected(syscalls.CATALOG[name], full)


NONBLOCK, CLOEXEC = 0o4000, 0o2000000
AF_PACKET, AF_KEY, AF_BLUETOOTH, AF_ALG, AF_VSOCK, AF_XDP, AF_UNSPEC = 17, 15, 31, 38, 40, 44, 0
NETLINK = {"AUDIT": 9, "XFRM": 6, "NETFILTER": 12, "KOBJECT_UEVENT": 15, "GENERIC": 16}
IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW = 1, 58, 255
S = syscalls


@pytest.mark.parametrize("flags", [0, NONBLOCK, CLOEXEC, NONBLOCK | CLOEXEC])
@pytest.mark.parametrize(
    ("domain", "kind", "protocol", "allowed"),
    [
        (S.AF_UNIX, S.SOCK_STREAM, 0, True),
        (S.AF_UNIX, S.SOCK_DGRAM, 0, True),
        (S.AF_UNIX, S.SOCK_SEQPACKET, 0, True),
        (S.AF_INET, S.SOCK_STREAM, 0, True),
        (S.AF_INET, S.SOCK_STREAM, 6, True),  # IPPROTO_TCP
        (S.AF_INET, S.SOCK_DGRAM, 17, True),  # IPPROTO_UDP
        (S.AF_INET, S.SOCK_DGRAM, IPPROTO_ICMP, True),  # a ping socket
        (S.AF_INET, S.SOCK_SEQPACKET, 132, True),  # SCTP
        (S.AF_INET6, S.SOCK_STREAM, 0, True),
        (S.AF_INET6, S.SOCK_DGRAM, IPPROTO_ICMPV6, True),
        (S.AF_INET6, S.SOCK_SEQPACKET, 0, True),
        (S.AF_NETLINK, S.SOCK_RAW, S.NETLINK_ROUTE, True),
        (S.AF_NETLINK, S.SOCK_DGRAM, S.NETLINK_ROUTE, True),
        (S.AF_NETLINK, S.SOCK_RAW, S.NETLINK_SOCK_DIAG, True),
        (S.AF_INET, S.SOCK_RAW, IPPROTO_ICMP, False),
        (S.AF_INET, S.SOCK_RAW, IPPROTO_RAW, False),
        (S.AF_INET6, S.SOCK_RAW, IPPROTO_ICMPV6, False),
        (S.AF_INET, S.SOCK_PACKET, 0x0300, False),
        (S.AF_INET, 4, 0, False),  # SOCK_RDM
        (S.AF_INET, 6, 0, False),  # SOCK_DCCP
        (AF_PACKET, S.SOCK_RAW, 0x0300, False),
        (AF_PACKET, S.SOCK_DGRAM, 0x0300, False),
        *[(S.AF_NETLINK, S.SOCK_RAW, p, False) for p in NETLINK.values()],
        *[(S.AF_NETLINK, S.SOCK_DGRAM, p, False) for p in NETLINK.values()],
        (AF_VSOCK, S.SOCK_STREAM, 0, False),
        (AF_KEY, S.SOCK_RAW, 2, False),
        (AF_BLUETOOTH, S.SOCK_STREAM, 0, False),
        (AF_ALG, S.SOCK_SEQPACKET, 0, False),
        (AF_XDP, S.SOCK_RAW, 0, False),
        (AF_UNSPEC, S.SOCK_STREAM, 0, False),
        (255, S.SOCK_STREAM, 0, False),
        (S.AF_INET | 1 << 32, S.SOCK_RAW, 0, False),  # high bits: the kernel reads an int
    ],
)
def test_socket_families_and_types(
    domain: int, kind: int, protocol: int, allowed: bool, flags: int
) -> None:
    """Allowed ones are decided in the filter (no supervisor round trip),
    the rest trapped; the flags in type never change the answer."""
    prog = seccomp.build_filter(arch.current(), decide=DECIDE)
    args = (domain, kind | flags, protocol, 0, 0, 0)
    assert syscalls.CATALOG["socket"].action(args) == (syscalls.ALLOW if allowed else "refuse")
    refused = seccomp.RET_TRAP | errno.EPERM
    assert run_bpf(prog, _nr("socket"), args)[0] == (seccomp.RET_ALLOW if allowed else refused)


@pytest.mark.parametrize(
    ("domain", "allowed"), [(S.AF_UNIX, True), (S.AF_INET, False), (S.AF_NETLINK, False)]
)
def test_socketpair_unix_only(domain: int, allowed: bool) -> None:
    prog = seccomp.build_filter(arch.current(), decide=DECIDE)
    args = (domain, S.SOCK_STREAM | CLOEXEC, 0, 0x1000, 0, 0)
    refused = seccomp.RET_TRAP | errno.EPERM
    assert run_bpf(prog, _nr("socketpair"), args)[0] == (seccomp.RET_ALLOW if allowed else refused)


def test_a_masked_test_compiles_to_and_then_jeq() -> None:
    catalog = {"socket": syscalls.CATALOG["socket"]}
    insns = _insns(seccomp.build_filter(arch.current(), catalog=catalog))
    ands = [i for i, insn in enumerate(insns) if insn[0] == 0x54]
    assert ands, "no BPF_ALU|BPF_AND|BPF_K"
    for i in ands:
        assert insns[i][3] == syscalls.SOCK_TYPE_MASK
        assert insns[i - 1] == (0x20, 0, 0, 16 + 8)  # ld type (low word)
        assert insns[i + 1][0] == 0x15  # jeq


def test_other_abis_are_killed_and_clone3_says_enosys() -> None:
    a = arch.current()
    prog = seccomp.build_filter(a)
    assert run_bpf(prog, _nr("read"), audit_arch=0x40000003)[0] == seccomp.RET_KILL_PROCESS
    if a.x32_bit is not None:
        assert run_bpf(prog, a.x32_bit | _nr("read"))[0] == seccomp.RET_KILL_PROCESS
    assert run_bpf(prog, _nr("clone3"))[0] == seccomp.RET_ERRNO | errno.ENOSYS


def test_notify_struct_sizes_match_the_kernel() -> None:
    assert seccomp.sizes_ok()


@pytest.mark.parametrize(
    ("args", "fields", "message"),
    [
        ((AF_PACKET, S.SOCK_RAW | CLOEXEC, 0x0300), ("AF_PACKET", "SOCK_RAW", 0x0300), "AF_PACKET"),
        ((S.AF_INET, S.SOCK_RAW | NONBLOCK, IPPROTO_RAW), ("AF_INET", "SOCK_RAW", 255), "SOCK_RAW"),
        ((S.AF_NETLINK, S.SOCK_RAW, 9), ("AF_NETLINK", "SOCK_RAW", "NETLINK_AUDIT"), "AUDIT"),
        ((99, 1, 0), ("family 99", "SOCK_STREAM", 0), "family 99"),
    ],
)
def test_a_refused_socket_is_audited_by_name(
    args: tuple[int, ...], fields: tuple[object, ...], message: str
) -> None:
    from agentsh_ipy.supervisor._decoder import Decoder
    from agentsh_ipy.supervisor._request import BLOCKED_RULE

    d = Decoder.__new__(Decoder)  # the socket handler needs no tree, policy or memory
    req = d._h_socket("socket", 100, 100, (*args, 0, 0, 0))
    assert req.kind == "syscall_blocked" and req.decision.decision == "deny"
    assert req.decision.rule == BLOCKED_RULE and req.errno == errno.EPERM
    assert (req.fields["family"], req.fields["sock_type"], req.fields["protocol"]) == fields
    assert message in req.decision.message


@pytest.mark.parametrize(
    ("name", "args", "kind", "label"),
    [
        ("ioctl", (1, syscalls.TIOCSTI), syscalls.Kind.REFUSED, "TIOCSTI"),
        ("ioctl", (1, 0x540E, 1), syscalls.Kind.DECIDED, "TIOCSCTTY"),
        ("ioctl", (1, 0x1234_5678), None, "0x12345678"),
        ("fcntl", (3, 1024, 1), syscalls.Kind.REFUSED, "F_SETLEASE"),
        ("fcntl", (3, 8, 55), syscalls.Kind.DECIDED, "F_SETOWN"),
        ("prctl", (35, 0), syscalls.Kind.REFUSED, "PR_SET_MM"),
        ("prctl", (15, 0), syscalls.Kind.HARMLESS, "PR_SET_NAME"),
        ("setsockopt", (3, 0, 4), syscalls.Kind.REFUSED, "IP_OPTIONS"),
        ("setsockopt", (3, 6, 1), syscalls.Kind.HARMLESS, "IPPROTO_TCP"),
    ],
)
def test_sub_commands_are_named_as_the_filter_sorts_them(
    name: str, args: tuple[int, ...], kind: syscalls.Kind | None, label: str
) -> None:
    """The decoder names a trapped sub-command (for the audit) by the class
    whose rule the filter matched first."""
    full = (*args, *(0,) * (6 - len(args)))
    sub, got = syscalls.CATALOG[name].sub(full)
    assert (sub.kind if sub else None, got) == (kind, label)


def test_sub_command_classes_become_the_filters_rules() -> None:
    for name in ("ioctl", "fcntl", "prctl", "setsockopt"):
        entry = syscalls.CATALOG[name]
        assert entry.subs and entry.sub_key, name
        assert entry.rules == tuple(r for sub in entry.subs for r in sub.rules), name
        assert entry.otherwise == syscalls.REFUSE, name
        row = [x for x in syscalls.markdown().splitlines() if f"| `{name}` |" in x]
        assert len(row) == len(entry.subs) + 1, name  # a row per class, and the rest


class _Tree:
    """The decoder's view of a process tree, for refusals (which ask it
    nothing but the caller's thread group)."""

    def tgid_ppid(self, tid: int) -> tuple[int, int]:
        return tid, 1

    def inside(self, pid: int) -> bool:
        return True

    def reserve_process(self, limit: int | None) -> bool:
        return True

    def members(self) -> list[int]:
        return []


def test_what_the_filter_traps_the_decoder_refuses_with_the_same_errno() -> None:
    """A trapped call never runs (the kernel skipped it): the SIGSYS path
    answers what the decoder says, which must be a refusal, audited as one,
    with the errno the filter carries (and the table shows)."""
    from agentsh_ipy.supervisor import load_policy
    from agentsh_ipy.supervisor._decoder import Decoder
    from agentsh_ipy.supervisor._request import BLOCKED_RULE

    a = arch.current()
    d = Decoder(load_policy(None, "/nonexistent"), a, _Tree())
    prog = seccomp.build_filter(a, decide=DECIDE)
    by_nr = {a.nr(n): e for n, e in syscalls.CATALOG.items() if a.nr(n) is not None}
    trapped = 0
    for nr in range(max(by_nr) + 8):
        entry = by_nr.get(nr)
        for args in _arg_vectors(entry):
            ret = run_bpf(prog, nr, args)[0]
            if ret & 0xFFFF0000 != seccomp.RET_TRAP:
                continue
            trapped += 1
            name = a.name_of(nr)
            req = d.decode(nr, 4242, args, name)
            assert req is not None, name
            assert (req.kind, req.decision.decision) == ("syscall_blocked", "deny"), name
            assert req.decision.rule == BLOCKED_RULE and req.errno == ret & 0xFFFF, name
    assert trapped > 100
