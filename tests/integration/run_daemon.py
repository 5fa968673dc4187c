"""Drive a supervisor daemon through SandboxClient, as a notebook would;
print what happened as JSON. Run as the test's user (root or uid 65534).

    run_daemon.py SCENARIO WORKSPACE AUDIT OUTSIDE [POLICY|-]
"""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import termios
import threading
import time

from agentsh_ipy.supervisor import SandboxClient, Timeouts


def daemon_has_unread(client: SandboxClient) -> bool:
    """Is some of what the client sent still unread by the daemon (SIOCOUTQ:
    a unix socket's sent messages count until the peer reads them)?"""
    buf = fcntl.ioctl(client._sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
    return int.from_bytes(buf, sys.byteorder) > 0


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts: it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def main() -> None:
    scenario, ws, audit, outside, policy = sys.argv[1:6]
    events: list[dict[str, object]] = []
    asked: list[str] = []
    answers = [True, False]

    def ask(question: str, timeout: float) -> tuple[bool, str]:
        asked.append(question)
        granted = answers.pop(0)
        return granted, "granted by the test" if granted else "denied by the test"

    client = SandboxClient.start(
        policy_path=None if policy == "-" else policy,
        workspace=ws,
        audit_path=audit,
        on_event=events.append,
        ask=None if scenario == "approve-headless" else ask,
        # An unknown token is refused at once, not after the handoff timeout.
        timeouts=Timeouts(handoff=60.0) if scenario == "token" else None,
    )
    out: dict[str, object] = {"daemon": client.pid}

    def run(argv: list[str], cell: int, **kw: object) -> subprocess.CompletedProcess[str]:
        w = client.wrap(argv, cell=cell, cell_id=f"id{cell}")
        return subprocess.run(w.argv, env=w.env, capture_output=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]

    if scenario == "basic":
        deny = run(["sh", "-c", f"echo x > {outside}/denied; echo out; echo err >&2; exit 3"], 1)
        allow = run(["sh", "-c", f"echo ok > {ws}/allowed"], 2)
        killed = run(["sh", "-c", "kill -TERM $$"], 3)
        w = client.wrap(["sh", "-c", f"echo x > {outside}/by-os-system; exit 4"], cell=4)
        status = os.system("exec " + " ".join(f"'{a}'" for a in w.argv))
        out.update(
            deny=[deny.returncode, deny.stdout, deny.stderr],
            allow=allow.returncode,
            killed=killed.returncode,
            system=os.waitstatus_to_exitcode(status),
            settled=client.settle([]),
        )
    elif scenario == "hidden":
        # The same environment twice: the second launch uses the names the
        # client learnt from the first; both are filtered and audited.
        os.environ["AGENTSH_TEST_TOKEN"] = "tok-secret"
        script = "echo ${AGENTSH_TEST_TOKEN:-unset}"
        out["seen"] = [run(["sh", "-c", script], cell).stdout.strip() for cell in (1, 2)]
    elif scenario == "background":
        p = run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], 1)
        child = int(p.stdout)
        with open(f"/proc/{child}/status") as f:
            tracer = next(ln.split()[1] for ln in f if ln.startswith("TracerPid:"))
        out.update(child=child, tracer=int(tracer), child_alive=not gone(child))
    elif scenario == "token":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(client._socket_path)
        t0 = time.monotonic()
        s.send(b"H" + os.urandom(16).hex().encode())  # well-formed, never registered
        out["reply"] = s.recv(100).decode()
        out["refused_after"] = time.monotonic() - t0
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(client._socket_path)
        s.send(b"Hnot-a-token")
        out["malformed_reply"] = s.recv(100).decode()
        # A launch the kernel could not start is dropped: its token is refused.
        w = client.wrap(["true"], cell=5, inline=True)
        client.forget(w.launch)
        # The forget travels on the control socket, the hello on another: an
        # unknown token is refused only once the control socket has nothing
        # unread or in hand, so this refusal shows the forget was handled.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(client._socket_path)
        s.send(b"H" + os.urandom(16).hex().encode())
        out["drained_reply"] = s.recv(100).decode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(client._socket_path)
        s.send(b"H" + w.launch.encode())
        out["forgotten_reply"] = s.recv(100).decode()
    elif scenario == "late-registration":
        # The wrapper's hello may arrive while the kernel's registration of its
        # token is still unread on the control socket (here: behind other
        # registrations whose 15,000 variable names each take the daemon
        # ~0.1 s to filter): the daemon waits for it instead of refusing.
        # A forked child plays the wrapper (the daemon kills a wrapper whose
        # handshake fails): it reports the reply and closes, sending no listener.
        token = os.urandom(16).hex()
        names = [f"V{i}" for i in range(15000)]
        for _ in range(4):
            client._send({"op": "wrap", "launch": os.urandom(16).hex(), "argv": ["unused"],
                          "env_names": names, "cell": None, "cell_id": None})  # fmt: skip
        client._send({"op": "wrap", "launch": token, "argv": ["late"], "env_names": [],
                      "cell": 9, "cell_id": None})  # fmt: skip
        out["backlog_unread"] = daemon_has_unread(client)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # (the daemon knows its wrapper by the pid that connected)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(client._socket_path)
            s.send(b"H" + token.encode())
            s.settimeout(10)
            os.write(w, s.recv(65536)[:1])
            s.close()
            time.sleep(30)
            os._exit(0)
        out["reply"] = os.read(r, 1).decode()
        for _ in range(500):  # the daemon's SIGKILL, or ours after 5 s
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGTERM)
            status = os.waitpid(pid, 0)[1]
        out["late_status"] = status
    elif scenario == "protected":
        code = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
            "try:\n    s.connect(sys.argv[1]); print('connected')\n"
            "except OSError as e:\n    print('refused', e.errno)\n"
        )
        p = run([sys.executable, "-c", code, client._socket_path], 1)
        out["child"] = p.stdout.strip()
    elif scenario in ("approve", "approve-headless"):
        first = run(["sh", "-c", f"cat {outside}/secret"], 1)
        second = run(["sh", "-c", f"cat {outside}/secret"], 2)
        out.update(first=first.stdout, second=second.stdout, asked=asked)
    elif scenario == "commands":
        # One launch per command in $AGENTSH_TEST_ARGVS (JSON), one cell each.
        argvs = json.loads(os.environ["AGENTSH_TEST_ARGVS"])
        ran = [run(argv, cell, timeout=60) for cell, argv in enumerate(argvs, 1)]
        out["commands"] = [[p.returncode, p.stdout, p.stderr] for p in ran]
    elif scenario == "threads":
        results: list[int] = []

        def worker(i: int) -> None:
            results.append(run(["sh", "-c", f"echo {i} > {outside}/t{i}; exit {i}"], 1).returncode)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["codes"] = sorted(results)
    launches = sorted({str(e["launch"]) for e in events if "launch" in e})
    out["running"] = client.settle(launches, timeout=5.0)
    client.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not gone(client.pid):
        time.sleep(0.05)
    out["daemon_gone"] = gone(client.pid)
    if "child" in out and isinstance(out["child"], int):
        out["child_gone_after_close"] = gone(out["child"])
    out["events"] = events
    print(json.dumps(out))


if __name__ == "__main__":
    main()
