"""Fixtures for the escape suite: the supervision mode, and a scratch world
(secrets, files outside the workspace, loopback listeners, an outside
process) that every hostile program is aimed at.

Nothing here touches a non-loopback address: every listener binds
127.0.0.0/8 or ::1, and the programs only ever connect to those.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import random
import shutil
import socket
import stat
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Area, User, sandbox_env
from tests.escape import _survivors

TOKEN_NAME = "MY_SERVICE_TOKEN"  # hidden by the default env_policy ("*_TOKEN")
PROGRAMS = Path(__file__).resolve().parent / "programs"


def program_copy(area: Area, name: str) -> Path:
    """The hostile program NAME in a copy of programs/ in the scratch area
    (made on first use): the checkout may sit where uid 65534 cannot read (a
    clone under /root), the area is readable by design."""
    copy = area.root / "programs"
    if not copy.exists():
        shutil.copytree(PROGRAMS, copy)
    return copy / name


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unsandboxed: runs hostile programs WITHOUT the sandbox (a baseline): "
        "what they leave running is killed, not a failure",
    )


@pytest.fixture(autouse=True)
def nothing_outlives_the_run(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here: no process started during it is alive after it
    (the worker is a subreaper meanwhile; see _survivors). Set up before,
    torn down after, the fixtures that own long-lived processes."""
    with _survivors.watched() as watch:
        yield
        watch.check(fail=request.node.get_closest_marker("unsandboxed") is None)


@pytest.fixture(params=["notify", "ptrace"])
def mode(request: pytest.FixtureRequest) -> str:
    """The supervision mode, passed to `agentsh-ipy exec --mode MODE`."""
    return str(request.param)


class TcpListener:
    """A listening TCP socket nobody accepts on: a connection that got
    through waits in the backlog, so counting is exact and needs no thread."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self._count = 0

    def connections(self) -> int:
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self._count
            conn.close()
            self._count += 1

    def close(self) -> None:
        self.sock.close()


class UdpListener:
    """A bound UDP socket; datagrams that got through wait in its buffer."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []

    def datagrams(self) -> list[bytes]:
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except BlockingIOError:
                return self.received
            self.received.append(data)

    def close(self) -> None:
        self.sock.close()


class UnixListener(TcpListener):
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        path.chmod(0o777)  # connect(2) needs write permission on the socket
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.path = path
        self._count = 0


class UnixDatagrams:
    """A bound unix datagram socket; what got through waits in its queue."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        path.chmod(0o777)  # a send to it needs write permission on the socket
        self.sock.setblocking(False)
        self.path = path
        self.received: list[bytes] = []

    def datagrams(self) -> list[bytes]:
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(65536, 4096)
            except BlockingIOError:
                return self.received
            for level, kind, fds in ancillary:  # fds passed with it: not ours to keep
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    for fd in struct.unpack(f"{len(fds) // 4}i", fds[: len(fds) // 4 * 4]):
                        os.close(fd)
            self.received.append(data)

    def close(self) -> None:
        self.sock.close()


@dataclass
class Ctx:
    """The world one hostile program runs in (see `world`)."""

    area: Area
    user: User
    secret: str  # the content of ~/.ssh/id_rsa
    token: str  # the value of MY_SERVICE_TOKEN in the CLI's environment
    key: Path
    ssh: Path
    allowed: Path  # a workspace file any program may read
    existing: Path  # a file outside the workspace the OS lets the user write
    policy_path: Path | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _res: dict[str, object] = field(default_factory=dict)

    @property
    def ws(self) -> Path:
        return self.area.ws

    @property
    def outside(self) -> Path:
        return self.area.outside

    @property
    def home(self) -> Path:
        return self.area.home

    def env(self) -> dict[str, str]:
        return {**sandbox_env(self.area), TOKEN_NAME: self.token}

    # -- resources, made on first use and named, so the argv and the policy
    #    of one case see the same listener --------------------------------
    def tcp(self, name: str, host: str = "127.0.0.1") -> TcpListener:
        key = f"tcp:{name}"
        if key not in self._res:
            if ":" in host and not _has_ipv6_loopback():
                pytest.skip("this host has no IPv6 loopback (::1)")
            lst = TcpListener(host)
            self._stack.callback(lst.close)
            self._res[key] = lst
        res = self._res[key]
        assert isinstance(res, TcpListener)
        return res

    def udp(self, name: str) -> UdpListener:
        key = f"udp:{name}"
        if key not in self._res:
            lst = UdpListener("127.0.0.1")
            self._stack.callback(lst.close)
            self._res[key] = lst
        res = self._res[key]
        assert isinstance(res, UdpListener)
        return res

    def unix(self, name: str) -> UnixListener:
        key = f"unix:{name}"
        if key not in self._res:
            lst = UnixListener(self.area.mkdir("sockets") / f"{name}.sock")
            self._stack.callback(lst.close)
            self._res[key] = lst
        res = self._res[key]
        assert isinstance(res, UnixListener)
        return res

    def unix_dgram(self, name: str) -> UnixDatagrams:
        key = f"unix-dgram:{name}"
        if key not in self._res:
            lst = UnixDatagrams(self.area.mkdir("sockets") / f"{name}.dgram")
            self._stack.callback(lst.close)
            self._res[key] = lst
        res = self._res[key]
        assert isinstance(res, UnixDatagrams)
        return res

    def victim(self) -> subprocess.Popen[bytes]:
        """A process outside the sandbox, owned by the same user (so only
        the sandbox stands between it and a signal); its own session, so its
        pid is also its process group."""
        return self._outside_sleeper("victim", [])

    def env_victim(self) -> subprocess.Popen[bytes]:
        """A process outside the sandbox, owned by the same user, with the
        secret in its environment (so only the sandbox stands between a
        program and /proc/PID/environ). Killed by pid when the case ends."""
        return self._outside_sleeper("env_victim", ["env", f"VICTIM_SECRET={self.secret}"])

    def _outside_sleeper(self, key: str, prefix: list[str]) -> subprocess.Popen[bytes]:
        """`sleep 60` as the test user, in a session of its own, made once
        per case and killed by pid when the case ends."""
        if key not in self._res:
            p = subprocess.Popen(
                self.user.cmd([*prefix, "sleep", "60"]),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

            def stop() -> None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(timeout=10)

            self._stack.callback(stop)
            _wait_until_sleeping_as(p.pid, self.user.uid)
            self._res[key] = p
        res = self._res[key]
        assert isinstance(res, subprocess.Popen)
        return res

    def terminal(self) -> str:
        """Another terminal (the user's shell, say): a pty made here, outside
        the sandbox, its slave owned by the user (so only the sandbox stands
        between a program and it), the secret waiting in its input as if
        typed. Its /dev/pts/N path; closed when the case ends."""
        if "terminal" not in self._res:
            master, slave = os.openpty()
            self._stack.callback(os.close, master)
            self._stack.callback(os.close, slave)
            path = os.ttyname(slave)
            os.chown(path, self.user.uid, -1)
            os.chmod(path, 0o600)
            os.write(master, self.secret.encode() + b"\n")
            self._res["terminal"] = path
        res = self._res["terminal"]
        assert isinstance(res, str)
        return res

    def shm(self) -> int:
        """A System V shared memory segment of the host, holding the secret,
        open to every user (so only the sandbox stands between a program and
        it); its key. Removed when the case ends."""
        if "shm" not in self._res:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.shmat.restype = ctypes.c_void_p
            libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
            libc.shmdt.argtypes = [ctypes.c_void_p]
            ipc_creat_excl, ipc_rmid = 0o1000 | 0o2000, 0
            while True:
                key = random.randrange(0x10000000, 0x7FFFFFFF)
                shmid = libc.shmget(key, 4096, ipc_creat_excl | 0o666)
                if shmid >= 0:
                    break
                assert ctypes.get_errno() == errno.EEXIST, os.strerror(ctypes.get_errno())
            self._stack.callback(lambda: libc.shmctl(shmid, ipc_rmid, None))
            addr = libc.shmat(shmid, None, 0)
            assert addr not in (None, ctypes.c_void_p(-1).value), "shmat failed"
            ctypes.memmove(addr, self.secret.encode() + b"\0", len(self.secret) + 1)
            libc.shmdt(ctypes.c_void_p(addr))
            self._res["shm"] = key
        key = self._res["shm"]
        assert isinstance(key, int)
        return key

    # -- what the program may have touched --------------------------------
    def snapshot(self) -> dict[str, tuple[int, bytes]]:
        """Every entry under the outside dir and HOME: mode and content (or
        link target). Compared before and after a run."""
        out: dict[str, tuple[int, bytes]] = {}
        # The supervisor makes the sandbox's cache home (and the folders
        # above it) before the program runs; what is in it is the sandbox's.
        own = os.path.join(self.home, ".cache", "agentsh-ipy")
        made = {os.path.join(self.home, ".cache"), own}
        for top in (self.outside, self.home):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != own]
                for name in dirnames + filenames:
                    p = os.path.join(dirpath, name)
                    if p in made:
                        continue
                    st = os.lstat(p)
                    if stat.S_ISREG(st.st_mode):
                        body = Path(p).read_bytes()
                    elif stat.S_ISLNK(st.st_mode):
                        body = os.fsencode(os.readlink(p))
                    else:
                        body = b""
                    out[p] = (st.st_mode, body)
            out[str(top)] = (os.lstat(top).st_mode, b"")
        return out

    def leaks(self, *texts: str) -> list[str]:
        """Where a secret shows up: the given texts (stdout, stderr) and
        every regular file in the scratch area (workspace, outside, the
        audit), except the key file itself. Symlinks are not followed."""
        secrets = (self.secret, self.token)
        found = [f"output #{i}" for i, t in enumerate(texts) if any(s in t for s in secrets)]
        for dirpath, _dirs, filenames in os.walk(self.area.root):
            for name in filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if p == str(self.key) or not stat.S_ISREG(st.st_mode):
                    continue
                if not os.access(p, os.R_OK) and st.st_uid == os.geteuid():
                    # an unprivileged run (no CAP_DAC_OVERRIDE) owns what the
                    # program made, execute-only copies too: make it readable
                    os.chmod(p, stat.S_IMODE(st.st_mode) | stat.S_IRUSR)
                data = Path(p).read_bytes()
                if any(s.encode() in data for s in secrets):
                    found.append(p)
        return found


def _wait_until_sleeping_as(pid: int, uid: int) -> None:
    """Until setpriv has dropped to `uid` and exec'd sleep: before that the
    process belongs to root, and the kernel alone would refuse a signal from
    uid 65534 (a test that passes without the sandbox doing anything)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            break
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()
        if comm == "sleep" and all(int(u) == uid for u in uids[1:]):
            return
        time.sleep(0.01)
    raise AssertionError(f"the outside process {pid} never became `sleep` as uid {uid}")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def world(area: Area, user: User) -> Iterator[Ctx]:
    """HOME with ~/.ssh/id_rsa holding a unique secret (and ~/docs, an
    ordinary directory), a workspace file, a file outside the workspace,
    and a unique token for the CLI's environment."""
    run_id = uuid.uuid4().hex
    ssh = area.mkdir("home/.ssh")
    area.mkdir("home/docs")
    key = area.write("home/.ssh/id_rsa", f"SECRET-KEY-{run_id}\n", 0o600)
    ctx = Ctx(
        area=area,
        user=user,
        secret=f"SECRET-KEY-{run_id}",
        token=f"TOKEN-{run_id}",
        key=key,
        ssh=ssh,
        allowed=area.write("ws/allowed.txt", "nothing to see here\n"),
        existing=area.write("outside/existing.txt", "original content\n", 0o644),
    )
    with ctx._stack:
        yield ctx
