"""Name operations relative to directory fds, with the flags os does not
expose: renameat2 (RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT) and
linkat with AT_EMPTY_PATH."""

from __future__ import annotations

import ctypes
import functools
import os

from . import _syscall, arch

AT_FDCWD = -100


def _cstr(path: str) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(os.fsencode(path))


@functools.cache
def _nr(name: str) -> int:
    nr = arch.current().nr(name)
    if nr is None:
        raise OSError(f"no {name} on {arch.current().name}")
    return nr


def renameat2(olddir: int, old: str, newdir: int, new: str, flags: int = 0) -> None:
    _syscall.syscall(
        _nr("renameat2"), olddir, _cstr(old), newdir,
        _cstr(new), flags, what=f"renameat2({old!r}, {new!r})",
    )  # fmt: skip


def linkat(olddir: int, old: str, newdir: int, new: str, flags: int = 0) -> None:
    _syscall.syscall(
        _nr("linkat"), olddir, _cstr(old), newdir,
        _cstr(new), flags, what=f"linkat({old!r}, {new!r})",
    )  # fmt: skip
