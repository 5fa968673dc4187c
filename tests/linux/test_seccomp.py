"""The BPF assembler and filter shape (no kernel needed for most of it)."""

from __future__ import annotations

import struct

import pytest

from agentsh_ipy._linux import arch, seccomp
from tests.conftest import linux_only

pytestmark = linux_only


def _insns(prog: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]


def test_filter_starts_with_the_arch_check_and_ends_in_returns() -> None:
    a = arch.current()
    insns = _insns(seccomp.build_filter(a))
    assert insns[0] == (0x20, 0, 0, 4)  # ld arch
    assert insns[1][0] == 0x15 and insns[1][3] == a.audit_arch
    rets = {k for code, _jt, _jf, k in insns if code == 0x06}
    assert seccomp.RET_USER_NOTIF in rets and seccomp.RET_ALLOW in rets
    assert seccomp.RET_KILL_PROCESS in rets
    assert len(insns) < 4096


def test_every_jump_lands_inside_the_program() -> None:
    insns = _insns(seccomp.build_filter(arch.current()))
    for i, (code, jt, jf, _k) in enumerate(insns):
        if code & 0x07 == 0x05:  # BPF_JMP
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


def test_notify_struct_sizes_match_the_kernel() -> None:
    assert seccomp.sizes_ok()
