"""A real Jupyter server on the same machine, as the same user, is out of the
sandboxed kernel's reach (issue 13, "the network boundary"), as root and as
uid 65534.

The test starts ``jupyter_server`` as the kernel's user, with the kernel's
HOME and JUPYTER_RUNTIME_DIR, on 127.0.0.1 with a token: it writes its
``jpserver-PID.json`` (the token) where Jupyter keeps it for this user, next
to the sandboxed kernel's own connection file (the frontend's key). Then:

* a cell cannot read any of Jupyter's runtime files (the runtime directory is
  hidden, rule ``hidden``) nor a connection or server file copied elsewhere
  (rule ``jupyter-secrets``), by Python or by a shell command: neither the
  token nor a key appears in the cell's output, and the denials are in the
  cell's audit display and in the audit log;
* a cell HANDED the token (as if it had leaked) cannot use the REST API: every
  request is refused at connect, the connects are audited as denied
  (``host-local``), and the server, asked by the test itself with the token,
  started no kernel and no terminal and wrote no file;
* controls: the test's own request with the token works (so a refusal is the
  sandbox's doing), the cell reads an ordinary file beside the denied copies,
  and it reaches a loopback server of its own.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy.audit import is_denial
from tests.kernel._harness import kernel_env, token

from ._harness import SandboxedKernel, SkCell

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    info: Path  # the server's jpserver-PID.json, in the user's runtime directory
    root: Path  # what /api/contents serves
    log: Path

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request from the test process (not sandboxed), with the token."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Authorization": f"token {self.token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read().decode(errors="replace")
            try:
                return r.status, json.loads(raw)
            except ValueError:  # an error's text
                return r.status, raw
        finally:
            conn.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server by its pid: SIGTERM (it shuts down its kernels and
    terminals, and removes its runtime files), then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(kernel: SandboxedKernel) -> Iterator[Server]:
    area = kernel.area
    secret = "agentsh-test-token-" + uuid.uuid4().hex
    root = area.mkdir("served")  # outside the workspace: the sandbox cannot write here
    runtime = area.root / "runtime"
    env = kernel_env(area)  # the kernel's HOME, JUPYTER_RUNTIME_DIR, JUPYTER_DATA_DIR
    assert env["JUPYTER_RUNTIME_DIR"] == str(runtime)
    log = area.root / "jupyter_server.log"
    argv = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        f"--IdentityProvider.token={secret}",
        "--no-browser",
        f"--ServerApp.root_dir={root}",
    ]
    if area.user.uid == 0:
        argv.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            area.user.cmd(argv),
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # setpriv execs the server: the pid is the server's, and so is the
        # name of its info file.
        info = runtime / f"jpserver-{proc.pid}.json"
        deadline = time.monotonic() + 60
        srv: Server | None = None
        while srv is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter_server did not start (exit {proc.poll()}):\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            if info.exists():
                try:
                    data = json.loads(info.read_text())
                except ValueError:  # being written
                    data = None
                if data is not None:
                    assert data["token"] == secret and data["hostname"] == "127.0.0.1", data
                    candidate = Server(proc, int(data["port"]), secret, info, root, log)
                    try:
                        if candidate.api("GET", "/api/status")[0] == 200:
                            srv = candidate
                    except OSError:
                        pass
            time.sleep(0.1)
        assert os.stat(info).st_uid == area.user.uid
        yield srv
    finally:
        _stop(proc)


def denials(events: list[dict[str, Any]], type_: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["type"] == type_ and is_denial(e) and all(e.get(k) == v for k, v in match.items())
    ]


def in_both(
    kernel: SandboxedKernel, cell: SkCell, type_: str, **match: Any
) -> list[dict[str, Any]]:
    """The cell's denials matching ``match``, in its audit display; each one
    also in the JSON Lines log, under the same seq."""
    shown = denials(cell.events(), type_, **match)
    assert shown, (
        f"no {type_} denial {match} in the cell's audit display:\n"
        + cell.audit()["data"]["text/plain"]
    )
    log = {e["seq"]: e for e in kernel.jsonl() if e.get("cell") == cell.execution_count}
    for e in shown:
        assert e["cell"] == cell.execution_count
        assert e["seq"] in log, f"a denial of the display is not in the audit log: {e}"
        assert denials([log[e["seq"]]], type_, **match), (e, log[e["seq"]])
    return shown


READ_CODE = """\
import os, subprocess
def attempt(name, path):
    try:
        with open(path, 'rb') as f:
            print(name, 'read', f.read().decode(errors='replace'))
    except OSError as e:
        print(name, type(e).__name__)
for name, path in {targets!r}:
    attempt(name, path)
try:
    print('listdir', os.listdir({runtime!r}))
except OSError as e:
    print('listdir', type(e).__name__)
r = subprocess.run(['cat', {info!r}], capture_output=True, text=True)
print('cat', r.returncode, r.stdout, r.stderr.strip())
"""


def test_jupyters_runtime_files_cannot_be_read(kernel: SandboxedKernel, server: Server) -> None:
    area = kernel.area
    runtime = area.root / "runtime"
    t = token()
    # The sandboxed kernel's own connection file: jupyter_client's
    # KernelManager, used alone, writes it to a temporary file (a server
    # writes runtime/kernel-ID.json, as `dropped` below); the kernel hides
    # it by its path.
    frontend = Path(kernel.connection_file)
    frontend_key = json.loads(frontend.read_text())["key"]
    assert len(frontend_key) >= 16
    # A connection file Jupyter would have written for another kernel, and
    # copies of both kinds of secret files outside the runtime directory.
    dropped_key = "agentsh-test-key-" + uuid.uuid4().hex
    conn = json.dumps({"key": dropped_key, "ip": "127.0.0.1", "shell_port": 1})
    dropped = area.write(f"runtime/kernel-{t}.json", conn, mode=0o600)
    copy_kernel = area.write(f"outside/copies-{t}/kernel-{t}.json", conn)
    copy_server = area.write(f"outside/copies-{t}/jpserver-{t}.json", server.info.read_text())
    notes = area.write(f"outside/copies-{t}/notes-{t}.json", '"readable"')
    opened = runtime / f"jpserver-{server.proc.pid}-open.html"  # its URL has the token
    cookie = runtime / "jupyter_cookie_secret"
    cookie_secret = cookie.read_text().strip()
    assert server.token in opened.read_text() and cookie_secret
    hidden = {
        "server-info": server.info,
        "server-open": opened,
        "cookie": cookie,
        "frontend": frontend,
        "dropped": dropped,
    }
    by_rule = {"copy-kernel": copy_kernel, "copy-server": copy_server}
    targets = [(n, str(p)) for n, p in [*hidden.items(), *by_rule.items(), ("notes", notes)]]

    cell = kernel.ok(READ_CODE.format(targets=targets, runtime=str(runtime), info=str(server.info)))

    results = dict(line.split(" ", 1) for line in cell.stdout.splitlines() if " " in line)
    for name in [*hidden, *by_rule, "listdir"]:
        assert results.get(name) == "PermissionError", (name, cell.stdout)
    assert results.get("notes") == 'read "readable"', cell.stdout  # the control
    assert results.get("cat", "").startswith("1 ") and "Permission denied" in results["cat"]
    shown, logged = cell.text(), area.audit.read_text()
    for secret in (server.token, frontend_key, dropped_key, cookie_secret):
        assert secret not in shown, "a secret reached the cell's output"
        assert secret not in logged, "a secret is in the audit log"

    for path in hidden.values():
        events = in_both(kernel, cell, "file", path=str(path))
        assert {e["rule"] for e in events} == {"hidden"}, events
    cat = in_both(kernel, cell, "file", path=str(server.info))
    assert len({e["pid"] for e in cat}) == 2, cat  # the kernel's open and cat's
    listing = in_both(kernel, cell, "file", path=str(runtime))
    assert {e["rule"] for e in listing} == {"hidden"}, listing
    for path in by_rule.values():
        events = in_both(kernel, cell, "file", path=str(path))
        assert {e["rule"] for e in events} == {"jupyter-secrets"}, events
    assert not denials(cell.events(), "file", path=str(notes))


API_CODE = """\
import json, socket, subprocess, sys, urllib.error, urllib.request
TOKEN, PORT = {token!r}, {port}
urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({{}})))
def call(method, path, body=None):
    req = urllib.request.Request(
        f'http://127.0.0.1:{{PORT}}{{path}}', method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={{'Authorization': f'token {{TOKEN}}', 'Content-Type': 'application/json'}})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            print(method, path, 'status', r.status)
    except urllib.error.HTTPError as e:
        print(method, path, 'http', e.code)
    except urllib.error.URLError as e:
        refused = isinstance(e.reason, ConnectionRefusedError)
        print(method, path, 'refused' if refused else f'failed {{e.reason!r}}')
call('GET', '/api/status')
call('POST', '/api/kernels', {{}})
call('PUT', '/api/contents/{name}',
     {{'type': 'file', 'format': 'text', 'content': 'written through the API'}})
call('POST', '/api/terminals', {{}})
r = subprocess.run([sys.executable, '-c',
    f'import socket; print(socket.socket().connect_ex(("127.0.0.1", {{PORT}})))'],
    capture_output=True, text=True)
print('child', r.stdout.strip(), r.stderr.strip()[-200:])
# A loopback server of the sandbox's own is reachable: the network works.
own = socket.socket(); own.bind(('127.0.0.1', 0)); own.listen(1)
c = socket.create_connection(own.getsockname(), timeout=5)
a, _ = own.accept(); c.sendall(b'ping'); print('own', a.recv(4).decode())
for s in (a, c, own):
    s.close()
"""


def test_a_leaked_token_does_not_open_the_rest_api(kernel: SandboxedKernel, server: Server) -> None:
    # The control: with the token, from outside the sandbox, the API answers.
    status, body = server.api("GET", "/api/status")
    assert status == 200 and "started" in body, body
    assert server.api("GET", "/api/kernels") == (200, [])
    assert server.api("GET", "/api/terminals") == (200, [])  # terminals are enabled
    name = f"written-{token()}.txt"

    cell = kernel.ok(API_CODE.format(token=server.token, port=server.port, name=name))

    lines = cell.stdout.splitlines()
    assert lines[:4] == [
        "GET /api/status refused",
        "POST /api/kernels refused",
        f"PUT /api/contents/{name} refused",
        "POST /api/terminals refused",
    ], cell.stdout
    assert lines[4].rstrip() == "child 111", cell.stdout  # ECONNREFUSED in a child process too
    assert lines[5] == "own ping", cell.stdout

    # What the server did meanwhile, asked by the test with the token.
    assert server.proc.poll() is None
    assert server.api("GET", "/api/status")[0] == 200
    assert server.api("GET", "/api/kernels") == (200, []), "a kernel was started"
    assert server.api("GET", "/api/sessions") == (200, [])
    assert server.api("GET", "/api/terminals") == (200, []), "a terminal was started"
    assert server.api("GET", f"/api/contents/{name}")[0] == 404
    assert not (server.root / name).exists(), "a file was written through the API"
    assert sorted(p.name for p in server.root.iterdir()) == []

    events = in_both(
        kernel, cell, "net", op="connect", addr="127.0.0.1", port=server.port, decision="deny"
    )
    assert {e["rule"] for e in events} == {"host-local"}, events
    assert all("not bound inside this sandbox" in e.get("message", "") for e in events), events
    assert len(events) >= 5, events  # four requests and the child's connect
    assert len({e["pid"] for e in events}) == 2, events  # the kernel and the child
    own = [
        e
        for e in cell.events()
        if e["type"] == "net" and e.get("op") == "connect" and e.get("port") != server.port
    ]
    assert own and not [e for e in own if is_denial(e)], own
