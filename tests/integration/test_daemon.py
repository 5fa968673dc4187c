"""The supervisor daemon a notebook uses (SandboxClient): launches that the
caller spawns itself, attached by a process that is not their parent, with
the effects and the audit checked as root and as uid 65534."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Area, linux_only, read_audit, sandbox_env, write_policy

# The daemon runs its sandboxes in notify mode, with its full mechanism.
pytestmark = [linux_only, pytest.mark.needs_notify, pytest.mark.needs_full_notify]

DRIVER = Path(__file__).with_name("run_daemon.py")
RACE_CONNECT = Path(__file__).parents[1] / "escape" / "programs" / "race_connect.py"


def copy_in(area: Area, path: Path | str) -> Path:
    """A copy in the scratch area: uid 65534 may not read the checkout (CI
    clones under /root)."""
    src = Path(path)
    return area.write(src.name, src.read_text())


def drive(area: Area, scenario: str, policy: Path | None = None, **env: str) -> dict[str, Any]:
    driver = copy_in(area, DRIVER)
    argv = area.user.cmd([sys.executable, str(driver), scenario, str(area.ws), str(area.audit),
                          str(area.outside), str(policy or "-")])  # fmt: skip
    p = subprocess.run(argv, cwd=area.ws, env={**sandbox_env(area), **env},
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    assert out["daemon_gone"], "the daemon outlived close()"
    return out


def of(events: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]


def test_launches_are_enforced_audited_and_keep_their_status(area: Area) -> None:
    out = drive(area, "basic")
    ev = out["events"]
    # The denied write did not happen; output and status are the command's own.
    assert not (area.outside / "denied").exists()
    assert out["deny"][0] == 3 and out["deny"][1] == "out\n"
    assert "err" in out["deny"][2] and "Permission denied" in out["deny"][2]
    assert (area.ws / "allowed").read_text() == "ok\n" and out["allow"] == 0
    assert out["killed"] == -15  # a signal death stays a signal death for Popen
    assert out["system"] == 4 and not (area.outside / "by-os-system").exists()
    # The denials are audited, tagged with their cell and launch.
    (deny,) = of(ev, type="file", path=str(area.outside / "denied"))
    assert deny["decision"] == "deny" and deny["cell"] == 1 and deny["cell_id"] == "id1"
    assert of(ev, type="file", path=str(area.outside / "by-os-system"), decision="deny", cell=4)
    ends = {e["cell"]: e["exit_code"] for e in of(ev, type="sandbox", op="end")}
    assert ends == {1: 3, 2: 0, 3: 128 + 15, 4: 4}
    assert out["running"] == []
    # The JSONL log holds the same events, and the stop; the client got
    # every one of them, in order (they travel in batches).
    log = read_audit(area.audit)
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert ev == log
    assert of(log, type="file", path=str(area.outside / "denied"), decision="deny")
    assert log[-1]["type"] == "sandbox" and log[-1]["op"] == "stop"


def test_hidden_variables_are_filtered_and_audited_at_every_launch(area: Area) -> None:
    out = drive(area, "hidden")
    assert out["seen"] == ["unset", "unset"]
    starts = of(out["events"], type="sandbox", op="start")
    assert [s["cell"] for s in starts] == [1, 2]
    for start in starts:
        assert "AGENTSH_TEST_TOKEN" in start["hidden_env"], start


@pytest.mark.slow
def test_concurrent_launches_from_threads(area: Area) -> None:
    out = drive(area, "threads")
    assert out["codes"] == [0, 1, 2, 3, 4, 5]
    assert not list(area.outside.iterdir())
    denied = {e["path"] for e in of(out["events"], type="file", decision="deny")}
    assert denied == {str(area.outside / f"t{i}") for i in range(6)}


def test_background_child_stays_traced_until_close(area: Area) -> None:
    out = drive(area, "background")
    assert out["child_alive"] and out["tracer"] == out["daemon"]
    assert out["child_gone_after_close"]
    # The launch ended when its root did; the child was still running then.
    (end,) = of(out["events"], type="sandbox", op="end")
    assert end["exit_code"] == 0 and end["running"] == 1


def test_unknown_launch_token_is_refused_and_audited(area: Area) -> None:
    out = drive(area, "token")
    assert out["reply"].startswith("E") and out["malformed_reply"].startswith("E")
    # At once: no registration was on its way (the handoff timeout is 60 s).
    assert out["refused_after"] < 30, out["refused_after"]
    assert out["drained_reply"].startswith("E") and out["forgotten_reply"].startswith("E")
    assert len(of(out["events"], type="sandbox", op="error", decision="deny")) == 4
    assert not of(out["events"], type="sandbox", op="start")


def test_a_hello_before_its_registration_waits_for_it(area: Area) -> None:
    out = drive(area, "late-registration")
    assert out["backlog_unread"], "the registration was handled before the hello: no race"
    assert out["reply"] == "C"  # the launch options: accepted, not refused
    (start,) = of(out["events"], type="sandbox", op="start", cell=9)
    assert start["argv"] == ["late"]
    assert not of(out["events"], type="sandbox", op="error", decision="deny")
    # It sent no listener: the launch failed and says so, and the daemon
    # killed it (it had not run the command and must not).
    assert of(out["events"], type="sandbox", op="end", cell=9, exit_code=125)
    assert out["late_status"] == signal.SIGKILL


def test_sandbox_cannot_talk_to_the_daemon(area: Area) -> None:
    out = drive(area, "protected")
    assert out["child"].startswith("refused")
    (d,) = of(out["events"], type="unix", op="connect", decision="deny")
    assert d["rule"] == "protected:agentsh-state"


APPROVE = """\
  - name: secret
    paths: ["{path}"]
    operations: [read]
    decision: approve
"""


def _approve_policy(area: Area) -> Path:
    area.write("outside/secret", "s3cret\n")
    text = (Path(write_policy(area)).read_text()).replace(
        "file_rules:\n", "file_rules:\n" + APPROVE.format(path=area.outside / "secret"), 1
    )
    return area.write("policy.yaml", text)


def test_approvals_are_asked_through_the_client(area: Area) -> None:
    out = drive(area, "approve", _approve_policy(area))
    assert out["first"] == "s3cret\n" and out["second"] == ""
    assert len(out["asked"]) == 2 and "secret" in out["asked"][0]
    reads = of(out["events"], type="file", path=str(area.outside / "secret"))
    assert [(e["decision"], e["approval"]) for e in reads] == [
        ("allow", "granted by the test"),
        ("deny", "denied by the test"),
    ]


def test_approvals_without_an_approver_are_denied(area: Area) -> None:
    out = drive(area, "approve-headless", _approve_policy(area))
    assert out["first"] == "" and out["second"] == ""
    reads = of(out["events"], type="file", path=str(area.outside / "secret"))
    assert reads and all(e["decision"] == "deny" for e in reads)
    assert all("no approver available" in e["approval"] for e in reads)


def test_wrapper_that_cannot_reach_a_daemon_runs_nothing(area: Area, tmp_path: Path) -> None:
    from agentsh_ipy.supervisor._launch import WRAPPER

    target = area.outside / "never"
    argv = area.user.cmd([sys.executable, "-I", "-S", str(copy_in(area, WRAPPER)), "--connect",
                          str(area.root / "no-such-socket"), "--token", "x", "--",
                          "sh", "-c", f"echo x > {target}"])  # fmt: skip
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 125
    assert "cannot reach the supervisor" in p.stderr and "not run" in p.stderr
    assert not target.exists()


def test_a_connect_whose_address_is_flipped_reaches_only_what_was_decided(area: Area) -> None:
    """A notebook's launches get the same race-safe connect as `exec`: the
    supervisor connects a copy of the socket to the address it decided on,
    so a thread flipping the address between the sandbox's own server and
    an outside listener never reaches the outside one."""
    program = copy_in(area, RACE_CONNECT)
    outside = socket.create_server(("127.0.0.1", 0), backlog=512)
    outside.setblocking(False)
    try:
        port = outside.getsockname()[1]
        argv = [sys.executable, "-I", str(program), str(port), "400"]
        out = drive(area, "commands", AGENTSH_TEST_ARGVS=json.dumps([argv]))
        [(status, stdout, stderr)] = out["commands"]
        assert status == 42, stderr
        counts = dict(line.split(": ") for line in stdout.splitlines())
        assert counts["outside"] == "0", stdout
        assert int(counts["own"]) > 0 and int(counts["refused"]) > 0, stdout
        with pytest.raises(BlockingIOError):
            outside.accept()
    finally:
        outside.close()
    refused = of(out["events"], type="net", op="connect", port=port, decision="deny")
    assert refused and all(e["rule"] == "host-local" for e in refused)


SERVE_IN_BACKGROUND = """\
import os, socket, sys
s = socket.create_server(("127.0.0.1", 0))
with open(sys.argv[1], "w") as f:
    f.write(str(s.getsockname()[1]))
if os.fork() == 0:  # the server outlives this launch, in the background
    null = os.open(os.devnull, os.O_RDWR)  # (the launch's pipes close without it)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    s.settimeout(30)
    conn, _ = s.accept()
    conn.sendall(b"hello from cell 1")
    conn.close()
    os._exit(0)
"""
CONNECT_TO_IT = """\
import socket, sys
port = int(open(sys.argv[1]).read())
with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
    print(c.recv(100).decode())
"""


def test_a_server_one_cell_started_is_the_next_cells_own(area: Area) -> None:
    """All launches of one notebook session are one sandbox: a loopback
    server left running by one launch is reachable from the next, as the
    sandbox's own (while an outside one is not: test_host_services)."""
    portfile = area.ws / "port"
    argvs = [
        [sys.executable, "-c", SERVE_IN_BACKGROUND, str(portfile)],
        [sys.executable, "-c", CONNECT_TO_IT, str(portfile)],
    ]
    out = drive(area, "commands", AGENTSH_TEST_ARGVS=json.dumps(argvs))
    (serve, _, err1), (connect, stdout, err2) = out["commands"]
    assert serve == 0, err1
    assert (connect, stdout.strip()) == (0, "hello from cell 1"), err2
    port = int(portfile.read_text())
    [event] = of(out["events"], type="net", op="connect", port=port)
    assert (event["decision"], event["rule"], event["cell"]) == ("allow", "own-sandbox", 2)
