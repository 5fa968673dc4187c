"""The control messages a sendmsg may carry (supervisor/_subcmds.py)."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest

from agentsh_ipy.supervisor import _subcmds

IPPROTO_IP, IPPROTO_IPV6, SOL_SOCKET = 0, 41, 1


class _Stub:
    """Just the decoder's refusal, for control_refusal."""

    def _refuse(self, name: str, pid: int, tid: int, a: Any, err: int, **fields: Any) -> Any:
        return {"err": err, **fields}


def cmsg(level: int, kind: int, data: bytes) -> bytes:
    raw = struct.pack("<Qii", 16 + len(data), level, kind) + data
    return raw + b"\0" * (-len(raw) % 8)


def refusal(control: bytes) -> Any:
    return _subcmds.control_refusal(_Stub(), "sendmsg", 1, 1, 3, control)  # type: ignore[arg-type]


def test_ttl_tos_and_fds_pass() -> None:
    ok = cmsg(IPPROTO_IP, 2, struct.pack("<i", 7)) + cmsg(IPPROTO_IP, 1, b"\x10\0\0\0")
    assert refusal(ok) is None
    assert refusal(cmsg(SOL_SOCKET, 1, struct.pack("<i", 4))) is None  # SCM_RIGHTS


@pytest.mark.parametrize(
    ("control", "named"),
    [
        # IP_RETOPTS: a loose source route through 127.0.0.2
        (cmsg(IPPROTO_IP, 7, bytes([131, 7, 4]) + socket.inet_aton("127.0.0.2") + b"\0"),
         "IP_RETOPTS"),
        (cmsg(IPPROTO_IPV6, 57, b"\0" * 24), "IPV6_RTHDR"),
        (cmsg(IPPROTO_IPV6, 9, b"\0" * 28), "IPV6_NEXTHOP"),
        (cmsg(SOL_SOCKET, 36, struct.pack("<I", 1)), "SO_MARK"),
        # IP_PKTINFO with an interface
        (cmsg(IPPROTO_IP, 8, struct.pack("<i", 1) + b"\0" * 8), "IP_PKTINFO"),
        (cmsg(IPPROTO_IPV6, 50, b"\0" * 16 + struct.pack("<i", 2)), "IPV6_PKTINFO"),
        (cmsg(IPPROTO_IP, 99, b"\0" * 4), "0/99"),  # not on the list
        (struct.pack("<Qii", 64, IPPROTO_IP, 2), "0/2"),  # longer than the buffer
        (b"\0" * 8, ""),  # truncated
    ],
)  # fmt: skip
def test_reroutes_are_refused_and_named(control: bytes, named: str) -> None:
    got = refusal(cmsg(IPPROTO_IP, 2, struct.pack("<i", 7)) + control)
    assert got is not None and got["err"] == 22 and got["cmsg"] == named, got


def test_pktinfo_without_interface_or_source_passes() -> None:
    assert refusal(cmsg(IPPROTO_IP, 8, b"\0" * 12)) is None
