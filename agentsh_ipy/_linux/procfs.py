"""Reading a tracee: its memory (process_vm_readv, else /proc/PID/mem) and /proc facts."""

from __future__ import annotations

import ctypes
import errno
import os

from ._syscall import check, libc


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_vm_readv = libc.process_vm_readv
_vm_readv.restype = ctypes.c_ssize_t
_vm_readv.argtypes = [
    ctypes.c_int,
    ctypes.POINTER(_Iovec),
    ctypes.c_ulong,
    ctypes.POINTER(_Iovec),
    ctypes.c_ulong,
    ctypes.c_ulong,
]

_PAGE = 4096


class MemoryReader:
    """Reads another process's memory; falls back to /proc/PID/mem once
    process_vm_readv is refused (e.g. EPERM under some LSMs)."""

    def __init__(self) -> None:
        self.use_vm_readv = True

    def read(self, pid: int, addr: int, size: int) -> bytes:
        if size <= 0:
            return b""
        if self.use_vm_readv:
            try:
                return self._vm_read(pid, addr, size)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOSYS):
                    raise
                self.use_vm_readv = False
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, size, addr)
        finally:
            os.close(fd)

    def _vm_read(self, pid: int, addr: int, size: int) -> bytes:
        buf = ctypes.create_string_buffer(size)
        local = _Iovec(ctypes.addressof(buf), size)
        remote = _Iovec(addr, size)
        n = check(
            _vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0), "process_vm_readv"
        )
        return buf.raw[:n]

    def read_exact(self, pid: int, addr: int, size: int) -> bytes:
        data = self.read(pid, addr, size)
        if len(data) != size:
            raise OSError(errno.EFAULT, f"short read of {size} bytes at {addr:#x}")
        return data

    def read_cstring(self, pid: int, addr: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string, read page by page (never across an unmapped page)."""
        if addr == 0:
            raise OSError(errno.EFAULT, "NULL string pointer")
        out = bytearray()
        while len(out) < limit:
            chunk = min(_PAGE - (addr % _PAGE), limit - len(out))
            data = self.read(pid, addr, chunk)
            if not data:
                raise OSError(errno.EFAULT, f"unreadable string at {addr:#x}")
            nul = data.find(b"\0")
            if nul >= 0:
                return bytes(out + data[:nul])
            out += data
            addr += len(data)
        raise OSError(errno.ENAMETOOLONG, "string longer than the limit")

    def read_ptr_array(self, pid: int, addr: int, limit: int = 4096) -> list[int]:
        """A NULL-terminated array of 64-bit pointers (argv), read page by page."""
        out: list[int] = []
        while len(out) < limit:
            chunk = _PAGE - (addr % _PAGE)
            data = self.read(pid, addr, chunk - chunk % 8 or 8)
            if len(data) < 8:
                raise OSError(errno.EFAULT, f"unreadable pointer array at {addr:#x}")
            for i in range(0, len(data) - 7, 8):
                ptr = int.from_bytes(data[i : i + 8], "little")
                if ptr == 0:
                    return out
                out.append(ptr)
            addr += len(data) - len(data) % 8
        raise OSError(errno.E2BIG, "argument list longer than the limit")


def status(pid: int) -> dict[str, str]:
    """Fields of /proc/PID/status (Tgid, PPid, Uid, ...)."""
    out: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def tgid_ppid(tid: int) -> tuple[int, int]:
    st = status(tid)
    return int(st["Tgid"]), int(st["PPid"])


def cwd(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/cwd")


def fd_path(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def open_fds(pid: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
    return out


def first_readable_address(pid: int) -> int:
    """Start of the first readable mapping, to probe memory access."""
    with open(f"/proc/{pid}/maps", encoding="ascii") as f:
        for line in f:
            rng, perms = line.split()[:2]
            if perms.startswith("r"):
                return int(rng.split("-")[0], 16)
    raise OSError(errno.EFAULT, f"no readable mapping in process {pid}")


def _proc_self(name: str, tgid: int, tid: int) -> str | None:
    """/proc/self and /proc/thread-self as the tracee sees them, not as we do."""
    if name == "self":
        return f"/proc/{tgid}"
    if name == "thread-self":
        return f"/proc/{tgid}/task/{tid}"
    return None


def resolve(path: str, tgid: int, tid: int, *, follow_last: bool = True, root: str = "/") -> str:
    """The path's symlinks resolved as the tracee would, from our side.

    Like os.path.realpath, but /proc/self and /proc/thread-self mean the
    tracee, and a magic link that names no path (``pipe:[12]``) is kept as
    is. A missing component ends resolution: the rest is appended. With
    ``root`` (openat2's RESOLVE_IN_ROOT), absolute links restart there and
    ".." never climbs above it.
    """
    root = root.rstrip("/") or "/"
    todo = [p for p in path.split("/") if p][::-1]
    out = root if path.startswith(root) and root != "/" else "/"
    if out != "/":
        todo = [p for p in path[len(root) :].split("/") if p][::-1]
    links = 0
    while todo:
        name = todo.pop()
        if name == ".":
            continue
        if name == "..":
            out = out if out == root else os.path.dirname(out)
            continue
        if out == "/proc":
            mapped = _proc_self(name, tgid, tid)
            if mapped is not None:
                out = mapped
                continue
        cand = out + name if out.endswith("/") else out + "/" + name
        if not todo and not follow_last:
            return cand
        try:
            target = os.readlink(cand)
        except OSError:  # not a link, or missing: lexical from here
            out = cand
            continue
        links += 1
        if links > 40:
            raise OSError(errno.ELOOP, f"too many symlinks in {path}")
        if not target.startswith("/"):
            if cand.startswith("/proc/"):  # magic link without a path: stop here
                out = cand
                continue
            todo.extend([p for p in target.split("/") if p][::-1])
            continue
        out = root
        todo.extend([p for p in target.split("/") if p][::-1])
    return out


def pidfd_pid(pid: int, fd: int) -> int | None:
    """The process a pidfd of ``pid`` refers to (from fdinfo), or None."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def tracer_of(pid: int) -> int:
    """TracerPid of a task (0 when untraced)."""
    return int(status(pid).get("TracerPid", "0"))


def write_memory(pid: int, addr: int, data: bytes) -> None:
    """Write into a tracee's memory through /proc/PID/mem, which (unlike
    process_vm_writev) also reaches read-only pages, as a debugger does."""
    fd = os.open(f"/proc/{pid}/mem", os.O_WRONLY | os.O_CLOEXEC)
    try:
        if os.pwrite(fd, data, addr) != len(data):
            raise OSError(errno.EFAULT, f"short write at {addr:#x}")
    finally:
        os.close(fd)


def all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def group_members(pgid: int) -> list[int]:
    """Processes whose process group is ``pgid`` (field 5 of /proc/PID/stat)."""
    out = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2:3] == [str(pgid).encode()]:
            out.append(pid)
    return out


# What a pseudo-terminal master's fd links to (/dev/ptmx, or devpts's own node).
PTMX = ("/dev/ptmx", "/dev/pts/ptmx")


def terminals_held(pid: int) -> tuple[set[int], set[int]]:
    """(the N of each /dev/pts/N whose master ``pid`` holds, by its fdinfo's
    ``tty-index``; the N of each /dev/pts/N it has open). ``pid`` may be a
    thread id: a thread can have a file table of its own. Empty when the
    process is gone."""
    masters: set[int] = set()
    opened: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return masters, opened
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            if target.startswith("/dev/pts/") and target[9:].isdigit():
                opened.add(int(target[9:]))
            elif target in PTMX:
                with open(f"/proc/{pid}/fdinfo/{name}", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("tty-index:"):
                            masters.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return masters, opened


def netlink_protocol(tid: int, fd: int) -> int | None:
    """The netlink protocol (NETLINK_ROUTE = 0, ...) of fd ``fd`` of thread
    ``tid``, found by the socket's inode in its network namespace's netlink
    table; None when the fd is no netlink socket there."""
    try:
        target = os.readlink(f"/proc/{tid}/fd/{fd}")
    except OSError:
        return None
    if not (target.startswith("socket:[") and target.endswith("]")):
        return None
    inode = target[8:-1]
    try:
        with open(f"/proc/{tid}/net/netlink", encoding="ascii") as f:
            next(f, None)  # the header
            for line in f:
                cols = line.split()
                if len(cols) >= 10 and cols[9] == inode:
                    return int(cols[1])
    except (OSError, ValueError):
        return None
    return None
