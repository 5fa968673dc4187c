"""More trapped operations end to end: dirfd-relative paths, rename and link
out of the workspace, /proc/self seen as the tracee, the kernel block list."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import Area, linux_only, sandbox, write_policy

pytestmark = linux_only


def test_dirfd_relative_write_is_resolved_against_the_dirfd(area: Area) -> None:
    script = (
        "import os\n"
        f"d = os.open({str(area.outside)!r}, os.O_RDONLY)\n"
        "try:\n"
        "    os.open('via-dirfd', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d)\n"
        "except PermissionError:\n"
        "    print('denied')\n"
    )
    r = sandbox(area, [sys.executable, "-c", script], policy=write_policy(area))
    assert r.stdout.strip() == "denied", r.stderr
    assert not (area.outside / "via-dirfd").exists()
    assert any(e["path"] == str(area.outside / "via-dirfd") for e in r.denials())


def test_rename_and_link_out_of_the_workspace_are_denied(area: Area) -> None:
    area.write("ws/data", "payload\n")
    r = sandbox(
        area,
        ["sh", "-c", f"mv data {area.outside}/moved; ln data {area.outside}/linked; ls"],
        policy=write_policy(area),
    )
    assert (area.ws / "data").exists()
    assert not (area.outside / "moved").exists()
    assert not (area.outside / "linked").exists()
    ops = {(e["op"], e.get("dest")) for e in r.denials()}
    assert ("rename", str(area.outside / "moved")) in ops
    assert ("link", str(area.outside / "linked")) in ops


def test_proc_self_root_path_is_resolved_as_the_tracee(area: Area) -> None:
    (area.home / ".ssh").mkdir()
    area.own(area.home / ".ssh")
    key = area.write("home/.ssh/id_rsa", "SECRET-KEY-MATERIAL\n", 0o600)
    r = sandbox(area, ["cat", f"/proc/self/root{key}"])
    assert "SECRET-KEY-MATERIAL" not in r.stdout
    assert r.returncode == 1
    [ev] = [e for e in r.denials() if e["type"] == "file"]
    assert ev["resolved"] == str(key)
    assert ev["rule"] == "credentials"


def test_kernel_block_list_refuses_without_a_round_trip(area: Area) -> None:
    script = (
        "import ctypes, errno, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def call(nr, *a):\n"
        "    r = libc.syscall(nr, *a)\n"
        "    return errno.errorcode.get(ctypes.get_errno(), '?') if r == -1 else 'ok'\n"
        "print('io_uring_setup', call(425, 1, 0))\n"
        "print('unshare_user', call(272, 0x10000000))\n"
        "print('ptrace', call(101, 16, os.getppid(), 0, 0))\n"  # PTRACE_ATTACH
        "print('bpf', call(321, 0, 0, 0))\n"
    )
    import platform

    if platform.machine() != "x86_64":
        import pytest

        pytest.skip("syscall numbers in this script are x86_64's")
    r = sandbox(area, [sys.executable, "-c", script])
    assert r.returncode == 0, r.stderr
    got = dict(line.split() for line in r.stdout.splitlines())
    assert got == {
        "io_uring_setup": "EPERM",
        "unshare_user": "EPERM",
        "ptrace": "EPERM",
        "bpf": "EPERM",
    }


def test_sendto_with_a_destination_is_decided(area: Area) -> None:
    script = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    s.sendto(b'x', ('127.0.0.2', 9))\n"
        "    print('sent')\n"
        "except PermissionError:\n"
        "    print('denied')\n"
    )
    policy = write_policy(
        area,
        "network_rules:\n  - {name: lo1, cidrs: [127.0.0.1/32], ports: [9], decision: allow}\n",
    )
    r = sandbox(area, [sys.executable, "-c", script], policy=policy)
    assert r.stdout.strip() == "denied", r.stderr
    [ev] = [e for e in r.of_type("net") if e["decision"] == "deny"]
    assert (ev["op"], ev["addr"], ev["port"], ev["rule"]) == ("send", "127.0.0.2", 9, "host-local")


def test_o_path_and_dirfd_opens_work(area: Area) -> None:
    # O_PATH fds cannot be injected (NOTIF_ADDFD refuses them), so such opens
    # continue in the kernel; what is then opened through them is decided.
    area.write("ws/data.txt", "payload\n")
    script = (
        "import os\n"
        f"d = os.open({str(area.ws)!r}, os.O_PATH | os.O_DIRECTORY)\n"
        "print(os.read(os.open('data.txt', os.O_RDONLY, dir_fd=d), 20).decode(), end='')\n"
        "try:\n"
        "    os.open('new.txt', os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=d)\n"
        "    print('created')\n"
        "except OSError as e:\n"
        "    print('error', e.errno)\n"
    )
    r = sandbox(area, [sys.executable, "-c", script], policy=write_policy(area))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "payload\ncreated\n"
    assert (area.ws / "new.txt").exists()
    [ev] = [e for e in r.of_type("file") if e.get("path") == str(area.ws / "new.txt")]
    assert (ev["op"], ev["decision"]) == ("create", "allow")


CHMOD_RACE = """
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.chmod.argtypes = (ctypes.c_void_p, ctypes.c_uint)
allowed, outside = (os.fsencode(p) + b"\\0" for p in sys.argv[1:3])
buf = ctypes.create_string_buffer(4096)
ctypes.memmove(buf, allowed, len(allowed))
stop = threading.Event()
def flip():
    while not stop.is_set():
        ctypes.memmove(buf, outside, len(outside))
        ctypes.memmove(buf, allowed, len(allowed))
threading.Thread(target=flip, daemon=True).start()
n = 0
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    libc.chmod(ctypes.addressof(buf), 0o777)
    n += 1
stop.set()
print("tries", n)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["notify", "ptrace"])
def test_racing_a_chmod_path_never_reaches_outside(area: Area, mode: str) -> None:
    allowed = area.write("ws/mine", "x\n", 0o600)
    outside = area.write("outside/theirs", "y\n", 0o600)
    r = sandbox(area, [sys.executable, "-c", CHMOD_RACE, str(allowed), str(outside)],
                policy=write_policy(area), extra=["--mode", mode], timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[1]) > 100
    assert outside.stat().st_mode & 0o777 == 0o600  # the outside file never changed
    assert allowed.stat().st_mode & 0o777 == 0o777
    denied = [e for e in r.denials("file") if e["path"] == str(outside)]
    assert all(e["op"] == "chmod" for e in denied)


SENDMMSG = """
import ctypes, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
port = int(sys.argv[1])
addr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
addr += socket.inet_aton("127.0.0.1") + bytes(8)
name = ctypes.create_string_buffer(addr, 16)
bufs = [ctypes.create_string_buffer(b"one"), ctypes.create_string_buffer(b"two!")]
iovs = (ctypes.c_uint64 * 4)(ctypes.addressof(bufs[0]), 3, ctypes.addressof(bufs[1]), 4)
msgs = ctypes.create_string_buffer(128)
for i in range(2):
    struct.pack_into("<QI4xQQQQi4xI4x", msgs, 64 * i, ctypes.addressof(name), 16,
                     ctypes.addressof(iovs) + 16 * i, 1, 0, 0, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = libc.sendmmsg(s.fileno(), msgs, 2, 0)
print(n, struct.unpack_from("<I", msgs, 56)[0], struct.unpack_from("<I", msgs, 64 + 56)[0])
"""


def test_sendmmsg_to_an_allowed_address_is_delivered_with_msg_len(area: Area) -> None:
    import socket

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    port = rx.getsockname()[1]
    policy = write_policy(
        area,
        "network_rules:\n"
        f"  - {{name: lo, cidrs: [127.0.0.1/32], ports: [{port}], decision: allow}}\n",
    )
    r = sandbox(area, [sys.executable, "-c", SENDMMSG, str(port)], policy=policy)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "3", "4"]
    assert {rx.recv(100), rx.recv(100)} == {b"one", b"two!"}
    rx.close()
    [ev] = [e for e in r.of_type("net") if e["syscall"] == "sendmmsg"]
    assert (ev["decision"], ev["port"]) == ("allow", port)
