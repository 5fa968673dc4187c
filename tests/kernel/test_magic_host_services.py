"""The kernel's own channels, from a ``%%agentsh`` cell, as root and as
uid 65534: a program in the sandbox that holds everything the kernel's
connection file says (as if it had leaked) still cannot make the kernel
run code, nor connect to any of its five ports, nor read that file itself.

The test reads the connection file (it is outside every sandbox) and writes
its contents into the workspace. The program (``forge.py``, below: stdlib,
plus pyzmq where it imports) signs an ``execute_request`` whose code writes
a marker file outside the workspace, and sends it to the shell and control
ports, through libzmq and through a hand-rolled ZMTP 3.0 handshake; it also
connects plainly to each port, and to the shell port by other spellings of
this host (0.0.0.0, the v4-mapped IPv6 address). Checked: no marker
appears (after a later cell, which the kernel answers only once every
queued request before it is done), every connect is refused, and the
cell's audit has a denied ``host-local`` connect to 127.0.0.1 for each of
the five ports and none allowed. The same program run by the test, outside
the sandbox as the same user, does make the kernel write its markers: the
control that shows the attempt is real.

And the connection file itself: read from the sandbox by its name, through
a symlink, a hard link, /proc/self/root, its directory's fd or after a
rename, each is refused (EACCES, rule ``hidden``: jupyter_client's
KernelManager, as here and in nbclient, puts it in /tmp as ``tmpXXXX.json``,
where only the magic's hiding of its own kernel's file covers it), the file
is left as it was, and its key shows nowhere in the cell's output or audit.
One kernel per user.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sandbox_env

from ._harness import Cell, Kernel, kernel_fixture, token

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
FORGED_ON = ("shell", "control")  # the channels that take an execute_request

# Run as `python forge.py LEAK.json MARKER-BASE WAIT [--connfile]`. Prints
# one JSON object:
#   connfile: {route: what reading the connection file by it gave ("read",
#             printed with the contents, or an errno name)}
#   tcp: {channel or spelling: "connected" or an errno name}
#   zmq, raw: {channel: the execute_reply's status, "no reply", or an error}
# It never prints the key it was given; what it reads from the connection
# file it does print, so that a read that got through shows the key.
FORGE = r'''
import errno, hashlib, hmac, json, os, socket, struct, sys, time, uuid

leak = json.load(open(sys.argv[1]))
base, wait = sys.argv[2], float(sys.argv[3])
ip, key = leak["ip"], leak["key"].encode()
out = {"connfile": None, "tcp": {}, "zmq": {}, "raw": {}}


def err(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


def read(path, **kw):
    """What reading path gave; on success the contents are printed too."""
    try:
        fd = os.open(path, os.O_RDONLY, **kw)
        try:
            data = os.read(fd, 65536)
        finally:
            os.close(fd)
    except OSError as e:
        return err(e)
    print("read:", data.decode(errors="replace"))
    return "read"


def read_connfile():
    """The connection file by its name and by other routes to it: a symlink,
    a hard link, /proc/self/root, its directory's fd, a rename."""
    path = leak["connection_file"]
    folder, name = os.path.split(path)
    ws = os.getcwd()
    got = {"open": read(path)}
    try:
        os.symlink(path, os.path.join(ws, "conn-symlink"))
        got["symlink"] = read(os.path.join(ws, "conn-symlink"))
    except OSError as e:
        got["symlink"] = "symlink: " + err(e)
    for where in (ws, folder):
        link = os.path.join(where, "conn-hardlink-" + uuid.uuid4().hex[:6])
        try:
            os.link(path, link)
            got["hardlink:" + where] = "linked, " + read(link)
        except OSError as e:
            got["hardlink:" + where] = err(e)
    got["proc-root"] = read("/proc/self/root" + path)
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        got["dir-fd"] = read(name, dir_fd=dfd)
        os.close(dfd)
    except OSError as e:
        got["dir-fd"] = "dir: " + err(e)
    moved = os.path.join(folder, "conn-moved-" + uuid.uuid4().hex[:6])
    try:
        os.rename(path, moved)
        got["rename"] = "renamed, " + read(moved)
        os.rename(moved, path)
    except OSError as e:
        got["rename"] = err(e)
    return got


def plain(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect((host, port))
        return "connected"
    except OSError as e:
        return err(e)


def frames(via, channel):
    marker = f"{base}-{via}-{channel}"
    header = {
        "msg_id": uuid.uuid4().hex, "session": uuid.uuid4().hex, "username": "forger",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        "msg_type": "execute_request", "version": "5.3",
    }
    content = {
        "code": f"open({marker!r}, 'w').write('forged')", "silent": False,
        "store_history": False, "user_expressions": {}, "allow_stdin": False,
        "stop_on_error": True,
    }
    parts = [json.dumps(x).encode() for x in (header, {}, {}, content)]
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        mac.update(p)
    return [b"<IDS|MSG>", mac.hexdigest().encode(), *parts]


def status(parts):
    i = parts.index(b"<IDS|MSG>")
    return json.loads(parts[i + 5])["status"]


def with_zmq():
    try:
        import zmq
    except ImportError as e:
        return {c: f"no zmq: {e}" for c in ("shell", "control")}
    # One channel after the other: ipykernel runs a control request beside a
    # busy shell, and two forged cells at once can garble its own iopub.
    ctx = zmq.Context()
    res = {}
    for c in ("shell", "control"):
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect(f"tcp://{ip}:{leak[c + '_port']}")
        s.send_multipart(frames("zmq", c))
        res[c] = status(s.recv_multipart()) if s.poll(int(wait * 1000)) else "no reply"
        s.close()
    ctx.term()
    return res


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def zmtp(channel):
    """ZMTP 3.0, NULL mechanism, as a DEALER: the greeting, READY, one
    message, then frames until the reply's last one."""
    with socket.create_connection((ip, leak[channel + "_port"]), timeout=wait) as s:
        s.sendall(b"\xff" + b"\0" * 8 + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32)
        peer = recv_exact(s, 64)
        if peer[0] != 0xFF or peer[9] != 0x7F:
            return "not zmtp"
        ready = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
        s.sendall(bytes([0x04, len(ready)]) + ready)
        msg = frames("raw", channel)
        for i, f in enumerate(msg):
            more = 1 if i < len(msg) - 1 else 0
            if len(f) > 255:
                s.sendall(bytes([0x02 | more]) + struct.pack(">Q", len(f)) + f)
            else:
                s.sendall(bytes([more, len(f)]) + f)
        parts = []
        while True:
            flags = recv_exact(s, 1)[0]
            size = struct.unpack(">Q", recv_exact(s, 8))[0] if flags & 2 else recv_exact(s, 1)[0]
            body = recv_exact(s, size)
            if flags & 4:
                continue  # a command: the peer's READY, a PING
            parts.append(body)
            if not flags & 1:
                return status(parts)


def raw(channel):
    try:
        return zmtp(channel)
    except (OSError, ConnectionError) as e:
        return err(e)


if "--connfile" in sys.argv[4:]:
    out["connfile"] = read_connfile()
for c in ("shell", "iopub", "stdin", "control", "hb"):
    out["tcp"][c] = plain(ip, leak[c + "_port"])
out["tcp"]["shell@0.0.0.0"] = plain("0.0.0.0", leak["shell_port"])
out["tcp"]["shell@::ffff:" + ip] = plain("::ffff:" + ip, leak["shell_port"])
out["zmq"] = with_zmq()
for c in ("shell", "control"):
    out["raw"][c] = raw(c)
print(json.dumps(out))
'''


@pytest.fixture(scope="module", params=["root", "nobody"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    for k in kernel_fixture(request):
        k.ok("%load_ext agentsh_ipy")
        yield k


def connection(kernel: Kernel) -> tuple[Path, dict[str, Any]]:
    """The kernel's connection file (as the kernel names it) and its contents,
    read by the test, outside any sandbox."""
    cell = kernel.ok("from ipykernel.connect import get_connection_file\nget_connection_file()")
    [name] = cell.without_audit()["results"]
    path = Path(os.path.realpath(ast.literal_eval(name)))
    info = json.loads(path.read_text())
    assert info["transport"] == "tcp" and info["ip"] == "127.0.0.1", info
    assert info["signature_scheme"] == "hmac-sha256" and info["key"], info
    return path, info


def leak(kernel: Kernel) -> tuple[Path, dict[str, Any], Path]:
    """The connection file's contents, copied into the workspace with its
    path, and the forging program beside them."""
    area = kernel.area
    path, info = connection(kernel)
    name = f"leak-{token()}.json"
    area.write(f"ws/{name}", json.dumps({**info, "connection_file": str(path)}))
    area.write("ws/forge.py", FORGE)
    return path, info, area.ws / name


def forge_cell(leak_file: Path, base: Path, wait: float, *flags: str) -> str:
    argv = ["forge.py", leak_file.name, str(base), str(wait), *flags]
    return (
        "%%agentsh\n"
        "import subprocess, sys\n"
        f"r = subprocess.run([sys.executable, *{argv!r}], capture_output=True, text=True,"
        " timeout=60)\n"
        "print(r.stdout, end='')\n"
        "print(r.stderr, end='', file=sys.stderr)\n"
    )


def report(text: str) -> dict[str, Any]:
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    assert lines, f"forge.py printed no report:\n{text}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def markers(base: Path) -> dict[str, bool]:
    return {
        f"{via}-{c}": Path(f"{base}-{via}-{c}").exists()
        for via in ("zmq", "raw")
        for c in FORGED_ON
    }


def net_events(cell: Cell, ports: set[int]) -> list[dict[str, Any]]:
    return [e for e in cell.events() if e["type"] == "net" and e.get("port") in ports]


def test_a_leaked_connection_file_does_not_open_the_kernel_to_the_sandbox(
    kernel: Kernel,
) -> None:
    area = kernel.area
    _path, info, leak_file = leak(kernel)
    ports = {c: int(info[f"{c}_port"]) for c in CHANNELS}
    sandboxed = area.outside / f"sandboxed-{token()}"
    control = area.outside / f"control-{token()}"

    cell = kernel.run(forge_cell(leak_file, sandboxed, 1.0), timeout=90)
    got = report(cell.stdout)
    # Refused, each one, whatever the spelling of this host.
    assert set(got["tcp"]) == {*CHANNELS, "shell@0.0.0.0", "shell@::ffff:127.0.0.1"}, got
    assert set(got["tcp"].values()) == {"ECONNREFUSED"}, got
    assert got["raw"] == {"shell": "ECONNREFUSED", "control": "ECONNREFUSED"}, got
    assert got["zmq"] == {"shell": "no reply", "control": "no reply"}, got

    # Outside the sandbox, as the same user, the same program does reach the
    # kernel: both channels run its code, by libzmq and by the raw handshake.
    plain = subprocess.run(
        area.user.cmd([sys.executable, "forge.py", leak_file.name, str(control), "15"]),
        cwd=area.ws,
        env=sandbox_env(area),
        capture_output=True,
        text=True,
        timeout=90,
        start_new_session=True,
    )
    assert plain.returncode == 0, plain.stderr[-3000:]
    unsandboxed = report(plain.stdout)
    assert set(unsandboxed["tcp"].values()) == {"connected"}, unsandboxed
    assert unsandboxed["zmq"] == {"shell": "ok", "control": "ok"}, unsandboxed
    assert unsandboxed["raw"] == {"shell": "ok", "control": "ok"}, unsandboxed
    assert all(markers(control).values()), markers(control)

    # A shell request delivered during the cell would have waited for it:
    # this cell is answered only after anything queued before it, and a
    # moment more lets a late control-channel request land.
    time.sleep(1)
    assert kernel.ok("6 * 7").without_audit()["results"] == ["42"]
    assert not any(markers(sandboxed).values()), markers(sandboxed)
    assert not list(area.outside.glob(f"{sandboxed.name}*"))

    # The audit: a denied host-local connect to 127.0.0.1 on each of the five
    # ports (libzmq retries, so several on some), and nothing let through.
    events = net_events(cell, set(ports.values()))
    allowed = [e for e in events if e.get("decision") != "deny"]
    assert not allowed, allowed
    denied = {
        e["port"]
        for e in events
        if e["op"] == "connect" and e.get("rule") == "host-local" and e.get("addr") == info["ip"]
    }
    assert denied == set(ports.values()), (ports, events)
    assert {(e["op"], e.get("rule"), e.get("message")) for e in events} == {
        ("connect", "host-local", "not bound inside this sandbox")
    }, events
    # The other spellings were refused by the sandbox too, not by the host.
    others = {e.get("addr") for e in events if e.get("port") == ports["shell"]} - {info["ip"]}
    assert "0.0.0.0" in others, events
    assert any(str(a).startswith("::ffff:") for a in others), events
    assert info["key"] not in str(cell.outputs)


def test_the_connection_file_is_unreadable_in_the_sandbox(kernel: Kernel) -> None:
    area = kernel.area
    path, info, leak_file = leak(kernel)
    # The leak names the file but no longer holds the key: if the key shows
    # in the cell's output, it was read from the file.
    area.write(
        f"ws/{leak_file.name}", json.dumps({**info, "key": "", "connection_file": str(path)})
    )
    cell = kernel.run(
        forge_cell(leak_file, area.outside / f"unused-{token()}", 0.5, "--connfile")
        + f"!cat {path}\n",
        timeout=90,
    )
    routes = report(cell.stdout)["connfile"]
    # By name, through a symlink, linked (into the workspace, beside it),
    # via /proc/self/root, its directory's fd, renamed: each refused.
    assert len(routes) == 7 and set(routes.values()) == {"EACCES"}, routes
    assert "Permission denied" in cell.stdout + cell.stderr
    assert info["key"] not in str(cell.outputs)
    assert path.exists() and json.loads(path.read_text()) == info
    left = ("conn-hardlink-", "conn-moved-")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(left)]

    touched = [e for e in cell.events() if e["type"] == "file" and e.get("path") == str(path)]
    assert touched, f"no audit of the reads of {path}"
    assert all(e["decision"] == "deny" for e in touched), touched
    assert {e.get("rule") for e in touched} <= {"hidden", "jupyter-secrets"}, touched
    assert any(e.get("rule") == "hidden" for e in touched), touched
