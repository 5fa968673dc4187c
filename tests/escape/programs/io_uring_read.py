"""Threat: read ~/.ssh/id_rsa through io_uring.  IORING_OP_OPENAT and
IORING_OP_READ are performed by the kernel on the ring's behalf and never
pass through the seccomp filter as open/read syscalls, so the only safe
answer is to refuse io_uring_setup itself.

(x86_64 syscall numbers.)
"""

import ctypes
import mmap
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_IO_URING_SETUP = 425
SYS_IO_URING_ENTER = 426
IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000
IORING_ENTER_GETEVENTS = 1
IORING_OP_OPENAT = 18
IORING_OP_READ = 22
AT_FDCWD = -100


class Ring:
    """Just enough of liburing: one SQE in flight at a time."""

    def __init__(self, entries=4):
        params = ctypes.create_string_buffer(120)  # struct io_uring_params
        self.fd = raw_syscall(SYS_IO_URING_SETUP, entries, params)
        raw = params.raw
        self.sq_entries, self.cq_entries = struct.unpack_from("<II", raw, 0)
        # struct io_sqring_offsets at 40: head tail ring_mask ring_entries flags dropped array
        self.sq_off = struct.unpack_from("<7I", raw, 40)
        # struct io_cqring_offsets at 80: head tail ring_mask ring_entries overflow cqes
        self.cq_off = struct.unpack_from("<6I", raw, 80)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        self.sq = mmap.mmap(
            self.fd,
            self.sq_off[6] + self.sq_entries * 4,
            mmap.MAP_SHARED,
            prot,
            offset=IORING_OFF_SQ_RING,
        )
        self.cq = mmap.mmap(
            self.fd,
            self.cq_off[5] + self.cq_entries * 16,
            mmap.MAP_SHARED,
            prot,
            offset=IORING_OFF_CQ_RING,
        )
        self.sqes = mmap.mmap(
            self.fd, self.sq_entries * 64, mmap.MAP_SHARED, prot, offset=IORING_OFF_SQES
        )

    def run(self, opcode, fd, addr, length, off=0, op_flags=0):
        """Submit one SQE and wait for its completion; return cqe.res."""
        tail = struct.unpack_from("<I", self.sq, self.sq_off[1])[0]
        mask = struct.unpack_from("<I", self.sq, self.sq_off[2])[0]
        index = tail & mask
        sqe = struct.pack(
            "<BBHiQQIIQHHiQQ", opcode, 0, 0, fd, off, addr, length, op_flags, 7, 0, 0, 0, 0, 0
        )
        self.sqes[index * 64 : index * 64 + 64] = sqe
        struct.pack_into("<I", self.sq, self.sq_off[6] + index * 4, index)
        struct.pack_into("<I", self.sq, self.sq_off[1], tail + 1)
        raw_syscall(SYS_IO_URING_ENTER, self.fd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0)
        head = struct.unpack_from("<I", self.cq, self.cq_off[0])[0]
        cmask = struct.unpack_from("<I", self.cq, self.cq_off[2])[0]
        _user_data, res, _flags = struct.unpack_from(
            "<QiI", self.cq, self.cq_off[5] + (head & cmask) * 16
        )
        struct.pack_into("<I", self.cq, self.cq_off[0], head + 1)
        if res < 0:
            raise OSError(-res, os.strerror(-res))
        return res


x86_64_only()
key = ctypes.create_string_buffer(os.fsencode(os.path.expanduser("~/.ssh/id_rsa")))
ring = report("setup", Ring)
if ring is not None:
    fd = report(
        "openat",
        lambda: ring.run(IORING_OP_OPENAT, AT_FDCWD, ctypes.addressof(key), 0, 0, os.O_RDONLY),
    )
    if fd is not None:
        buf = ctypes.create_string_buffer(4096)
        n = report("read", lambda: ring.run(IORING_OP_READ, fd, ctypes.addressof(buf), 4096))
        if n:
            print("content:", buf.raw[:n].decode(errors="replace"), flush=True)
sys.exit(DONE)
