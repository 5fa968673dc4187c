"""What an exec runs, beyond the path it names: the program behind the
dynamic loader used as a launcher (``ld.so PROGRAM``), a script's
interpreter, a copy or a hard link of a program a command rule names (found
by content), and a program with no file on disk (a memfd, an unlinked file).

The policy decides by names; this module finds the names to ask it about.
Each finding becomes a policy check with the real argv, and the audit event
says what was found: ``via``/``runs`` (a loader), ``interpreter`` (a
script), ``same_content_as`` (a copy), ``sha256`` (no file on disk).

The decoder's check reads the file before the kernel does, so a racing
writer could change it in between: the tracer's exec event checks again on
what the kernel mapped (``/proc/PID/exe``), before its first instruction.
A mapped regular file cannot be written while it runs (ETXTBSY), so that
second look is final; a memfd can (see ``_no_file``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import struct
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import policy as pol
from .._linux import procfs
from ._request import worst

BINPRM_BUF = 256  # what the kernel reads of a file to pick its format (BINPRM_BUF_SIZE)
# The kernel follows at most this many interpreters (exec_binprm: "4 levels
# of binfmt rewrites", depth > 5 is ELOOP); past it the exec fails anyway.
MAX_DEPTH = 5
HASH_LIMIT = 256 << 20  # a program bigger than this is not indexed (nor hashed)
# Where a bare command name is looked for, besides the session's PATH.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
NO_FILE_RULE = "exec-no-file"
UNREADABLE_RULE = "exec-unreadable"
F_GET_SEALS = 1034
F_SEAL_WRITE = 0x8

ET_DYN = 3
PT_INTERP = 3
# The loader's own names (glibc, musl, the generic ld.so); used together
# with what the file is (an ELF shared object without an interpreter).
_LOADER_NAME = re.compile(
    r"ld-linux[\w.-]*\.so[\d.]*|ld-musl-[\w.-]+\.so[\d.]*|ld(?:64)?\.so[\d.]*"
)

# glibc's ld.so options (rtld.c, `ld.so --help`): those that take a value,
# and those that mean no program runs (they print and exit).
LDSO_WITH_VALUE = frozenset(
    {"--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0",
     "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"}
)  # fmt: skip
LDSO_FLAGS = frozenset({"--list", "--verify", "--inhibit-cache"})
LDSO_NO_PROGRAM = frozenset({"--help", "--version", "--list-tunables", "--list-diagnostics"})


# -- parsing (no I/O) ----------------------------------------------------------


@dataclass
class LdsoRun:
    """What ``ld.so ARGS`` will do: ``program`` (as given, None when none
    runs), the argv the program sees (``argv``: its argv[0] is ``--argv0``
    or the program), the options given, and ``mode`` ("run", "list" or
    "verify": the last two load the program but do not run it)."""

    program: str | None
    argv: list[str]
    options: dict[str, str] = field(default_factory=dict)
    mode: str = "run"


def parse_ldso(argv: Sequence[str]) -> LdsoRun:
    """Parse a dynamic loader's command line as glibc's rtld does: options
    until the first word that is not one; that word is the program. An
    unknown ``--option`` or an option missing its value makes ld.so print
    its usage and exit (no program). ``--`` ends the options (newer glibc;
    2.36 refuses it, so deciding on the word after it is only stricter)."""
    options: dict[str, str] = {}
    mode = "run"
    i = 1
    while i < len(argv):
        word = argv[i]
        if word in LDSO_WITH_VALUE:
            if i + 1 >= len(argv):
                return LdsoRun(None, [], options, "usage")
            options[word[2:]] = argv[i + 1]
            i += 2
        elif word in LDSO_FLAGS:
            options[word[2:]] = ""
            if word != "--inhibit-cache":
                mode = word[2:]
            i += 1
        elif word in LDSO_NO_PROGRAM:
            return LdsoRun(None, [], options, word[2:])
        elif word == "--":
            i += 1
            break
        elif word.startswith("--"):
            return LdsoRun(None, [], options, "usage")
        else:
            break
    if i >= len(argv):
        return LdsoRun(None, [], options, "usage" if mode == "run" else mode)
    program = argv[i]
    return LdsoRun(program, [options.get("argv0", program), *argv[i + 1 :]], options, mode)


def parse_shebang(head: bytes) -> tuple[str, str | None] | None:
    """The interpreter and optional argument of a ``#!`` line, as the
    kernel's binfmt_script reads them from the first ``BINPRM_BUF`` bytes;
    None when the kernel would not run it as a script (not ``#!``, no
    interpreter, or a line too long to hold all of the interpreter's name)."""
    buf = head[:BINPRM_BUF].ljust(BINPRM_BUF, b"\0")
    if buf[:2] != b"#!":
        return None
    end = buf.find(b"\n")
    if end < 0:
        # No newline: the name must end (space, tab or NUL) within the
        # buffer, or the kernel takes it as truncated (ENOEXEC).
        rest = buf[2 : BINPRM_BUF - 1]
        start = len(rest) - len(rest.lstrip(b" \t"))
        if start == len(rest) or not re.search(rb"[ \t\0]", rest[start:]):
            return None
        end = BINPRM_BUF - 1
    line = buf[2:end].rstrip(b" \t")
    line = line.lstrip(b" \t")
    if not line:
        return None
    m = re.match(rb"([^ \t\0]*)(?:[ \t\0](.*))?\Z", line, re.S)
    assert m is not None  # the pattern matches any bytes
    name, rest_arg = m.group(1), m.group(2)
    if not name:
        return None  # a NUL right after "#!": an empty name
    arg = None
    if rest_arg is not None and line[len(name)] != 0:
        rest_arg = rest_arg.lstrip(b" \t")
        if rest_arg:
            arg = os.fsdecode(rest_arg.split(b"\0", 1)[0])
    return os.fsdecode(name), arg


def elf_info(head: bytes, read_at: Any = None) -> tuple[int, str | None] | None:
    """(e_type, PT_INTERP) of an ELF file from its first bytes; ``read_at``
    (offset, size) -> bytes reads the program headers when they lie beyond.
    None when it is not ELF."""
    if head[:4] != b"\x7fELF" or len(head) < 52:
        return None
    is64 = head[4] == 2
    end = "<" if head[5] == 1 else ">"
    e_type = struct.unpack_from(end + "H", head, 16)[0]
    if is64:
        if len(head) < 64:
            return None
        phoff = struct.unpack_from(end + "Q", head, 32)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
    else:
        phoff = struct.unpack_from(end + "I", head, 28)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
    if phnum == 0 or phentsize < (56 if is64 else 32) or phnum > 256:
        return e_type, None
    table = head[phoff : phoff + phentsize * phnum]
    if len(table) < phentsize * phnum and read_at is not None:
        table = read_at(phoff, phentsize * phnum)
    for k in range(min(phnum, len(table) // phentsize)):
        at = k * phentsize
        if struct.unpack_from(end + "I", table, at)[0] != PT_INTERP:
            continue
        if is64:
            off, size = struct.unpack_from(end + "Q", table, at + 8)[0], None
            size = struct.unpack_from(end + "Q", table, at + 32)[0]
        else:
            off = struct.unpack_from(end + "I", table, at + 4)[0]
            size = struct.unpack_from(end + "I", table, at + 16)[0]
        raw = head[off : off + size] if off + size <= len(head) else b""
        if not raw and read_at is not None and size <= 4096:
            raw = read_at(off, size)
        return e_type, os.fsdecode(raw.split(b"\0", 1)[0]) or None
    return e_type, None


# -- files ---------------------------------------------------------------------


def _sha256(fd: int, size: int) -> str | None:
    """The file's sha256, read through our own fd (bounded by ``size``)."""
    if size > HASH_LIMIT:
        return None
    h = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        if not chunk:
            break
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class Original:
    """A program some non-allow command rule names, where it is installed."""

    real: str  # its path, links resolved
    names: set[str]  # the paths the rules matched it under (links included)
    dev: int
    ino: int
    size: int
    sha: str | None = None
    stamp: tuple[int, ...] = ()


class ContentIndex:
    """The programs non-allow command rules name, by size then sha256:
    at an exec only a file of an indexed size is hashed."""

    def __init__(self, rules: Iterable[Any], dirs: Sequence[str]) -> None:
        self.by_size: dict[int, list[Original]] = {}
        self._by_real: dict[str, Original] = {}
        self._lock = threading.Lock()
        listings: dict[str, list[str]] = {}
        for rule in rules:
            if rule.decision == "allow":
                continue
            for pattern in rule.commands:
                for path in self._candidates(pattern, dirs, listings):
                    self._add(path)

    @staticmethod
    def _candidates(pattern: Any, dirs: Sequence[str], listings: dict[str, list[str]]) -> list[str]:
        text = pattern.glob.pattern
        literal = not re.search(r"[*?\[]", text)
        if pattern.full_path and literal:
            return [text]
        if literal:  # a bare name: one lookup per directory, no listing
            return [p for p in (os.path.join(d, text) for d in dirs) if os.path.lexists(p)]
        found = []
        for d in dirs:
            if d not in listings:
                try:
                    listings[d] = sorted(os.listdir(d))
                except OSError:
                    listings[d] = []
            for name in listings[d]:
                if pattern.full_path:
                    full = os.path.join(d, name)
                    if pattern.matches(full, name):
                        found.append(full)
                elif pattern.matches(name, name):
                    found.append(os.path.join(d, name))
        return found

    def _add(self, path: str) -> None:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode) or st.st_size > HASH_LIMIT or st.st_size == 0:
            return
        o = self._by_real.get(real)
        if o is None:
            o = Original(real, set(), st.st_dev, st.st_ino, st.st_size)
            self._by_real[real] = o
            self.by_size.setdefault(st.st_size, []).append(o)
        o.names.update({path, real})

    def _sha_of(self, o: Original) -> str | None:
        """The original's sha256, computed once (again if it changed)."""
        try:
            fd = os.open(o.real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            with self._lock:
                if o.stamp == _stamp(st):
                    return o.sha
            sha = _sha256(fd, st.st_size) if st.st_size == o.size else None
            with self._lock:
                o.sha, o.stamp = sha, _stamp(st)
            return sha
        finally:
            os.close(fd)

    def match(self, fd: int, st: os.stat_result, real: str) -> tuple[Original | None, str | None]:
        """The original this file is a copy or a hard link of (None when it
        is none, or is the original itself, whose name was decided), and the
        file's sha256 when it was computed."""
        candidates = self.by_size.get(st.st_size)
        if not candidates:
            return None, None
        for o in candidates:
            if (st.st_dev, st.st_ino) == (o.dev, o.ino):
                return (None if real == o.real else o), None
        sha = _sha256(fd, st.st_size)
        for o in candidates:
            if sha is not None and self._sha_of(o) == sha:
                return o, sha
        return None, sha

    def itself(self, st: os.stat_result, real: str) -> Original | None:
        """The original this file is, at its own path."""
        for o in self.by_size.get(st.st_size, ()):
            if (st.st_dev, st.st_ino) == (o.dev, o.ino) and real == o.real:
                return o
        return None


class Loaders:
    """This host's dynamic loaders: the PT_INTERP of the programs the
    sandbox starts with (the Python running us, the shell), by identity and
    by content (a renamed copy of ld.so is still ld.so)."""

    def __init__(self) -> None:
        self.ids: set[tuple[int, int]] = set()
        self.content: dict[int, str] = {}  # size -> sha256
        for exe in {"/proc/self/exe", sys.executable, "/bin/sh", "/usr/bin/env"}:
            interp = _interp_of(exe)
            if interp is None:
                continue
            try:
                fd = os.open(interp, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                self.ids.add((st.st_dev, st.st_ino))
                sha = _sha256(fd, st.st_size)
                if sha is not None:
                    self.content[st.st_size] = sha
            finally:
                os.close(fd)

    def is_loader(self, fd: int, st: os.stat_result, head: bytes, name: str) -> bool:
        if (st.st_dev, st.st_ino) in self.ids:
            return True
        elf = elf_info(head, lambda off, n: os.pread(fd, n, off))
        if elf is None or elf[0] != ET_DYN or elf[1] is not None:
            return False  # ld.so is a shared object with no interpreter of its own
        if _LOADER_NAME.fullmatch(name):
            return True
        sha = self.content.get(st.st_size)
        return sha is not None and _sha256(fd, st.st_size) == sha


def _interp_of(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            return (elf_info(head, lambda off, n: os.pread(f.fileno(), n, off)) or (0, None))[1]
    except OSError:
        return None


# -- the checks ------------------------------------------------------------------


@dataclass
class Finding:
    """What an exec runs besides its path: decisions to weigh with the
    name check, and the audit fields that say why."""

    decisions: list[pol.Decision] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def worst(self) -> pol.Decision | None:
        return worst(self.decisions) if self.decisions else None


_FD_DIR = re.compile(r"/proc/\d+(?:/task/\d+)?/fd")
_NOT_A_PATH = re.compile(r"^/memfd:| \(deleted\)$")  # what /proc/PID/fd/N shows for no file


class ExecIdentity:
    """The checks for one policy; shared by a session's decoder and its
    tracer (see :func:`for_policy`)."""

    def __init__(self, policy: pol.Policy, path: str | None = None) -> None:
        self.policy = policy
        path = os.environ.get("PATH", "") if path is None else path
        self.dirs = list(dict.fromkeys([d for d in path.split(":") if d.startswith("/")]
                                       + list(SYSTEM_DIRS)))  # fmt: skip
        self._index: ContentIndex | None = None
        self._loaders: Loaders | None = None
        self._lock = threading.Lock()

    @property
    def index(self) -> ContentIndex:
        with self._lock:
            if self._index is None:
                self._index = ContentIndex(self.policy.command_rules, self.dirs)
            return self._index

    @property
    def loaders(self) -> Loaders:
        with self._lock:
            if self._loaders is None:
                self._loaders = Loaders()
            return self._loaders

    def warm(self) -> None:
        """Build the index and find the loaders now (both are lazy)."""
        # A failure here is met again at the first exec, whose decision
        # then fails closed.
        with contextlib.suppress(Exception):
            _ = self.index, self.loaders

    # -- at the syscall (the decoder) ----------------------------------------
    def judge(
        self, pid: int, tid: int, path: str, real: str, argv: Sequence[str],
        empty_fd: int | None = None,
    ) -> Finding:  # fmt: skip
        """What the exec of ``path`` (``real`` resolved; ``empty_fd``: an
        execveat of that fd with AT_EMPTY_PATH) will run. The name check on
        ``path`` itself is the decoder's."""
        found = Finding()
        fd = self._open_target(pid, tid, path, real, empty_fd)
        if fd is None:
            return found  # the kernel will not find it either (or the exec event will)
        try:
            self._judge_fd(fd, real, list(argv), pid, tid, found, 0)
        except OSError:
            pass  # unreadable midway: the exec event looks again at what is mapped
        finally:
            os.close(fd)
        return found

    def _open_target(
        self, pid: int, tid: int, path: str, real: str, empty_fd: int | None
    ) -> int | None:
        """Our own fd of the file the kernel will run: through the tracee's
        fd table for an fd exec (execveat AT_EMPTY_PATH, /proc/self/fd/N,
        /dev/fd/N: the file may have no path), else by its resolved path."""
        target = real
        if empty_fd is not None and self._fd_is(tid, empty_fd, path):
            target = f"/proc/{tid}/fd/{empty_fd}"
        elif "/fd/" in path or _NOT_A_PATH.search(real) or not os.path.exists(real):
            # Through an fd (/dev/fd/N, /proc/self/fd/N, a link to one): the
            # link's text names no file to open (a memfd, an unlinked file,
            # or a decoy created under that name), the fd itself does.
            target = self._magic_link(pid, tid, path) or real
        try:
            # Only a regular file runs; opening anything else (a device)
            # could act on it.
            if not stat.S_ISREG(os.stat(target).st_mode):
                return None
            return os.open(target, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM):
                return self._unreadable_fd(target)
            return None

    @staticmethod
    def _magic_link(pid: int, tid: int, path: str) -> str | None:
        """The /proc/PID/fd/N link ``path`` leads to, following links one
        hop at a time (parents resolved as the tracee sees them), if any."""
        for _ in range(40):
            try:
                parent = procfs.resolve(os.path.dirname(path), pid, tid)
            except OSError:
                return None
            name = os.path.basename(path)
            here = os.path.join(parent, name)
            if _FD_DIR.fullmatch(parent) and name.isdigit():
                return here
            try:
                target = os.readlink(here)
            except OSError:
                return None
            path = target if target.startswith("/") else os.path.join(parent, target)
        return None

    @staticmethod
    def _fd_is(tid: int, fd: int, path: str) -> bool:
        """Was ``path`` the fd itself (an empty path with AT_EMPTY_PATH)?"""
        try:
            return procfs.fd_path(tid, fd) == path
        except OSError:
            return False

    @staticmethod
    def _unreadable_fd(target: str) -> int | None:
        """An O_PATH fd of a file we may not read (an exec-only copy, as a
        user other than root): enough to stat it and decide by size."""
        try:
            return os.open(target, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return None

    def _judge_fd(
        self, fd: int, real: str, argv: list[str], pid: int, tid: int, found: Finding,
        depth: int,
    ) -> None:  # fmt: skip
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        try:
            head = os.pread(fd, 4096, 0)
        except OSError:  # an O_PATH fd: not ours to read
            if st.st_size in self.index.by_size:
                found.decisions.append(pol.Decision(
                    "deny", UNREADABLE_RULE, "the program is the size of a denied one and "
                    "cannot be read to compare"))  # fmt: skip
            return
        if self._content(fd, st, real, argv, found, "same_content_as" if depth == 0 else None):
            return
        if st.st_nlink == 0:
            self._no_file(fd, st, real, argv, found)
        if depth >= MAX_DEPTH:
            return
        if self.loaders.is_loader(fd, st, head, os.path.basename(real)):
            self._loader(argv, pid, tid, found, depth)
            return
        script = parse_shebang(head)
        if script is not None:
            self._script(script, real, argv, pid, tid, found, depth)

    def _content(
        self, fd: int, st: os.stat_result, real: str, argv: list[str], found: Finding,
        key: str | None,
    ) -> bool:  # fmt: skip
        original, sha = self.index.match(fd, st, real)
        if sha is not None and st.st_nlink == 0:
            found.fields["sha256"] = sha
        if original is None:
            self._alias(st, real, argv, found)
            return False
        found.fields[key or "runs_same_content_as"] = original.real
        found.decisions.extend(self.policy.check_command(n, argv) for n in sorted(original.names))
        return True

    def _alias(self, st: os.stat_result, real: str, argv: list[str], found: Finding) -> None:
        """A multi-call program (systemctl, busybox, xz) does what its
        argv[0] names: run under a name the rules found it by (systemctl
        as "reboot"), it is decided under that name too."""
        if not argv or st.st_size not in self.index.by_size:
            return
        alias = os.path.basename(argv[0])
        o = self.index.itself(st, real)
        if o is None or alias == os.path.basename(real):
            return
        names = sorted(n for n in o.names if os.path.basename(n) == alias)
        if names:
            found.fields["argv0_is"] = names[0]
            found.decisions.extend(self.policy.check_command(n, argv) for n in names)

    def _no_file(
        self, fd: int, st: os.stat_result, real: str, argv: list[str], found: Finding
    ) -> None:
        """A program with no file on disk (memfd, unlinked file, O_TMPFILE):
        nothing on disk says what it is and nothing is left to inspect
        afterwards, a classic way past name rules. Refused unless a command
        rule names it (``memfd:*``, the name the kernel shows); a memfd a
        rule allows must be sealed against writes, or a writer fd kept open
        could change the code after the check."""
        if "sha256" not in found.fields:
            sha = _sha256(fd, st.st_size)
            if sha is not None:
                found.fields["sha256"] = sha
        found.fields["no_file"] = True
        named = self.policy.check_command(real, argv)
        if named.rule.startswith("default:"):
            found.decisions.append(
                pol.Decision("deny", NO_FILE_RULE, "a program with no file on disk (memfd, "
                             "unlinked); a command rule may allow it (memfd:*)"))  # fmt: skip
            return
        if named.allowed and os.path.basename(real).startswith("memfd:"):
            try:
                sealed = fcntl.fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE
            except OSError:
                sealed = 0
            if not sealed:
                found.decisions.append(pol.Decision(
                    "deny", named.rule, "a memfd must be sealed (F_SEAL_WRITE) to run: "
                    "its writers could change it after the check"))  # fmt: skip
                return
        found.decisions.append(named)

    def _loader(self, argv: list[str], pid: int, tid: int, found: Finding, depth: int) -> None:
        run = parse_ldso(argv)
        found.fields["via"] = "ld.so"
        if run.options:
            found.fields["ldso_options"] = run.options
        if run.mode != "run":
            found.fields["ldso_mode"] = run.mode
        if run.program is None:
            return
        # ld.so opens the program by its name, relative to the cwd, with no
        # search; list and verify load it without running it, and are
        # decided as a run all the same (the name is what a rule refuses).
        path = self._abs(run.program, tid)
        real = self._resolve(path, pid, tid)
        found.fields.setdefault("runs", path)
        found.decisions.extend(self.policy.check_command(p, run.argv) for p in {path, real})
        self._follow(path, real, run.argv, pid, tid, found, depth)

    def _script(
        self, script: tuple[str, str | None], real: str, argv: list[str], pid: int, tid: int,
        found: Finding, depth: int,
    ) -> None:  # fmt: skip
        interp, arg = script
        found.fields.setdefault("interpreter", [interp] if arg is None else [interp, arg])
        # The kernel runs: interp [arg] SCRIPT ARGS... (SCRIPT as exec'd)
        new_argv = [interp, *([arg] if arg is not None else []), real, *argv[1:]]
        path = self._abs(interp, tid)
        ireal = self._resolve(path, pid, tid)
        found.decisions.extend(self.policy.check_command(p, new_argv) for p in {path, ireal})
        self._follow(path, ireal, new_argv, pid, tid, found, depth)

    def _follow(
        self, path: str, real: str, argv: list[str], pid: int, tid: int, found: Finding,
        depth: int,
    ) -> None:  # fmt: skip
        fd = self._open_target(pid, tid, path, real, None)
        if fd is None:
            return
        try:
            sub = Finding()
            self._judge_fd(fd, real, argv, pid, tid, sub, depth + 1)
        finally:
            os.close(fd)
        found.decisions.extend(sub.decisions)
        if "same_content_as" in sub.fields or "runs_same_content_as" in sub.fields:
            found.fields["runs_same_content_as"] = sub.fields.get(
                "same_content_as", sub.fields.get("runs_same_content_as")
            )
        for k, v in sub.fields.items():
            found.fields.setdefault(k, v)

    @staticmethod
    def _abs(name: str, tid: int) -> str:
        if name.startswith("/"):
            return name
        try:
            return os.path.join(procfs.cwd(tid), name)
        except OSError:
            return name

    @staticmethod
    def _resolve(path: str, pid: int, tid: int) -> str:
        try:
            return procfs.resolve(path, pid, tid)
        except OSError:
            return path

    # -- at the exec event (the tracer) --------------------------------------
    def at_exec(self, pid: int, argv: Sequence[str]) -> Finding:
        """The same checks on what the kernel mapped: ``/proc/PID/exe`` is
        the file itself (a memfd or an unlinked file included), opened
        before the new image runs an instruction. For ld.so, the program is
        still to be opened: it is decided here on the argv the kernel copied
        and the file as it is now."""
        found = Finding()
        exe = f"/proc/{pid}/exe"
        fd: int | None
        try:
            fd = os.open(exe, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            fd = self._unreadable_fd(exe) if e.errno in (errno.EACCES, errno.EPERM) else None
        if fd is None:
            return found
        try:
            try:
                real = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                return found
            self._judge_fd(fd, real, list(argv), pid, pid, found, 0)
        except OSError:
            pass  # the file failed us midway: its name was decided all the same
        finally:
            os.close(fd)
        return found


_SHARED: dict[int, tuple[pol.Policy, ExecIdentity]] = {}
_SHARED_LOCK = threading.Lock()


def for_policy(policy: pol.Policy) -> ExecIdentity:
    """One ExecIdentity per policy object (its index is built once)."""
    with _SHARED_LOCK:
        entry = _SHARED.get(id(policy))
        if entry is None or entry[0] is not policy:
            if len(_SHARED) > 8:
                _SHARED.clear()
            entry = (policy, ExecIdentity(policy))
            _SHARED[id(policy)] = entry
            # Built while the command starts, off its first exec's path.
            threading.Thread(target=entry[1].warm, name="exec-index", daemon=True).start()
        return entry[1]
