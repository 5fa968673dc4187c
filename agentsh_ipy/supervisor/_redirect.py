"""redirect: an exec that a command rule redirects runs another command.

The trapped execve's filename is overwritten in the tracee's memory with the
path of a one-off stub script, and the call continues: the kernel then execs
the stub, which prints the rule's message on stderr and execs the rule's
``redirect_to`` argv (itself trapped and decided like any exec). The new path
must fit in the old string, so stubs get the shortest names we can make
(``/tmp/XY``, 7 bytes); a shorter original filename is denied instead, and
the audit says why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import string
import sys
from collections.abc import Sequence

from .._linux import procfs

_ALPHABET = string.ascii_letters + string.digits
_STUB = """#!{python} -IS
import os, sys
sys.stderr.write({message!r} + "\\n")
sys.stderr.flush()
os.execv({argv0!r}, {argv!r})
"""


class Redirector:
    def __init__(self, directory: str = "/tmp") -> None:
        self.directory = directory
        self.made: list[str] = []

    def stub(self, argv: Sequence[str], message: str) -> str:
        """Write a stub that runs ``argv``; returns its (short) path."""
        text = _STUB.format(
            python=sys.executable,
            message=message,
            argv0=argv[0],
            argv=list(argv),
        )
        for _ in range(64):
            # Random, not secret: O_EXCL is what keeps the name ours.
            name = "".join(_ALPHABET[b % len(_ALPHABET)] for b in os.urandom(2))
            path = os.path.join(self.directory, name)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o555)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            self.made.append(path)
            return path
        raise OSError(errno.EEXIST, f"no free stub name in {self.directory}")

    def redirect(
        self, tid: int, filename_addr: int, original: bytes, argv: Sequence[str], message: str
    ) -> int:
        """Point the trapped exec at a stub. 0, or -errno when it cannot."""
        try:
            path = self.stub(argv, message).encode()
        except OSError as e:
            return -(e.errno or errno.EIO)
        if len(path) > len(original):
            return -errno.ENAMETOOLONG
        try:
            procfs.write_memory(tid, filename_addr, path + b"\0")
        except OSError as e:
            return -(e.errno or errno.EFAULT)
        return 0

    def cleanup(self) -> None:
        for path in self.made:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.made.clear()
