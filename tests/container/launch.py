"""Run a command as `docker run --user UID:GID` (Docker 20.10, runc) would:
Docker's default seccomp profile (docker-default.json, see README.md next to
this file) compiled with libseccomp for Docker's default capability set,
that capability set as the bounding set and no other capability, uid/gid
with no supplementary groups, HOME a directory the user owns.

    /usr/bin/python3 tests/container/launch.py [--uid 1000] [--gid 1000]
        [--home DIR] [--profile FILE] -- CMD...

Run as root, with the system interpreter (Debian's python3-seccomp gives it
`import seccomp`, the binding of the library runc itself uses). What it does
not reproduce: namespaces (pid, mount, network, uts), AppArmor, the masked
and read-only /proc paths, cgroups. Those refuse things too, but the
sandbox's failures in containers came from the seccomp filter and the
capabilities, which this reproduces call for call.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import platform
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

# python3-seccomp is imported where the filter is built, so that select_rules
# serves tests (tests/_host.py) running in an interpreter without it.
PROFILE = Path(__file__).resolve().parent / "docker-default.json"

# oci/caps/defaults.go of Docker 20.10: the bounding set of every container
# started without --cap-add/--cap-drop. A non-root user gets none of them in
# its effective or permitted set (oci.SetCapabilities), and since 20.10.14
# nobody gets inheritable ones.
DOCKER_DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
    "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}  # fmt: skip

# Go's GOARCH (what the profile's "arches" name) and the profile's
# SCMP_ARCH_* for this machine.
_MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
}
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, X32_BIT = 0xC000003E, 0x40000003, 0x40000000
RET_ALLOW, RET_ENOSYS = 0x7FFF0000, 0x00050000 | errno.ENOSYS

libc = ctypes.CDLL(None, use_errno=True)


def _kernel_at_least(version: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in v.split(".")[:2])

    return parts(platform.release()) >= parts(version)


def select_rules(
    profile: dict[str, Any], caps: tuple[str, ...], goarch: str
) -> list[dict[str, Any]]:
    """The profile's syscall entries that apply here, as Docker's daemon
    selects them before handing the list to runc: excluded by arch, by a cap
    in the bounding set, by a kernel at least minKernel; included only for
    the arch, when every cap is in the bounding set, from minKernel on."""
    kept = []
    for call in profile["syscalls"]:
        exc, inc = call.get("excludes") or {}, call.get("includes") or {}
        if goarch in exc.get("arches", []) or any(c in caps for c in exc.get("caps", [])):
            continue
        if exc.get("minKernel") and _kernel_at_least(exc["minKernel"]):
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if not all(c in caps for c in inc.get("caps", [])):
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
            continue
        kept.append(call)
    return kept


def _action(name: str, errno_ret: int | None) -> int:
    import seccomp

    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno.EPERM if errno_ret is None else errno_ret)
    raise SystemExit(f"launch.py: action {name} is not used by Docker's default profile")


def build_filter(
    profile: dict[str, Any], rules: list[dict[str, Any]], arches: list[str]
) -> Any:  # seccomp.SyscallFilter
    """libseccomp's filter, built as runc's InitSeccomp builds it: the
    default action, the extra architectures, no_new_privs left alone, a rule
    per name (names libseccomp cannot resolve skipped, rules whose action is
    the default skipped), conditions ANDed unless two test the same argument
    (then one rule each)."""
    import seccomp

    default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(defaction=default)
    for arch in arches:
        scmp = getattr(seccomp.Arch, arch.removeprefix("SCMP_ARCH_"))
        if not f.exist_arch(scmp):
            f.add_arch(scmp)
    f.set_attr(seccomp.Attr.CTL_NNP, 0)
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for call in rules:
        act = _action(call["action"], call.get("errnoRet"))
        if act == default:
            continue
        conds = [
            seccomp.Arg(
                a["index"],
                getattr(seccomp, a["op"].removeprefix("SCMP_CMP_")),
                a["value"],
                a.get("valueTwo", 0),
            )
            for a in call.get("args") or []
        ]
        indexes = [a["index"] for a in call.get("args") or []]
        groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for name in call["names"]:
            if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) == -1:
                continue
            for group in groups:
                f.add_rule(act, name, *group)
    return f


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def enosys_stub(rules: list[dict[str, Any]]) -> bytes:
    """runc's -ENOSYS patch as a filter of its own: a syscall numbered above
    every syscall the profile names (per ABI) is newer than the profile, and
    gets ENOSYS instead of the default EPERM, so libc falls back. Loaded after
    the profile's filter; for the same action the newest filter's value wins,
    which gives what runc's prepended stub gives. x86_64 only (with its x86
    and x32 ABIs); elsewhere none."""
    import seccomp

    if platform.machine() != "x86_64":
        return b""
    names = {n for call in rules for n in call["names"]}

    def last(arch: int) -> int:
        return max(seccomp.resolve_syscall(arch, n) for n in names)

    x86_64, x32, i386 = last(seccomp.Arch.X86_64), last(seccomp.Arch.X32), last(seccomp.Arch.X86)
    ld_arch, ld_nr, jeq, jgt, jset, ret = 0x20, 0x20, 0x15, 0x25, 0x45, 0x06
    prog = [
        _insn(ld_arch, 0, 0, 4),
        _insn(jeq, 0, 4, AUDIT_ARCH_X86_64),  # not x86_64: to the i386 check
        _insn(ld_nr, 0, 0, 0),
        _insn(jset, 1, 0, X32_BIT),
        _insn(jgt, 4, 5, x86_64),  # x86_64 ABI: ENOSYS or on to the profile
        _insn(jgt, 3, 4, x32),  # x32 ABI (its numbers carry X32_BIT)
        _insn(jeq, 0, 3, AUDIT_ARCH_I386),
        _insn(ld_nr, 0, 0, 0),
        _insn(jgt, 0, 1, i386),
        _insn(ret, 0, 0, RET_ENOSYS),
        _insn(ret, 0, 0, RET_ALLOW),
    ]
    return b"".join(prog)


def load_bpf(code: bytes) -> None:
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(code) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    ptr = ctypes.c_void_p(ctypes.addressof(fbuf))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ptr, 0, 0) != 0:
        e = ctypes.get_errno()
        raise SystemExit(f"launch.py: loading the ENOSYS stub failed: {os.strerror(e)}")


def drop_to(uid: int, gid: int) -> None:
    """What runc leaves a non-root process of a default container: the
    bounding set cut to Docker's 14, ambient and inheritable empty, and (by
    the uid change itself, keep-caps off) nothing effective or permitted."""
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    keep = {CAP_NUMBERS[c] for c in DOCKER_DEFAULT_CAPS}
    for cap in range(last_cap + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise SystemExit(f"launch.py: PR_CAPBSET_DROP {cap}: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        raise SystemExit(f"launch.py: clearing ambient caps: {os.strerror(ctypes.get_errno())}")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    header = struct.pack("II", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = ctypes.create_string_buffer(24)  # two zeroed __user_cap_data_struct
    if libc.capset(header, data) != 0:
        raise SystemExit(f"launch.py: capset: {os.strerror(ctypes.get_errno())}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--uid", type=int, default=1000)
    ap.add_argument("--gid", type=int, default=1000)
    ap.add_argument("--home", help="HOME for the command (default: a new directory it owns)")
    ap.add_argument("--profile", default=str(PROFILE))
    ap.add_argument("cmd", nargs="+")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("launch.py: must run as root (it drops to --uid, as runc does)")
    if args.uid == 0:
        raise SystemExit(
            "launch.py: --uid 0 is not what this reproduces (a non-root container user)"
        )
    goarch, scmp_arch = _MACHINES.get(platform.machine(), (None, None))
    if goarch is None:
        raise SystemExit(f"launch.py: no arch map for {platform.machine()}")
    profile = json.loads(Path(args.profile).read_text())
    arches = next(
        [m["architecture"], *m["subArchitectures"]]
        for m in profile["archMap"]
        if m["architecture"] == scmp_arch
    )
    rules = select_rules(profile, DOCKER_DEFAULT_CAPS, goarch)
    bpf = build_filter(profile, rules, arches)
    stub = enosys_stub(rules)

    home = args.home or tempfile.mkdtemp(prefix=f"container-home-{args.uid}-")
    os.makedirs(home, exist_ok=True)
    os.chown(home, args.uid, args.gid)
    # Docker sets HOME (and the image's variables), never USER or LOGNAME:
    # root's would be a lie here.
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "SUDO_USER")}
    env["HOME"] = home

    # runc without no_new_privs: the filter goes on while the process still
    # holds CAP_SYS_ADMIN, then the capabilities and the uid are dropped.
    bpf.load()
    if stub:
        load_bpf(stub)
    drop_to(args.uid, args.gid)
    os.execvpe(args.cmd[0], args.cmd, env)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
