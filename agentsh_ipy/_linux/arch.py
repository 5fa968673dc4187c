"""The running architecture: its seccomp audit arch and syscall numbers.

Names come from python-ptrace's tables; syscalls newer than those tables
share one number on every architecture since 5.1 and are added here.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass

# Syscalls numbered after the unification at 424 (same number everywhere)
# that python-ptrace's tables do not have yet.
_UNIFIED_NEWER = {
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "memfd_secret": 447,
    "fchmodat2": 452,
}


@dataclass(frozen=True)
class Arch:
    name: str
    audit_arch: int
    numbers: dict[str, int]
    # x86_64 also accepts x32 syscalls (nr | 0x40000000); the filter must refuse them.
    x32_bit: int | None

    def nr(self, name: str) -> int | None:
        return self.numbers.get(name)

    def name_of(self, nr: int) -> str:
        return self._names.get(nr) or f"syscall_{nr}"

    @functools.cached_property
    def _names(self) -> dict[int, str]:  # asked once per trapped call
        names: dict[int, str] = {}
        for name, n in self.numbers.items():
            names.setdefault(n, name)  # the first name, as a linear search would give
        return names


def _table(names: dict[int, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for nr, name in sorted(names.items()):
        if nr >= 512:  # x32 duplicates in the x86_64 table
            continue
        out.setdefault(name, nr)
    for name, nr in _UNIFIED_NEWER.items():
        out.setdefault(name, nr)
    return out


def current() -> Arch:
    machine = platform.machine()
    if machine == "x86_64":
        from ptrace.syscall.linux.x86_64 import SYSCALL_NAMES

        return Arch("x86_64", 0xC000003E, _table(SYSCALL_NAMES), 0x40000000)
    if machine == "aarch64":
        from ptrace.syscall.linux.aarch64 import SYSCALL_NAMES

        return Arch("aarch64", 0xC00000B7, _table(SYSCALL_NAMES), None)
    raise OSError(f"unsupported architecture {machine!r} (supported: x86_64, aarch64)")
