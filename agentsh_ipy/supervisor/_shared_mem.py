"""ptrace mode: arguments in memory another process can write.

An allowed open or send in ptrace mode continues in the kernel, which reads
its path or address again. The tracer holds every task sharing the caller's
memory meanwhile (Tracer.hold_siblings), but a shared mapping (MAP_SHARED:
anonymous, a memfd, a file, System V shm) is written by other processes
too, held or not, or by write(2) to its file. So a call that would continue
is refused when a buffer the decision read lies in such a mapping: the
decoder reads through a RecordingReader, and `shared_mapping` looks the
ranges up in /proc/TID/maps.

Private mappings are the caller's alone, except pages never written of a
private file mapping, which follow the file (see docs/security.md).
"""

from __future__ import annotations

from .._linux import procfs

RULE = "shared-memory-argument"


class RecordingReader(procfs.MemoryReader):
    """A MemoryReader that keeps the (address, size) of every read since
    the last `reset`."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[int, int]] = []

    def reset(self) -> None:
        self.ranges = []

    def read(self, pid: int, addr: int, size: int) -> bytes:
        if size > 0:
            self.ranges.append((addr, size))
        return super().read(pid, addr, size)


def shared_mapping(tid: int, ranges: list[tuple[int, int]]) -> str | None:
    """The first mapping of ``tid`` that is shared and overlaps one of
    ``ranges``, as /proc/TID/maps shows it (None: none is)."""
    if not ranges:
        return None
    with open(f"/proc/{tid}/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) < 2 or fields[1][3:4] != "s":
                continue
            lo, _, hi = fields[0].partition("-")
            start, end = int(lo, 16), int(hi, 16)
            if any(addr < end and addr + size > start for addr, size in ranges):
                return line.strip()
    return None
