"""The supervisor's copy of a tracee's fd (supervisor/_onfd.py) and the
xattr namespaces' operations (supervisor/_metadata.py)."""

from __future__ import annotations

import errno
import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentsh_ipy._linux import files
from agentsh_ipy.supervisor import _metadata, _onfd
from tests.conftest import linux_only

pytestmark = linux_only


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_copy_shares_the_open_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    fd = os.open(f, os.O_RDONLY)
    try:
        copy = _onfd.copy(os.getpid(), threading.get_native_id(), fd)
        assert copy.shared and copy.path == str(f)
        os.lseek(fd, 1, os.SEEK_SET)  # one open file description: one offset
        assert os.lseek(copy.fd, 0, os.SEEK_CUR) == 1
        os.chmod(copy.target, 0o600)
        assert f.stat().st_mode & 0o777 == 0o600
        copy.close()
    finally:
        os.close(fd)


def test_the_copy_names_the_file_it_was_taken_of(tmp_path: Path) -> None:
    """dup2() of another file onto the number after the copy changes nothing."""
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.write_text("")
    outside.write_text("")
    outside.chmod(0o644)
    fd = os.open(inside, os.O_RDONLY)
    other = os.open(outside, os.O_RDONLY)
    try:
        copy = _onfd.copy(os.getpid(), threading.get_native_id(), fd)
        os.dup2(other, fd)
        os.chmod(copy.target, 0o600)
        assert copy.path == str(inside)
        assert inside.stat().st_mode & 0o777 == 0o600
        assert outside.stat().st_mode & 0o777 == 0o644
        copy.close()
    finally:
        os.close(fd)
        os.close(other)


def test_without_pidfd_getfd_the_file_is_pinned_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the host refuses pidfd_getfd: an O_PATH fd on the same file,
    acted on by its /proc/self/fd name."""

    def refused(pid: int, tid: int, fd: int) -> int:
        raise OSError(errno.EPERM, "pidfd_getfd refused")

    monkeypatch.setattr(files, "fd_copy", refused)
    f = tmp_path / "file"
    f.write_text("")
    fd = os.open(f, os.O_RDONLY)
    try:
        copy = _onfd.copy(os.getpid(), threading.get_native_id(), fd)
        assert not copy.shared and copy.path == str(f)
        assert copy.target == f"/proc/self/fd/{copy.fd}"
        os.setxattr(copy.target, "user.pinned", b"yes")
        assert os.getxattr(f, "user.pinned") == b"yes"
        copy.close()
    finally:
        os.close(fd)


def test_a_dropped_copy_is_closed(tmp_path: Path) -> None:
    """A request whose notification went stale is never answered: its copy
    must not stay open in the supervisor."""
    f = tmp_path / "file"
    f.write_text("")
    fd = os.open(f, os.O_RDONLY)
    try:
        before = _open_fds()
        copy = _onfd.copy(os.getpid(), threading.get_native_id(), fd)
        assert str(copy.fd) in _open_fds()
        del copy
        gc.collect()
        assert _open_fds() == before
    finally:
        os.close(fd)


def test_no_such_fd_is_an_error() -> None:
    with pytest.raises(OSError) as e:
        _onfd.copy(os.getpid(), threading.get_native_id(), 999_999)
    assert e.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("system.posix_acl_access", "chmod"),
        ("system.posix_acl_default", "chmod"),
        ("user.mime_type", "write"),
        ("security.capability", None),
        ("security.selinux", None),
        ("trusted.overlay.opaque", None),
        ("system.nfs4_acl", None),
        ("system.posix_acl_accessX", None),
        ("osx.whatever", None),
    ],
)
def test_xattr_namespaces(name: str, op: str | None) -> None:
    got, why = _metadata.xattr_op(name)
    assert got == op
    assert bool(why) == (op is None)


def test_the_per_call_credentials_read_is_skipped_only_when_nothing_can_differ() -> None:
    """Unprivileged with one uid and one gid: no sandboxed process can hold
    other credentials, so same_creds needs no /proc read. Root (or a
    process with capabilities) must be compared on every call."""
    probe = "from agentsh_ipy.supervisor import _pinned; print(_pinned._unchangeable_creds())"
    as_is = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert as_is.stdout.strip() == str(os.geteuid() != 0), as_is.stderr
    if os.geteuid() == 0:
        nobody = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
             sys.executable, "-c", probe],
            capture_output=True, text=True, cwd="/",
        )  # fmt: skip
        assert nobody.stdout.strip() == "True", nobody.stderr
        # uid 65534 whose saved uid is still root could setfsuid(0): compared.
        mixed = subprocess.run(
            ["setpriv", "--euid=65534", "--egid=65534", "--clear-groups", "--",
             sys.executable, "-c", probe],
            capture_output=True, text=True, cwd="/",
        )  # fmt: skip
        assert mixed.stdout.strip() == "False", mixed.stderr
