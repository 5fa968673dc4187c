"""The sandboxed kernel confines the whole kernel process, as root and as
uid 65534: pure-Python file and socket access, ``!cmd``, ``subprocess`` and
``os.system`` are decided by one policy and audited under the cell, and an
allowed workload works unchanged. Code inside the sandbox can change neither
the policy file nor the audit log (both inside the workspace, where it could
otherwise write), and cannot make an event disappear from its cell's audit.

Each assertion is about an effect (the secret is absent from every output,
the file is not there, the listener got nothing) and about the audit, in the
cell's display and in the JSON Lines log.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy.audit import is_denial
from tests.kernel._harness import token

from ._harness import (
    AUDIT_MIME,
    SECRET,
    SandboxedKernel,
    SkCell,
    alive,
)

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


def denials(events: list[dict[str, Any]], type_: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["type"] == type_ and is_denial(e) and all(e.get(k) == v for k, v in match.items())
    ]


def names_pid(value: object, pid: int) -> bool:
    """``value`` names ``pid``: itself, its group (-pid), or in a list."""
    if isinstance(value, list):
        return any(names_pid(v, pid) for v in value)
    return value in (pid, -pid, str(pid), str(-pid))


def logged(kernel: SandboxedKernel, cell: SkCell) -> list[dict[str, Any]]:
    """The cell's events in the JSON Lines log; every one of its display's
    events is there too, under the same seq."""
    log = kernel.jsonl()
    mine = [e for e in log if e.get("cell") == cell.execution_count]
    by_seq = {e["seq"]: e for e in mine}
    for e in cell.events():
        assert e["seq"] in by_seq, f"an event of the display is not in the log: {e}"
        assert (by_seq[e["seq"]]["type"], by_seq[e["seq"]].get("decision")) == (
            e["type"],
            e.get("decision"),
        )
    return mine


def in_both(kernel: SandboxedKernel, cell: SkCell, type_: str, **match: Any) -> dict[str, Any]:
    """The denial matching ``match``, from the display, also found in the log."""
    shown = denials(cell.events(), type_, **match)
    assert shown, (
        f"no {type_} denial {match} in the cell's audit display:\n"
        + cell.audit()["data"]["text/plain"]
    )
    assert denials(logged(kernel, cell), type_, **match), f"no {type_} denial {match} in the log"
    for e in shown:
        assert e["cell"] == cell.execution_count
    return shown[0]


def test_reading_the_ssh_key_is_denied_and_audited(kernel: SandboxedKernel) -> None:
    key = kernel.area.home / ".ssh" / "id_rsa"
    cell = kernel.run(
        "import os, pathlib\n"
        "path = os.path.expanduser('~/.ssh/id_rsa')\n"
        "for name, read in [('open', lambda: open(path).read()),\n"
        "                   ('os.open', lambda: os.read(os.open(path, os.O_RDONLY), 4096)),\n"
        "                   ('pathlib', lambda: pathlib.Path(path).read_text())]:\n"
        "    try:\n"
        "        print(name, 'read', read())\n"
        "    except OSError as e:\n"
        "        print(name, type(e).__name__, e.errno)\n"
        "print(path)\n"
        "open(path)\n"
    )
    assert cell.stdout.splitlines()[:4] == [
        "open PermissionError 13",
        "os.open PermissionError 13",
        "pathlib PermissionError 13",
        str(key),
    ], cell.stdout
    assert (cell.reply["ename"], cell.reply["status"]) == ("PermissionError", "error")
    assert SECRET not in cell.text()
    assert SECRET not in kernel.area.audit.read_text()
    event = in_both(kernel, cell, "file", path=str(key))
    assert event["rule"] == "credentials"
    data = cell.audit()["data"]
    assert "DENIED" in data["text/plain"] and "<strong>" in data["text/html"], data


class Listener:
    """A loopback listener run by the test (not by the sandbox)."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])

    def received(self, timeout: float) -> bytes | None:
        """What the first connection sent, None when nobody connected."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return None
        with conn:
            conn.settimeout(5)
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            return data

    def close(self) -> None:
        self.sock.close()


def connect_code(*ports: int) -> str:
    return (
        "import socket\n"
        f"for port in {list(ports)!r}:\n"
        "    try:\n"
        "        s = socket.create_connection(('127.0.0.1', port), timeout=5)\n"
        "        s.sendall(b'sent-from-the-cell'); s.close()\n"
        "        print(port, 'connected')\n"
        "    except OSError as e:\n"
        "        print(port, type(e).__name__)\n"
    )


def test_a_connection_to_a_denied_port_fails_and_is_audited(kernel: SandboxedKernel) -> None:
    denied, allowed = Listener(kernel.area.port), Listener(kernel.area.open_port)
    try:
        cell = kernel.ok(connect_code(denied.port, allowed.port))
        lines = cell.stdout.splitlines()
        assert lines[0] in (
            f"{denied.port} ConnectionRefusedError",
            f"{denied.port} PermissionError",
        ), cell.stdout
        assert lines[1] == f"{allowed.port} connected", cell.stdout
        assert denied.received(0.5) is None, "the denied connection reached the listener"
        assert allowed.received(5) == b"sent-from-the-cell"
        # The denied port is open: the test itself gets through.
        with socket.create_connection(("127.0.0.1", denied.port), timeout=5) as s:
            s.sendall(b"from-the-test")
        assert denied.received(5) == b"from-the-test"
    finally:
        denied.close()
        allowed.close()
    event = in_both(kernel, cell, "net", op="connect", port=denied.port)
    assert event["rule"] == "closed-port" and event["addr"] == "127.0.0.1"
    ok = [e for e in cell.events() if e["type"] == "net" and e.get("port") == allowed.port]
    assert ok and all((e["decision"], e["rule"]) == ("allow", "open-port") for e in ok), ok


def test_shell_and_subprocess_calls_are_confined_by_the_same_policy(
    kernel: SandboxedKernel,
) -> None:
    area = kernel.area
    t = token()
    bang, sub, system = (area.outside / f"{form}-{t}" for form in ("bang", "sub", "system"))
    listener = Listener(area.port)
    try:
        cell = kernel.run(
            "import os, subprocess, sys\n"
            "print('kernel-pid', os.getpid())\n"
            f"!cat ~/.ssh/id_rsa; echo x > {bang}\n"
            "r = subprocess.run(['sh', '-c', 'cat ~/.ssh/id_rsa; echo x > " + f"{sub}'],\n"
            "                   capture_output=True, text=True)\n"
            "print('sub', r.returncode, r.stdout, r.stderr)\n"
            f"os.system('echo x > {system}')\n"
            "r = subprocess.run([sys.executable, '-c', 'import socket; "
            f'socket.create_connection(("127.0.0.1", {area.port}), timeout=5)\'],\n'
            "                   capture_output=True, text=True)\n"
            "print('net', r.returncode, r.stderr.strip().splitlines()[-1])\n"
        )
        assert listener.received(0.5) is None, "a child process reached the denied port"
    finally:
        listener.close()
    for target in (bang, sub, system):
        assert not target.exists(), f"{target.name} was written"
    assert SECRET not in cell.text()
    kernel_pid = int(cell.stdout.split("kernel-pid ", 1)[1].split()[0])
    key = str(area.home / ".ssh" / "id_rsa")
    reads = denials(cell.events(), "file", path=key)
    assert len({e["pid"] for e in reads}) >= 2, reads  # cat from !cmd and from subprocess
    assert kernel_pid not in {e["pid"] for e in reads}
    for target in (bang, sub, system):
        event = in_both(kernel, cell, "file", path=str(target))
        assert event["pid"] != kernel_pid
    net = in_both(kernel, cell, "net", op="connect", port=area.port)
    assert net["pid"] != kernel_pid and net["rule"] == "closed-port"
    assert "net 1 " in cell.stdout and "Error" in cell.stdout.split("net 1 ", 1)[1]
    argv0 = {os.path.basename(e.get("argv", [""])[0]) for e in cell.events() if e["type"] == "exec"}
    assert {"cat", "sh"} <= argv0, argv0


def test_an_allowed_workload_works_unchanged(kernel: SandboxedKernel) -> None:
    area = kernel.area
    t = token()
    code = (
        "import hashlib, json, math, os, pathlib, sqlite3, statistics\n"
        f"d = pathlib.Path('work-{t}')\n"
        "(d / 'sub').mkdir(parents=True)\n"
        "(d / 'sub' / 'a.json').write_text(json.dumps({'pi': round(math.pi, 6)}))\n"
        "os.rename(d / 'sub' / 'a.json', d / 'sub' / 'b.json')\n"
        "db = sqlite3.connect(d / 'data.db')\n"
        "db.execute('create table t (x integer)')\n"
        "db.executemany('insert into t values (?)', [(i,) for i in range(1000)])\n"
        "db.commit()\n"
        "total = db.execute('select sum(x) from t').fetchone()[0]\n"
        "db.close()\n"
        "(d / 'scratch').write_text('x'); (d / 'scratch').unlink()\n"
        f"!echo from-the-shell > work-{t}/shell.txt\n"
        "print(total, hashlib.sha256(b'agentsh').hexdigest(),\n"
        "      statistics.mean(range(101)), sum(i * i for i in range(10**5)))\n"
        "json.loads((d / 'sub' / 'b.json').read_text())['pi']\n"
    )
    cell = kernel.ok(code)
    squares = sum(i * i for i in range(10**5))
    expected = f"499500 {hashlib.sha256(b'agentsh').hexdigest()} 50 {squares}"
    assert cell.stdout.strip() == expected
    assert cell.without_audit()["results"] == ["3.141593"]
    work = area.ws / f"work-{t}"
    assert json.loads((work / "sub" / "b.json").read_text()) == {"pi": 3.141593}
    assert not (work / "sub" / "a.json").exists() and not (work / "scratch").exists()
    assert (work / "shell.txt").read_text() == "from-the-shell\n"
    assert (work / "data.db").stat().st_uid == area.user.uid
    events = cell.events()
    assert not [e for e in events if is_denial(e)], [e for e in events if is_denial(e)]
    writes = [e for e in events if e["type"] == "file" and str(work) in str(e.get("path"))]
    assert writes and {e.get("rule") for e in writes} == {"workspace"}, writes


ATTEMPTS = """\
import os
P = {path!r}
def attempt(name, fn):
    try:
        fn()
        print(name, 'ok')
    except OSError as e:
        print(name, type(e).__name__)
def replace():
    with open(P + '.new', 'w') as f:
        f.write({content!r})
    os.replace(P + '.new', P)
attempt('write', lambda: open(P, 'w').write({content!r}))
attempt('append', lambda: open(P, 'a').write({content!r}))
attempt('truncate', lambda: os.truncate(P, 0))
attempt('chmod', lambda: os.chmod(P, 0o666))
attempt('replace', replace)
attempt('rename', lambda: os.rename(P, P + '.moved'))
attempt('unlink', lambda: os.unlink(P))
!echo {content!r} >> {path}; echo {content!r} > {path}
"""
OPS = ("write", "append", "truncate", "chmod", "replace", "rename", "unlink")


def test_the_policy_file_cannot_be_changed_from_inside(kernel: SandboxedKernel) -> None:
    area = kernel.area
    policy: Path = area.policy
    before, mode = policy.read_bytes(), policy.stat().st_mode
    forged = "version: 1\nname: forged\n"
    cell = kernel.run(ATTEMPTS.format(path=str(policy), content=forged))
    assert policy.read_bytes() == before, "the sandbox changed the policy file"
    assert policy.stat().st_mode == mode
    assert not Path(str(policy) + ".moved").exists()
    results = dict(line.split(" ", 1) for line in cell.stdout.splitlines() if " " in line)
    assert {op: results.get(op) for op in OPS} == dict.fromkeys(OPS, "PermissionError"), results
    event = in_both(kernel, cell, "file", path=str(policy))
    assert event["decision"] == "deny"
    # The policy still decides: the key is still out of reach.
    after = kernel.run("open(__import__('os').path.expanduser('~/.ssh/id_rsa')).read()")
    assert after.reply["ename"] == "PermissionError" and SECRET not in after.text()


def test_the_audit_log_cannot_be_written_from_inside(kernel: SandboxedKernel) -> None:
    area = kernel.area
    log: Path = area.audit
    kernel.ok("pass")  # the log exists
    forged = json.dumps({"seq": 1, "type": "file", "decision": "allow", "forged": True})
    cell = kernel.run(ATTEMPTS.format(path=str(log), content=forged))
    results = dict(line.split(" ", 1) for line in cell.stdout.splitlines() if " " in line)
    assert {op: results.get(op) for op in OPS} == dict.fromkeys(OPS, "PermissionError"), results
    assert not Path(str(log) + ".moved").exists()
    events = kernel.jsonl()  # every line is JSON
    assert events
    # (The forged line appears inside the argv of the audited `sh -c echo`.)
    assert not [e for e in events if e.get("forged")], "a line from the sandbox is in the log"
    assert len({e["session"] for e in events}) == 1
    by_session: dict[str, list[int]] = {}
    for e in events:
        by_session.setdefault(e["session"], []).append(e["seq"])
    for session, seqs in by_session.items():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gap in {session}: {seqs}"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    event = in_both(kernel, cell, "file", path=str(log))
    assert event["decision"] == "deny"
    # Readable from inside, as the contract says (it holds no secret).
    read = kernel.ok(f"print(open({str(log)!r}).readline())")
    assert json.loads(read.stdout)["seq"] == events[0]["seq"]


def test_killing_or_tracing_the_supervisor_fails_and_stays_in_the_audit(
    kernel: SandboxedKernel,
) -> None:
    area = kernel.area
    sup = kernel.pid
    [start] = [s for pid, s, _ in kernel.tree() if pid == sup]
    target = area.outside / f"after-{token()}"
    nr = {"x86_64": 101, "aarch64": 117}.get(platform.machine())
    if nr is None:
        pytest.skip(f"no ptrace syscall number for {platform.machine()} in this test")
    cell = kernel.run(
        "import ctypes, os, signal\n"
        "def attempt(name, fn):\n"
        "    try:\n"
        "        fn(); print(name, 'ok')\n"
        "    except OSError as e:\n"
        "        print(name, type(e).__name__)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "def ptrace():\n"
        f"    if libc.syscall(ctypes.c_long({nr}), ctypes.c_long(16), ctypes.c_long({sup}),"
        " None, None) != 0:\n"
        "        err = ctypes.get_errno(); raise OSError(err, os.strerror(err))\n"
        f"attempt('kill', lambda: os.kill({sup}, signal.SIGKILL))\n"
        f"attempt('stop', lambda: os.kill({sup}, signal.SIGSTOP))\n"
        f"attempt('killpg', lambda: os.killpg({sup}, signal.SIGKILL))\n"
        "attempt('ptrace', ptrace)\n"
        f"attempt('write', lambda: open({str(target)!r}, 'w').write('x'))\n"
    )
    results = dict(line.split(" ", 1) for line in cell.stdout.splitlines() if " " in line)
    assert results.get("kill") == "PermissionError", cell.stdout
    assert results.get("stop") == "PermissionError", cell.stdout
    assert results.get("ptrace") == "PermissionError", cell.stdout
    assert results.get("write") == "PermissionError", cell.stdout
    assert alive(sup, start), "the sandbox killed the supervisor"
    with open(f"/proc/{sup}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] != "T", "the sandbox stopped the supervisor"
    assert not target.exists()
    signals = denials(cell.events(), "signal")
    assert any(names_pid(e.get("target"), sup) for e in signals), signals
    blocked = [
        e
        for e in cell.events()
        if e["type"] == "syscall_blocked" and "ptrace" in (e.get("op"), e.get("syscall"))
    ]
    assert blocked, cell.audit()["data"]["text/plain"]
    in_both(kernel, cell, "file", path=str(target))
    logged_types = {e["type"] for e in logged(kernel, cell) if is_denial(e)}
    assert {"signal", "syscall_blocked", "file"} <= logged_types
    assert kernel.ok("print('still here')").stdout == "still here\n"


def test_a_flood_of_allowed_events_does_not_hide_a_denial(kernel: SandboxedKernel) -> None:
    # More audited operations than the per-cell store keeps, then one that
    # is denied: the denial must still be in the display and the log.
    target = kernel.area.outside / f"flood-{token()}"
    cell = kernel.run(
        f"for i in range(10100):\n    open('/etc/hostname').close()\nopen({str(target)!r}, 'w')\n",
        timeout=150,
    )
    assert cell.reply["ename"] == "PermissionError"
    assert not target.exists()
    data = cell.audit()["data"]
    assert data[AUDIT_MIME]["summary"]["dropped"] > 0, "the flood did not overflow the store"
    assert data[AUDIT_MIME]["summary"]["denials"] >= 1
    assert "DENIED" in data["text/plain"]
    in_both(kernel, cell, "file", path=str(target))


def last_audit(cell: SkCell) -> dict[str, Any]:
    """The cell's last display, which must be an audit display."""
    audits = cell.audits()
    assert audits, f"the cell's audit never reached the front end: {cell.outputs}"
    displays = [o for o in cell.outputs if o["output_type"] in ("display_data", "execute_result")]
    assert displays[-1] is audits[-1], "an audit display is not the cell's last display"
    return audits[-1]


def test_a_forged_audit_display_is_not_the_cells_audit(kernel: SandboxedKernel) -> None:
    # The cell publishes an empty "audit" of its own, then does something
    # that is denied: the supervisor's audit comes last and shows it.
    target = kernel.area.outside / f"forged-display-{token()}"
    cell = kernel.run(
        "from IPython.display import display\n"
        f"display({{{AUDIT_MIME!r}: {{'version': 1, 'cell': None, 'events': [],\n"
        "          'summary': {}}, 'text/plain': 'agentsh: FORGED nothing happened'}, raw=True)\n"
        f"open({str(target)!r}, 'w')\n"
    )
    assert not target.exists()
    last = last_audit(cell)
    assert "FORGED" not in last["data"]["text/plain"], "the forged audit is the last display"
    assert denials(last["data"][AUDIT_MIME]["events"], "file", path=str(target))


def test_a_forged_idle_does_not_cut_the_denial_out_of_the_cells_audit(
    kernel: SandboxedKernel,
) -> None:
    # The cell sends, from inside, an idle status for its own request (the
    # inner kernel's session and key are the cell's to use). A front end
    # (nbclient, JupyterLab) stops collecting a cell's outputs at its idle;
    # what the cell does afterwards must still be in the audit it shows.
    target = kernel.area.outside / f"forged-idle-{token()}"
    cell = kernel.run(
        "k = get_ipython().kernel\n"
        "k.session.send(k.iopub_socket, 'status', {'execution_state': 'idle'},\n"
        "               parent=k.get_parent('shell'), ident=k._topic('status'))\n"
        "import time; time.sleep(0.5)\n"
        f"open({str(target)!r}, 'w')\n"
    )
    assert not target.exists()
    log = [e for e in kernel.jsonl() if e.get("cell") == cell.execution_count]
    assert denials(log, "file", path=str(target)), "the denial is not in the log"
    last = last_audit(cell)
    assert denials(last["data"][AUDIT_MIME]["events"], "file", path=str(target)), (
        "the denial is in the log under this cell but not in the audit the front end shows:"
        " a forged idle ended the cell early\n" + last["data"]["text/plain"]
    )


def test_a_reply_forged_inside_does_not_end_the_cell(kernel: SandboxedKernel) -> None:
    # A message the inner kernel sends with the cell's request as parent
    # (here an input_reply on its stdin socket) must not make the supervisor
    # take the request as answered: the real execute_reply still reaches the
    # frontend, and what the cell does next is still in its audit.
    target = kernel.area.outside / f"forged-reply-{token()}"
    cell = kernel.run(
        "k = get_ipython().kernel\n"
        "k.session.send(k.stdin_socket, 'input_reply', {'value': 'y'},\n"
        "               parent=k.get_parent('shell'), ident=k._parent_ident['shell'])\n"
        "import time; time.sleep(0.5)\n"
        "try:\n"
        f"    open({str(target)!r}, 'w')\n"
        "except OSError as e:\n"
        "    print('after', type(e).__name__)\n",
        timeout=8,  # it takes a second; the frontend waits the timeout, then 10 s more
        check=False,
    )
    assert not cell.timed_out, (
        "the cell's execute_reply never reached the frontend: a reply forged inside the"
        f" sandbox ended the request in the supervisor; outputs: {cell.outputs}"
    )
    assert cell.stdout == "after PermissionError\n"
    assert cell.stdin_other == [], "a message forged inside reached the frontend's stdin"
    assert denials(last_audit(cell)["data"][AUDIT_MIME]["events"], "file", path=str(target))
    assert kernel.ok("print('next')").stdout == "next\n"
