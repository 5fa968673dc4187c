"""The sandbox's HTTP proxy: network rules by domain name.

A direct connect is decided by its address, which says nothing of the name
a program meant (a CDN's addresses serve everyone). So when a policy has
``domains`` rules the supervisor runs this proxy and the sandbox gets
HTTP(S)_PROXY / ALL_PROXY pointing at it. Per connection it reads the
CONNECT (HTTPS) or absolute-form request (plain HTTP), decides the host and
port by the rules, resolves the name itself, refuses an address of this
host or of a private network unless the rule's cidrs list it (DNS
rebinding), checks a TLS ClientHello's SNI against the CONNECT host, and
audits one ``net`` event (op ``proxy``): host, port, address, decision,
rule, and the sandboxed pid that connected.

Who may use it. The listener is a loopback TCP port (clients only speak
to proxies by host:port), and a port is no boundary: any local process
could connect. So a connection is served only when its client end is a
socket the supervisor saw the sandbox connect: the sandbox's connect to the
proxy is a trapped call, and the decoder hands it to :meth:`Proxy.takes`,
which records that socket's inode with the caller's pid before the connect
runs (notify mode: the supervisor connects its pidfd_getfd copy, the same
socket; where the caller's threads are held, the inode its fd names). On
accept the kernel is asked (sock_diag, the exact address pair) which socket
is the client end; any other is closed unread and audited.

Threads, not asyncio: the supervisor is thread-based already, connections
are few (a pip run opens a handful), and a blocking relay per connection
is short, obviously correct code; the standard library suffices.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from .. import policy as pol
from .._linux import netinfo, sockets
from ._hosts import HostServices
from ._request import CONTINUE, Request

HOSTS_ENV = "AGENTSH_IPY_PROXY_HOSTS"
"""A hosts file (``ADDRESS NAME...`` lines) the proxy consults before the
system resolver: a seam for tests, and for sites that pin names."""

IN_RULE = "proxy-listener"  # the sandbox's connect to the proxy itself
SNI_RULE = "proxy-sni"
UNRESOLVED_RULE = "proxy-unresolved"
OUTSIDER_RULE = "proxy-outsider"
_HEAD_MAX = 64 * 1024
_TIMEOUT = 30.0
_MAX_CLIENTS = 64
_MAX_ANNOUNCED = 4096
_HOP_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te",
     b"trailer", b"upgrade", b"host"}
)  # fmt: skip


def hint(address: tuple[str, int]) -> str:
    return (
        "direct connections are decided by address; names the policy allows are reached "
        f"through the sandbox's proxy, http://{address[0]}:{address[1]} (HTTPS_PROXY, HTTP_PROXY)"
    )


class Refused(Exception):
    """A request the proxy answers with ``status``; ``decision``, when the
    policy decided (audited with its rule; an allowed one that failed
    carries the event's ``result``)."""

    def __init__(self, status: str, reason: str, decision: pol.Decision | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.decision = decision


def read_hosts(path: str) -> dict[str, list[str]]:
    """name -> addresses from a hosts file (comments and bad lines skipped)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                ip = str(ipaddress.ip_address(fields[0]))
            except ValueError:
                continue
            for name in fields[1:]:
                out.setdefault(name.lower().rstrip("."), []).append(ip)
    return out


def client_hello_sni(data: bytes) -> tuple[bool, str | None]:
    """(complete, server name) of a TLS ClientHello at the start of
    ``data``: complete is False while more bytes are needed; a complete
    hello without the extension gives None. Raises ValueError when it is
    not a well-formed ClientHello in one record."""
    try:
        return _client_hello_sni(data)
    except (IndexError, struct.error):
        raise ValueError("a truncated ClientHello") from None


def _client_hello_sni(data: bytes) -> tuple[bool, str | None]:
    if len(data) < 5:
        return False, None
    ctype, _version, length = struct.unpack_from("!BHH", data)
    if ctype != 22:
        raise ValueError("not a TLS handshake record")
    if len(data) < 5 + length:
        return False, None
    body = data[5 : 5 + length]
    if len(body) < 4 or body[0] != 1:
        raise ValueError("not a ClientHello")
    hello_len = int.from_bytes(body[1:4], "big")
    if hello_len > len(body) - 4:
        raise ValueError("a ClientHello split across records")
    p = 4 + 2 + 32  # version, random
    p += 1 + body[p]  # session id
    p += 2 + int.from_bytes(body[p : p + 2], "big")  # cipher suites
    p += 1 + body[p]  # compression methods
    if p >= 4 + hello_len:
        return True, None
    end = p + 2 + int.from_bytes(body[p : p + 2], "big")
    p += 2
    while p + 4 <= end:
        etype, elen = struct.unpack_from("!HH", body, p)
        p += 4
        if etype == 0:  # server_name: list length, then (type, length, name)...
            q, stop = p + 2, p + elen
            while q + 3 <= stop:
                ntype, nlen = body[q], int.from_bytes(body[q + 1 : q + 3], "big")
                if ntype == 0:
                    return True, body[q + 3 : q + 3 + nlen].decode("ascii", "replace")
                q += 3 + nlen
            return True, None
        p += elen
    return True, None


class Proxy:
    """One per session. ``emit``: the session's audit; ``hosts``: this
    host's addresses (a resolved name must not lead here)."""

    def __init__(
        self,
        policy: pol.Policy,
        emit: Callable[..., None],
        hosts: HostServices,
        resolve: Callable[[str, int], list[str]] | None = None,
        ask: Callable[[str, float], tuple[bool, str]] | None = None,
    ) -> None:
        """``ask(question, timeout)``: a person's answer to an ``approve``
        rule, (granted, how it was decided)."""
        self.policy = policy
        self.ask = ask
        self.emit = emit
        self.hosts = hosts
        path = os.environ.get(HOSTS_ENV)
        self._pinned = read_hosts(path) if path else {}
        self._resolve = resolve or self._system_resolve
        self._lock = threading.Lock()
        self._expected: dict[int, int] = {}  # socket inode -> the pid that connected it
        self._open: set[socket.socket] = set()
        self._closed = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.address: tuple[str, int] = self.listener.getsockname()
        self._packed = socket.inet_aton(self.address[0])
        self._thread = threading.Thread(target=self._accept, name="agentsh-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def env(self) -> dict[str, str]:
        url = self.url
        names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
        return {n: url for name in names for n in (name, name.lower())}

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._open)
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    # -- the sandbox's side: its connect to the proxy ----------------------
    def takes(self, req: Request, fd: int, emulate: bool) -> bool:
        """Is ``req`` (a decoded connect) a connect to the proxy? Then it
        is allowed, and its action announces the source first. A denied
        direct connect gets the hint to use the proxy."""
        raw = req.sockaddr
        if req.kind != "net" or req.op != "connect":
            return False
        if (
            len(raw) < 8
            or struct.unpack_from("=H", raw)[0] != socket.AF_INET
            or raw[4:8] != self._packed
            or struct.unpack_from("!H", raw, 2)[0] != self.address[1]
        ):
            if req.decision.decision == "deny":
                req.fields["hint"] = hint(self.address)
            return False
        req.decision = pol.Decision("allow", IN_RULE, "the sandbox's proxy")
        req.quiet = True  # the proxy audits what goes through it
        pid, tid = req.pid, req.tid

        def run() -> int:
            if not emulate:
                # The caller's threads are held (ptrace mode, or socket calls
                # traced where pidfd_getfd is refused): the kernel connects
                # the very socket its fd names now.
                try:
                    link = os.readlink(f"/proc/{tid}/fd/{fd}")
                except OSError as e:
                    return -(e.errno or errno.EBADF)
                if not link.startswith("socket:["):
                    return -errno.ENOTSOCK
                self._announce(int(link[8:-1]), pid)
                return CONTINUE
            try:
                sfd = sockets.steal(pid, fd)
            except OSError as e:
                req.fields["result"] = errno.errorcode.get(e.errno or 0, str(e.errno))
                return -(e.errno or errno.EACCES)
            try:
                self._announce(os.fstat(sfd).st_ino, pid)
                sockets.connect(sfd, raw)  # the bytes decided on, on the caller's socket
                return 0
            except OSError as e:
                req.fields["result"] = errno.errorcode.get(e.errno or 0, str(e.errno))
                return -(e.errno or errno.EACCES)
            finally:
                os.close(sfd)

        req.action = run
        req.run_async = emulate  # a connect may block
        return True

    def _announce(self, inode: int, pid: int) -> None:
        with self._lock:
            self._expected[inode] = pid
            while len(self._expected) > _MAX_ANNOUNCED:  # connects that never arrived
                del self._expected[next(iter(self._expected))]

    def _client(self, peer: tuple[str, int]) -> int | None:
        """The sandboxed pid whose announced socket is the client end of a
        connection from ``peer``, or None."""
        try:
            inode = netinfo.tcp_inode(peer, self.address)
        except OSError:
            return None
        with self._lock:
            return None if inode is None else self._expected.pop(inode, None)

    # -- the proxy's side ---------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return  # closed
            pid = self._client(peer)
            with self._lock:
                busy = len(self._open) >= _MAX_CLIENTS
                if pid is not None and not busy and not self._closed:
                    self._open.add(conn)
            if pid is None:
                conn.close()
                self.emit("net", op="proxy", decision="deny", rule=OUTSIDER_RULE,
                          addr=peer[0], port=peer[1],
                          message="not a connection the sandbox made")  # fmt: skip
                continue
            if busy:
                conn.close()
                continue
            threading.Thread(
                target=self._serve, args=(conn, pid), name="agentsh-proxy-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, pid: int) -> None:
        upstream: socket.socket | None = None
        event: dict[str, Any] = {"pid": pid}
        allowed: pol.Decision | None = None  # decided and connected, not audited yet
        try:
            conn.settimeout(_TIMEOUT)
            head, rest = _read_head(conn)
            method, target, version, headers = _parse_head(head)
            length = 0 if method == "CONNECT" else _body_length(headers)
            event["method"] = method
            host, port, path = _target(method, target)
            event.update(host=host, port=port)
            decision, rule = self.policy.check_domain(host, port)
            if decision.decision == "approve":
                decision = self._asked(decision, host, port, pid, event)
            if not decision.allowed:
                raise Refused("403 Forbidden", f"{host}:{port} is not allowed", decision)
            ip, decision = self._pick(host, port, rule, decision, event)
            try:
                upstream = socket.create_connection((ip, port), timeout=_TIMEOUT)
            except OSError as e:
                # allowed, but the host did not answer: the event says so
                event["result"] = errno.errorcode.get(e.errno or 0, str(e))
                raise Refused(
                    "502 Bad Gateway", f"cannot connect to {host}:{port}: {e}", decision
                ) from None
            with self._lock:
                self._open.add(upstream)
            allowed = decision
            if method == "CONNECT":
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = self._check_sni(conn, upstream, host, rest)
                allowed = None
                self._audit(event, decision)
                upstream.sendall(rest)
                _relay(conn, upstream)
            else:
                upstream.sendall(_forward_head(method, path, version, headers, host, port))
                body = rest[:length]
                upstream.sendall(body)
                while len(body) < length:
                    chunk = conn.recv(min(65536, length - len(body)))
                    if not chunk:
                        break
                    body += chunk
                    upstream.sendall(chunk)
                allowed = None
                self._audit(event, decision)
                _pump(upstream, conn)
        except Refused as r:
            if r.decision is not None:
                self._audit(event, r.decision)
            elif "host" in event:
                event["error"] = str(r)
                self._audit(event, pol.Decision("deny", UNRESOLVED_RULE, str(r)))
            body = f"agentsh-ipy proxy: {r}\n".encode()
            with contextlib.suppress(OSError):
                conn.sendall(
                    f"HTTP/1.1 {r.status}\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
        except (OSError, ValueError) as e:
            if allowed is not None:  # the client left before its first bytes
                event["result"] = str(e) or type(e).__name__
                self._audit(event, allowed)
        except Exception as e:  # a bug of ours: end this connection, keep the proxy
            with contextlib.suppress(Exception):
                self.emit("sandbox", op="error", reason=f"proxy failure: {e!r}", **event)
        finally:
            for s in (conn, upstream):
                if s is not None:
                    with self._lock:
                        self._open.discard(s)
                    s.close()

    def _asked(
        self, d: pol.Decision, host: str, port: int, pid: int, event: dict[str, Any]
    ) -> pol.Decision:
        """An ``approve`` rule: ask a person (this connection's thread may
        wait; nothing else does), deny when nobody answers."""
        if self.ask is None:
            granted, how = False, "denied: no approver available"
        else:
            question = f"net proxy {host}:{port} (pid {pid}, rule {d.rule})"
            granted, how = self.ask(question, self.policy.approval_timeout)
        event["approval"] = how
        return pol.Decision("allow" if granted else "deny", d.rule, d.message)

    def _pick(
        self,
        host: str,
        port: int,
        rule: pol.NetworkRule | None,
        allowed: pol.Decision,
        event: dict[str, Any],
    ) -> tuple[str, pol.Decision]:
        """The first address of ``host`` the policy lets it lead to (set as
        the event's ``addr``; when none, the first refused one)."""
        try:
            addresses = self._resolve(host, port)
        except OSError as e:
            raise Refused("502 Bad Gateway", f"cannot resolve {host}: {e}") from None
        if not addresses:
            raise Refused("502 Bad Gateway", f"cannot resolve {host}")
        first: pol.Decision | None = None
        for ip in addresses:
            local = self.hosts.is_host(self.hosts.route(ip))
            d = self.policy.check_resolved(rule, host, ip, port, local=local)
            if d.allowed:
                event["addr"] = ip
                return ip, pol.Decision(allowed.decision, d.rule, allowed.message or d.message)
            if first is None:
                first = d
                event["addr"] = ip
        assert first is not None
        raise Refused("403 Forbidden", first.message, first)

    def _system_resolve(self, host: str, port: int) -> list[str]:
        pinned = self._pinned.get(host.lower().rstrip("."))
        if pinned is not None:
            return list(pinned)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def _check_sni(self, conn: socket.socket, up: socket.socket, host: str, data: bytes) -> bytes:
        """Bytes the client sent first, once its SNI (if it speaks TLS)
        names ``host``. A server that speaks first is let through."""
        while True:
            if data:
                if data[0] != 22:
                    return data  # not TLS: the name was decided already
                try:
                    complete, sni = client_hello_sni(data)
                except ValueError as e:
                    raise Refused("403 Forbidden", f"unreadable TLS ClientHello: {e}",
                                  pol.Decision("deny", SNI_RULE, str(e))) from None  # fmt: skip
                if complete:
                    if sni is not None and sni.lower().rstrip(".") != host.lower().rstrip("."):
                        msg = f"TLS server name {sni!r} is not the CONNECT host {host!r}"
                        raise Refused("403 Forbidden", msg, pol.Decision("deny", SNI_RULE, msg))
                    return data
                if len(data) > 5 + 16384:
                    raise Refused("403 Forbidden", "oversized ClientHello")
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            if not data:  # a server that speaks first: let it
                poller.register(up.fileno(), select.POLLIN)
            ready = {fd for fd, _ in poller.poll(int(_TIMEOUT * 1000))}
            if conn.fileno() in ready:
                chunk = conn.recv(65536)
                if not chunk:
                    raise OSError("client closed")
                data += chunk
            elif up.fileno() in ready:
                return data
            elif not ready:
                raise OSError("timed out waiting for the client")

    def _audit(self, event: dict[str, Any], d: pol.Decision) -> None:
        fields = dict(event)
        if d.message:
            fields["message"] = d.message
        self.emit("net", op="proxy", decision=d.decision, rule=d.rule, **fields)


# -- HTTP plumbing -------------------------------------------------------------
def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > _HEAD_MAX:
            raise ValueError("request head too large")
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("client closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise Refused("400 Bad Request", "not an HTTP request line")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name.strip() or name != name.strip():
            raise Refused("400 Bad Request", "a malformed header line")
        headers.append((name, value.strip()))
    return parts[0], parts[1], parts[2], headers


def _split_hostport(text: str, default: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if port and not port.isdecimal():
        raise Refused("400 Bad Request", f"bad port in {text!r}")
    value = int(port) if port else default
    if not 0 < value <= 65535:
        raise Refused("400 Bad Request", f"bad port in {text!r}")
    return host, value


def _target(method: str, target: str) -> tuple[str, int, str]:
    """(host, port, origin-form path) of a proxy request."""
    if method == "CONNECT":
        if "/" in target or ":" not in target:
            raise Refused("400 Bad Request", "CONNECT needs host:port")
        host, port = _split_hostport(target, 0)
        return host, port, ""
    if not target.lower().startswith("http://"):
        raise Refused(
            "400 Bad Request", "only http:// URLs are forwarded; HTTPS goes through CONNECT"
        )
    rest = target[len("http://") :]
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        raise Refused("400 Bad Request", "credentials in the URL are not forwarded")
    host, port = _split_hostport(authority, 80)
    return host, port, slash + path if slash else "/"


def _forward_head(
    method: str, path: str, version: str, headers: list[tuple[bytes, bytes]], host: str, port: int
) -> bytes:
    # Host is the decided name (a different Host header would reach another
    # site on a shared server); one request per connection.
    out = [
        f"{method} {path} {version}".encode(),
        f"Host: {host}{'' if port == 80 else f':{port}'}".encode(),
    ]
    out += [name + b": " + value for name, value in headers if name.lower() not in _HOP_HEADERS]
    out.append(b"Connection: close")
    return b"\r\n".join(out) + b"\r\n\r\n"


def _body_length(headers: list[tuple[bytes, bytes]]) -> int:
    length = 0
    for name, value in headers:
        if name.lower() == b"transfer-encoding":
            raise Refused("411 Length Required", "request bodies need a Content-Length")
        if name.lower() == b"content-length":
            if not value.isdigit():
                raise Refused("400 Bad Request", "bad Content-Length")
            length = int(value)
    return length


def _pump(src: socket.socket, dst: socket.socket) -> None:
    src.settimeout(None)
    while True:
        chunk = src.recv(65536)
        if not chunk:
            return
        dst.sendall(chunk)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Both directions, each until its sender closes (a half-close passes on)."""
    a.settimeout(None)
    b.settimeout(None)
    peers = {a.fileno(): (a, b), b.fileno(): (b, a)}
    poller = select.poll()
    for fd in peers:
        poller.register(fd, select.POLLIN)
    while peers:
        for fd, _ in poller.poll():
            src, dst = peers[fd]
            chunk = src.recv(65536)
            if chunk:
                dst.sendall(chunk)
                continue
            poller.unregister(fd)
            del peers[fd]
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
