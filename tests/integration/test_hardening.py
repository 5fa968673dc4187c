"""Signals inside the tree, limits, soft_delete and the trash, as root and
as uid 65534 (the escape suite covers the hostile side)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.conftest import (
    TEST_POLICY,
    Area,
    linux_only,
    read_audit,
    run_cli,
    sandbox,
    sandbox_env,
    write_policy,
)

pytestmark = linux_only


def test_the_tree_can_signal_itself_and_its_process_group(area: Area) -> None:
    script = (
        "sleep 30 & pid=$!; kill -TERM $pid; wait $pid; echo child=$?; "
        "trap 'echo got-usr1' USR1; kill -USR1 0; echo group-ok"
    )
    r = sandbox(area, ["sh", "-c", script], policy=write_policy(area))
    assert r.returncode == 0, r.stderr
    assert "child=143" in r.stdout
    assert "got-usr1" in r.stdout and "group-ok" in r.stdout
    sigs = r.of_type("signal")
    assert {(e["signal"], e["decision"]) for e in sigs} >= {(15, "allow"), (10, "allow")}
    group = next(e for e in sigs if e["target"] == 0)
    # The sandbox has a process group of its own: the supervisor is not in it.
    assert group["decision"] == "allow" and group["members"] >= 1
    assert "outside_members" not in group


def test_ps_can_list_processes_but_not_read_outsiders_secrets(area: Area) -> None:
    script = (
        "import os\n"
        "sup = os.getppid()\n"
        "print('cmdline', open(f'/proc/{sup}/cmdline','rb').read().count(b'agentsh') > 0)\n"
        "for entry in ('environ', 'maps'):\n"
        "    try:\n"
        "        open(f'/proc/{sup}/{entry}','rb').read(); print(entry, 'READ')\n"
        "    except PermissionError:\n"
        "        print(entry, 'denied')\n"
    )
    r = sandbox(area, [sys.executable, "-c", script])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["cmdline True", "environ denied", "maps denied"]
    denied = {e["path"].rsplit("/", 1)[1] for e in r.denials() if e["rule"] == "proc-outside"}
    assert denied == {"environ", "maps"}


def test_wall_clock_limit_kills_the_tree(area: Area) -> None:
    policy = area.write("p.yaml", TEST_POLICY + "limits:\n  wall_clock: 1s\n")
    r = sandbox(area, ["sh", "-c", "sleep 30 & sleep 30; echo not-reached"], policy=policy)
    assert r.returncode == 128 + 9
    assert "not-reached" not in r.stdout
    assert "wall-clock limit of 1s" in r.stderr
    assert r.seconds < 15
    [ev] = [e for e in r.events if e.get("op") == "limit"]
    assert ev["rule"] == "limits.wall_clock" and ev["decision"] == "deny"
    assert len(r.of_type("process_exit")) == len(r.of_type("process_start")) >= 2


def test_soft_delete_moves_to_trash_and_restores(area: Area) -> None:
    rule = (
        "  - {name: keep-deletes, paths: ['${WORKSPACE}/**'], operations: [delete],"
        " decision: soft_delete}\n"
    )
    policy = area.write("p.yaml", TEST_POLICY.replace("file_rules:\n", "file_rules:\n" + rule, 1))
    victim = area.write("ws/important.txt", "precious\n")
    r = sandbox(area, ["sh", "-c", "rm important.txt && echo rm-ok; ls"], policy=policy)
    assert r.returncode == 0, r.stderr
    assert "rm-ok" in r.stdout
    assert not victim.exists()
    [ev] = [e for e in r.of_type("file") if e["decision"] == "soft_delete"]
    assert ev["path"] == str(victim) and ev["op"] == "delete"
    listed = run_cli(area, ["trash", "list", "--workspace", str(area.ws)])
    assert ev["trash"] in listed.stdout and str(victim) in listed.stdout
    # The sandbox itself cannot empty the trash.
    r2 = sandbox(area, ["sh", "-c", "rm -rf .agentsh-trash; echo $?"], policy=policy)
    assert (area.ws / ".agentsh-trash" / ev["trash"] / "item").exists()
    assert any(e["rule"] == "protected:agentsh-state" for e in r2.denials())
    restored = run_cli(area, ["trash", "restore", ev["trash"], "--workspace", str(area.ws)])
    assert restored.returncode == 0, restored.stderr
    assert victim.read_text() == "precious\n"


def test_redirect_runs_the_other_command_with_its_message(area: Area) -> None:
    rule = (
        "command_rules:\n  - name: no-curl\n    commands: [curl, wget]\n    decision: redirect\n"
        "    redirect_to: [/bin/echo, curl is not available here]\n"
        "    message: 'agentsh: downloads are redirected'\n"
    )
    r = sandbox(
        area, ["sh", "-c", "curl http://127.0.0.1:9/x; echo rc=$?"], policy=write_policy(area, rule)
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "curl is not available here\nrc=0\n"
    assert "agentsh: downloads are redirected" in r.stderr
    execs = r.of_type("exec")
    curl = next(e for e in execs if e["argv"][0] == "curl")
    assert (curl["decision"], curl["rule"]) == ("redirect", "no-curl")
    assert curl["redirect_to"] == ["/bin/echo", "curl is not available here"]
    assert any(e["argv"] == ["/bin/echo", "curl is not available here"] for e in execs)
    # curl itself never ran: no process ever exec'd it successfully afterwards.
    assert not any(
        e.get("resolved", e["path"]).endswith("/curl") and e["decision"] == "allow" for e in execs
    )


def test_memory_limit_caps_each_process(area: Area) -> None:
    policy = area.write("p.yaml", TEST_POLICY + "limits:\n  memory: 256MiB\n")
    script = (
        "import resource\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[0])\n"
        "try:\n"
        "    b = bytearray(512 * 1024 * 1024)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    r = sandbox(area, [sys.executable, "-c", script], policy=policy)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(256 * 1024 * 1024), "refused"]


def test_kernel_whose_channels_cannot_be_bound_stops_its_sandbox(area: Area) -> None:
    """The proxy binds the frontend's channels while the sandboxed kernel
    starts; when a port is taken, the kernel must not be left running:
    the supervisor stops the sandbox and exits 125 naming the cause."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    free = []
    for _ in range(4):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free.append(s.getsockname()[1])
    info = {"shell_port": taken.getsockname()[1], "iopub_port": free[0], "stdin_port": free[1],
            "control_port": free[2], "hb_port": free[3], "ip": "127.0.0.1", "key": "k" * 32,
            "transport": "tcp", "signature_scheme": "hmac-sha256"}  # fmt: skip
    conn = area.write("ws/conn.json", json.dumps(info), mode=0o600)
    argv = area.user.cmd([sys.executable, "-m", "agentsh_ipy.kernel", "-f", str(conn),
                          "--audit", str(area.audit), "--workspace", str(area.ws)])  # fmt: skip
    try:
        p = subprocess.run(argv, cwd=area.ws, env=sandbox_env(area), capture_output=True,
                           text=True, timeout=60, start_new_session=True)  # fmt: skip
    finally:
        taken.close()
    assert p.returncode == 125, (p.returncode, p.stderr)
    assert "cannot bind the kernel's channels" in p.stderr
    events = read_audit(area.audit)
    end = events[-1]
    assert end["op"] == "end" and "cannot bind the kernel's channels" in end["reason"]
    assert not [e for e in events if e.get("op") == "cell"], "a cell ran"
    for e in events:
        if e["type"] == "process_start":  # whatever started was killed and reaped
            assert not os.path.exists(f"/proc/{e['pid']}"), e
