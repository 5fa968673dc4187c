"""Network rules by domain, through the supervisor's proxy (issue 15).

A package index runs on a host of its own: a network namespace the test
makes, joined by a veth pair to a second namespace the test makes, where
the sandbox (supervisor included) runs. Names are mapped by a hosts file
the proxy reads (AGENTSH_IPY_PROXY_HOSTS). Nothing here touches the host's
network: the namespaces have no route out, and the in-process tests use
loopback only.

In the sandbox, as root and as uid 65534, in notify and ptrace modes (and
notify mode where pidfd_getfd is refused, for the direct and local cases):
`pip install --index-url http://NAME/simple` succeeds when NAME is allowed
and fails with an audited deny when not; an allowed name that resolves to
127.0.0.1 or to the sandbox host's own interface address is refused; a
direct connect to the index's address is denied, the event pointing at
the proxy. In-process: only a connection the supervisor announced is
served, and a TLS ClientHello must name the CONNECT host.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy import policy as pol
from agentsh_ipy.supervisor import _proxy
from agentsh_ipy.supervisor._hosts import HostServices
from agentsh_ipy.supervisor._request import Request
from tests.conftest import (
    BLOCKED_MODE,
    IS_ROOT,
    Area,
    Run,
    User,
    blocked_launcher,
    linux_only,
    read_audit,
    sandbox_env,
)
from tests.conftest import write_policy as _write_policy

pytestmark = linux_only

NET = "10.213.7."  # only ever inside the namespaces made here
SANDBOX_IP, INDEX_IP = NET + "1", NET + "2"
PKG = "h7tinypkg"


# -- the index -------------------------------------------------------------
def _wheel(directory: Path) -> Path:
    """A pure-Python wheel of PKG 1.0, built by hand (no network, no build tools)."""
    name = f"{PKG}-1.0-py3-none-any.whl"
    dist = f"{PKG}-1.0.dist-info"
    files = {
        f"{PKG}/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PKG}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = directory / name
    with zipfile.ZipFile(out, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return out


_SERVER = """\
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
handler.func.log_message = lambda *a: None
server = http.server.ThreadingHTTPServer((sys.argv[1], 80), handler)
print("ready", flush=True)
server.serve_forever()
"""


@dataclass
class Index:
    sandbox_ns: int  # a process whose network namespace the sandbox runs in
    hosts: Path


def _holder() -> subprocess.Popen[bytes]:
    """A process in a fresh network namespace (it holds the namespace)."""
    return subprocess.Popen(["unshare", "--net", "--", "sleep", "3600"], stdin=subprocess.DEVNULL)


def _in(ns: subprocess.Popen[bytes], *cmd: str) -> list[str]:
    return ["nsenter", "-t", str(ns.pid), "-n", "--", *cmd]


@pytest.fixture(scope="module")
def index() -> Iterator[Index]:
    if not IS_ROOT:
        pytest.skip("making network namespaces and a veth pair needs root")
    root = Path(tempfile.mkdtemp(prefix="agentsh-index-"))
    root.chmod(0o755)
    simple = root / "simple" / PKG
    simple.mkdir(parents=True)
    wheel = _wheel(root)
    (simple / "index.html").write_text(f'<a href="../../{wheel.name}">{wheel.name}</a>\n')
    for p in (root, root / "simple", simple):
        p.chmod(0o755)
    hosts = root / "hosts"
    hosts.write_text(
        f"{INDEX_IP} index.test other.test\n127.0.0.1 loop.test\n{SANDBOX_IP} self.test\n"
    )
    hosts.chmod(0o644)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        a, b = _holder(), _holder()
        procs += [a, b]
        for cmd in (
            _in(a, "ip", "link", "set", "lo", "up"),
            _in(b, "ip", "link", "set", "lo", "up"),
            _in(a, *f"ip link add h7a type veth peer name h7b netns {b.pid}".split()),
            _in(a, "ip", "addr", "add", f"{SANDBOX_IP}/30", "dev", "h7a"),
            _in(b, "ip", "addr", "add", f"{INDEX_IP}/30", "dev", "h7b"),
            _in(a, "ip", "link", "set", "h7a", "up"),
            _in(b, "ip", "link", "set", "h7b", "up"),
        ):
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        server = subprocess.Popen(
            _in(b, sys.executable, "-c", _SERVER, INDEX_IP, str(root)),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        procs.append(server)
        assert server.stdout is not None
        assert server.stdout.readline() == b"ready\n", "the index server did not start"
        yield Index(a.pid, hosts)
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _exec(area: Area, user: User, index: Index, mode: str, policy: Path, cmd: list[str]) -> Run:
    """`agentsh-ipy exec` as ``user`` in the sandbox's namespace (BLOCKED_MODE:
    notify mode where pidfd_getfd is refused, so socket calls are traced)."""
    launcher = blocked_launcher(area) if mode == BLOCKED_MODE else []
    mode = "notify" if mode == BLOCKED_MODE else mode
    argv = ["nsenter", "-t", str(index.sandbox_ns), "-n", "--", *user.cmd([
        *launcher, sys.executable, "-m", "agentsh_ipy.cli", "exec", "--mode", mode, "--workspace",
        str(area.ws), "--audit", str(area.audit), "--policy", str(policy), "--", *cmd,
    ])]  # fmt: skip
    env = {**sandbox_env(area), _proxy.HOSTS_ENV: str(index.hosts)}
    p = subprocess.run(
        argv, cwd=area.ws, env=env, capture_output=True, text=True, timeout=180,
        start_new_session=True,
    )  # fmt: skip
    return Run(p.returncode, p.stdout, p.stderr, read_audit(area.audit), 0.0)


def write_policy(area: Area, rules: str) -> Path:
    # pip unpacks in the temporary directory
    tmp = """\
  - name: tmp
    paths: ["/tmp", "/tmp/**", "${TMPDIR}", "${TMPDIR}/**"]
    operations: ["*"]
    decision: allow
"""
    return _write_policy(area, tmp + "network_rules:\n" + rules)


INDEX_RULE = f"""\
  - name: the-index
    domains: [index.test]
    cidrs: ["{INDEX_IP}/32"]
    ports: [80]
    decision: allow
"""


def _pip(area: Area, name: str) -> list[str]:
    return [
        sys.executable, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
        "--no-deps", "--retries", "0", "--timeout", "20", "--index-url", f"http://{name}/simple",
        "--trusted-host", name, "--target", str(area.ws / "lib"), PKG,
    ]  # fmt: skip


def _proxied(run: Run, host: str) -> list[dict[str, Any]]:
    return [e for e in run.of_type("net") if e.get("op") == "proxy" and e.get("host") == host]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["notify", "ptrace"])
def test_pip_install_from_an_allowed_name_only(
    area: Area, user: User, index: Index, mode: str
) -> None:
    policy = write_policy(area, INDEX_RULE)
    ok = _exec(area, user, index, mode, policy, _pip(area, "index.test"))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (area.ws / "lib" / PKG / "__init__.py").read_text() == "VALUE = 42\n"
    [start] = [e for e in ok.of_type("sandbox") if e.get("op") == "start"]
    assert start["proxy"].startswith("http://127.0.0.1:")
    allowed = _proxied(ok, "index.test")
    assert allowed and all(
        (e["decision"], e["rule"], e["port"], e["addr"]) == ("allow", "the-index", 80, INDEX_IP)
        for e in allowed
    ), allowed
    assert all(isinstance(e["pid"], int) and e["pid"] > 0 for e in allowed)

    # other.test resolves to the same address, but no rule names it
    area.audit.unlink()
    denied = _exec(area, user, index, mode, policy, _pip(area, "other.test"))
    assert denied.returncode != 0
    events = _proxied(denied, "other.test")
    assert events and all(
        (e["decision"], e["rule"], e["port"]) == ("deny", "default:network", 80) for e in events
    ), events
    assert not [e for e in denied.of_type("net") if e.get("decision") == "allow"]


_FETCH = """\
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        urllib.request.urlopen(url, timeout=20).read()
        print(url, "fetched")
    except Exception as e:
        print(url, "refused", e)
"""

_DIRECT = f"""\
import socket
s = socket.socket()
try:
    s.connect(("{INDEX_IP}", 80))
    print("connected")
except OSError as e:
    print("refused", e.errno)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["notify", "ptrace", BLOCKED_MODE])
def test_local_resolutions_and_direct_connects_are_refused(
    area: Area, user: User, index: Index, mode: str
) -> None:
    # loop.test (127.0.0.1) and self.test (this namespace's own interface
    # address) are allowed by name; the addresses are not.
    policy = write_policy(area, INDEX_RULE + """\
  - name: by-name
    domains: [loop.test, self.test]
    decision: allow
  - name: ask-first
    domains: [index.test]
    ports: [8080]
    decision: approve
""")  # fmt: skip
    fetch = area.write("ws/fetch.py", _FETCH)
    r = _exec(area, user, index, mode, policy, [
        sys.executable, str(fetch), "http://loop.test/", "http://self.test/",
        "http://index.test/simple/", "http://index.test:8080/",
    ])  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "http://loop.test/ refused" in r.stdout
    assert "http://self.test/ refused" in r.stdout
    assert "http://index.test/simple/ fetched" in r.stdout  # the control
    # approve: nobody to ask (no terminal), so denied, and the event says why
    assert "http://index.test:8080/ refused" in r.stdout
    [asked] = [e for e in _proxied(r, "index.test") if e["port"] == 8080]
    assert (asked["decision"], asked["rule"]) == ("deny", "ask-first")
    assert asked["approval"].startswith("denied: no approver"), asked
    if mode == BLOCKED_MODE:
        [start] = [e for e in r.of_type("sandbox") if e.get("op") == "start"]
        assert start["mechanism"]["sockets"] == "ptrace-held"
    for host, ip in (("loop.test", "127.0.0.1"), ("self.test", SANDBOX_IP)):
        [e] = _proxied(r, host)
        assert (e["decision"], e["rule"], e["addr"]) == ("deny", pol.REBIND_RULE, ip), e

    direct = area.write("ws/direct.py", _DIRECT)
    area.audit.unlink()
    r = _exec(area, user, index, mode, policy, [sys.executable, str(direct)])
    assert "refused 111" in r.stdout, (r.stdout, r.stderr[-2000:])  # ECONNREFUSED
    [e] = [e for e in r.of_type("net") if e.get("op") == "connect" and e.get("addr") == INDEX_IP]
    assert (e["decision"], e["rule"], e["port"]) == ("deny", "default:network", 80)
    assert "through the sandbox's proxy" in e["hint"]


@pytest.mark.slow
def test_the_index_is_reachable_without_the_sandbox(area: Area, user: User, index: Index) -> None:
    """The baseline: the direct connect the sandbox refuses works unsandboxed."""
    direct = area.write("ws/direct.py", _DIRECT)
    p = subprocess.run(
        ["nsenter", "-t", str(index.sandbox_ns), "-n", "--",
         *user.cmd([sys.executable, str(direct)])],
        capture_output=True, text=True, timeout=60, cwd=area.ws,
    )  # fmt: skip
    assert p.stdout.strip() == "connected", p.stderr


# -- in-process: who may use the proxy, and SNI --------------------------------
def _client_hello(server_name: str) -> bytes:
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_client_hello_server_name() -> None:
    hello = _client_hello("files.pythonhosted.org")
    assert _proxy.client_hello_sni(hello) == (True, "files.pythonhosted.org")
    assert _proxy.client_hello_sni(hello[:40]) == (False, None)
    with pytest.raises(ValueError):
        _proxy.client_hello_sni(b"GET / HTTP/1.1\r\n")


class _Listener:
    """A loopback server standing in for the remote host: what each
    connection to it carried, in order."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                data = b""
                with conn:
                    while chunk := conn.recv(65536):
                        data += chunk
                self.got.append(data)


@pytest.fixture
def proxy() -> Iterator[tuple[_proxy.Proxy, list[dict[str, Any]], _Listener]]:
    upstream = _Listener()
    text = f"""\
version: 1
network_rules:
  - name: local
    domains: [svc.test]
    cidrs: ["127.0.0.1/32"]
    ports: [{upstream.port}]
    decision: allow
"""
    policy = pol.Policy.parse(text, "p.yaml", {"WORKSPACE": "/w", "HOME": "/h", "TMPDIR": "/t"})
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, **fields})

    p = _proxy.Proxy(policy, emit, HostServices(list), resolve=lambda host, port: ["127.0.0.1"])
    p.start()
    yield p, events, upstream
    p.close()
    upstream.sock.close()


def _announced(p: _proxy.Proxy) -> socket.socket:
    """A socket connected to the proxy the way the sandbox's is: through
    Proxy.takes and its action (here on a socket of this process)."""
    s = socket.socket()
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", p.address[1])
    raw += socket.inet_aton(p.address[0]) + bytes(8)
    req = Request("net", "connect", "connect", os.getpid(), os.getpid(),
                  pol.Decision("deny", pol.HOST_LOCAL_RULE), sockaddr=raw)  # fmt: skip
    assert p.takes(req, s.fileno(), emulate=True)
    assert req.decision.allowed and req.action is not None
    assert req.action() == 0
    return s


def _read_all(s: socket.socket) -> bytes:
    s.settimeout(30)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


@pytest.mark.needs_full_notify  # the proxy's action copies the fd
def test_only_an_announced_connection_is_served(proxy: Any) -> None:
    p, events, _ = proxy
    outsider = socket.create_connection(p.address)
    outsider.sendall(b"CONNECT svc.test:1 HTTP/1.1\r\n\r\n")
    with contextlib.suppress(ConnectionResetError):  # a reset: its request was never read
        assert _read_all(outsider) == b""
    inside = _announced(p)
    inside.sendall(b"CONNECT nope.test:443 HTTP/1.1\r\n\r\n")
    assert _read_all(inside).startswith(b"HTTP/1.1 403 Forbidden")
    kinds = [(e["op"], e["decision"], e["rule"]) for e in events]
    assert kinds == [("proxy", "deny", _proxy.OUTSIDER_RULE), ("proxy", "deny", "default:network")]
    assert events[1]["pid"] == os.getpid() and events[1]["host"] == "nope.test"


@pytest.mark.needs_full_notify  # the proxy's action copies the fd
def test_a_tls_server_name_must_be_the_connect_host(proxy: Any) -> None:
    p, events, upstream = proxy
    for sni in ("other.example", "svc.test"):
        s = _announced(p)
        s.sendall(f"CONNECT svc.test:{upstream.port} HTTP/1.1\r\n\r\n".encode())
        s.settimeout(30)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(_client_hello(sni))
        if sni == "svc.test":
            s.shutdown(socket.SHUT_WR)
        _read_all(s)
        s.close()
    assert [(e["decision"], e["rule"]) for e in events] == [
        ("deny", _proxy.SNI_RULE), ("allow", "local")
    ]  # fmt: skip
    assert "other.example" in events[0]["message"]
    # the refused hello never reached the host; the matching one did
    assert upstream.got[0] == b""
    assert upstream.got[1][:1] == b"\x16" and len(upstream.got) == 2


@pytest.mark.needs_full_notify  # the proxy's action copies the fd
def test_an_allowed_host_that_does_not_answer(proxy: Any) -> None:
    p, events, upstream = proxy
    upstream.sock.shutdown(socket.SHUT_RDWR)  # nothing listens there now (wakes its accept)
    upstream.sock.close()
    s = _announced(p)
    s.sendall(f"CONNECT svc.test:{upstream.port} HTTP/1.1\r\n\r\n".encode())
    assert _read_all(s).startswith(b"HTTP/1.1 502 Bad Gateway")
    [e] = events
    assert (e["decision"], e["rule"], e["result"]) == ("allow", "local", "ECONNREFUSED")


@pytest.mark.needs_full_notify  # the proxy's action copies the fd
def test_plain_http_goes_to_the_decided_name_only(proxy: Any) -> None:
    """A Host header naming another site is replaced (a shared server would
    answer for it), and a second request pipelined behind the first, to a
    name no rule allows, is never forwarded."""
    p, events, upstream = proxy
    upstream.sock.shutdown(socket.SHUT_RDWR)  # this test's server answers, below
    upstream.sock.close()
    server = socket.create_server(("127.0.0.1", upstream.port))
    got: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            got.append(data)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    s = _announced(p)
    s.sendall(
        f"GET http://svc.test:{upstream.port}/a HTTP/1.1\r\nHost: evil.test\r\n"
        "Proxy-Connection: keep-alive\r\n\r\n"
        "GET http://evil.test/b HTTP/1.1\r\nHost: evil.test\r\n\r\n".encode()
    )
    assert _read_all(s).endswith(b"\r\n\r\nok")  # one response, then closed
    t.join(30)
    server.close()
    [head] = [g.decode() for g in got]
    assert head.startswith("GET /a HTTP/1.1\r\n"), head
    assert f"Host: svc.test:{upstream.port}\r\n" in head and "evil" not in head, head
    assert "Proxy-Connection" not in head and "Connection: close\r\n" in head
    assert [(e["host"], e["decision"]) for e in events] == [("svc.test", "allow")]


@pytest.mark.needs_full_notify  # the proxy's action copies the fd
@pytest.mark.parametrize("answer", [True, False])
def test_an_approve_rule_asks_and_the_answer_decides(answer: bool) -> None:
    policy = pol.Policy.parse(
        "version: 1\nnetwork_rules:\n"
        "  - {name: ask, domains: [svc.test], cidrs: [127.0.0.1/32], decision: approve}\n",
        "p.yaml",
        {"WORKSPACE": "/w", "HOME": "/h", "TMPDIR": "/t"},
    )
    upstream = _Listener()
    events: list[dict[str, Any]] = []
    questions: list[str] = []

    def ask(question: str, timeout: float) -> tuple[bool, str]:
        questions.append(question)
        return answer, "granted at test" if answer else "refused at test"

    p = _proxy.Proxy(
        policy, lambda kind, **f: events.append(f), HostServices(list),
        resolve=lambda host, port: ["127.0.0.1"], ask=ask,
    )  # fmt: skip
    p.start()
    try:
        s = _announced(p)
        s.sendall(f"CONNECT svc.test:{upstream.port} HTTP/1.1\r\n\r\n".encode())
        s.settimeout(30)
        reply = s.recv(4096)
        s.close()
        for _ in range(1000):  # the event follows the client's close
            if events:
                break
            threading.Event().wait(0.01)
    finally:
        p.close()
        upstream.sock.close()
    assert questions == [f"net proxy svc.test:{upstream.port} (pid {os.getpid()}, rule ask)"]
    [e] = events
    assert (e["decision"], e["rule"], e["approval"]) == (
        ("allow", "ask", "granted at test") if answer else ("deny", "ask", "refused at test")
    )
    assert reply.startswith(b"HTTP/1.1 200" if answer else b"HTTP/1.1 403")
