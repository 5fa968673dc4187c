"""The running architecture: its seccomp audit arch and syscall numbers.

Names come from python-ptrace's tables; syscalls newer than those tables
share one number on every architecture since 5.1 and are added here.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass

# Syscalls numbered after the unification at 424 (same number everywhere)
# that python-ptrace's tables do not have yet.
_UNIFIED_NEWER = {
    "process_madvise": 440,
    "epoll_pwait2": 441,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "memfd_secret": 447,
    "process_mrelease": 448,
    "futex_waitv": 449,
    "set_mempolicy_home_node": 450,
    "cachestat": 451,
    "fchmodat2": 452,
    "map_shadow_stack": 453,
    "futex_wake": 454,
    "futex_wait": 455,
    "futex_requeue": 456,
    "statmount": 457,
    "listmount": 458,
    "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "mseal": 462,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_getattr": 468,
    "file_setattr": 469,
}


# x86_64's own newer syscalls (called by the kernel's uprobe trampolines).
_X86_64_NEWER = {"uretprobe": 335, "uprobe": 336}


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


def _table(names: dict[int, str], newer: dict[str, int] | None = None) -> dict[str, int]:
    out: dict[str, int] = {}
    for nr, name in sorted(names.items()):
        if nr >= 512:  # x32 duplicates in the x86_64 table
            continue
        out.setdefault(name, nr)
    for name, nr in {**_UNIFIED_NEWER, **(newer or {})}.items():
        out.setdefault(name, nr)
    return out


def table(machine: str) -> dict[str, int]:
    """Every syscall name of ``machine`` (x86_64 or aarch64) and its number."""
    return _table(_ptrace_names(machine), _X86_64_NEWER if machine == "x86_64" else None)


def _ptrace_names(machine: str) -> dict[int, str]:
    """python-ptrace's ``ptrace/syscall/linux/<machine>.py`` (one dict), loaded
    from its file: importing it by name runs the ``ptrace.syscall`` package,
    which loads the debugger, ctypes.util and an ldconfig subprocess (~40 ms
    of every start-up)."""
    spec = importlib.util.find_spec("ptrace")  # finds, does not import
    if spec is None or not spec.submodule_search_locations:
        raise OSError("python-ptrace is not installed (its syscall tables are needed)")
    path = os.path.join(spec.submodule_search_locations[0], "syscall", "linux", machine + ".py")
    table = importlib.util.spec_from_file_location(f"_agentsh_syscalls_{machine}", path)
    if table is None or table.loader is None:
        raise OSError(f"python-ptrace has no syscall table at {path}")
    module = importlib.util.module_from_spec(table)
    table.loader.exec_module(module)
    names: dict[int, str] = module.SYSCALL_NAMES
    return names


@functools.cache
def current() -> Arch:
    machine = os.uname().machine
    if machine == "x86_64":
        return Arch("x86_64", 0xC000003E, table(machine), 0x40000000)
    if machine == "aarch64":
        return Arch("aarch64", 0xC00000B7, table(machine), None)
    raise OSError(f"unsupported architecture {machine!r} (supported: x86_64, aarch64)")
