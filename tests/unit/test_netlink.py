"""supervisor/_netlink.py: the walk over a netlink buffer, as the kernel walks it."""

from __future__ import annotations

import struct

from agentsh_ipy.supervisor import _netlink


def msg(kind: int, body: bytes = b"", length: int | None = None) -> bytes:
    size = 16 + len(body) if length is None else length
    return struct.pack("<IHHII", size, kind, 1, 0, 0) + body


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def test_reads_are_not_changes() -> None:
    # RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE; NLMSG_NOOP and NLMSG_DONE
    assert _netlink.changes(msg(18) + msg(22) + msg(26) + msg(1) + msg(3)) == []


def test_new_del_set_are_changes() -> None:
    kinds = [16, 17, 19, 20, 21, 24, 25, 28, 104]
    assert _netlink.changes(b"".join(msg(k) for k in kinds)) == kinds


def test_a_change_after_other_messages_is_found() -> None:
    first = pad(msg(18, b"\x00" * 5))  # an unaligned length: the next starts 4-aligned
    assert _netlink.changes(first + msg(20)) == [20]


def test_the_walk_stops_where_the_kernel_stops() -> None:
    assert _netlink.changes(msg(18, length=8) + msg(20)) == []  # shorter than a header
    assert _netlink.changes(msg(20, length=64)) == []  # longer than the buffer
    assert _netlink.changes(msg(20)[:15]) == []  # not a whole header
    assert _netlink.changes(b"") == []


def test_names() -> None:
    assert _netlink.type_name(20) == "RTM_NEWADDR"
    assert _netlink.type_name(25) == "RTM_DELROUTE"
    assert _netlink.type_name(19) == "RTM_SETLINK"
    assert _netlink.type_name(1000) == "type 1000"
