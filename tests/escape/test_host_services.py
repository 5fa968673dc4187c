"""The host's own services: a sandbox reaches only the servers it started.

Each test runs as root and as uid 65534, in notify and in ptrace mode, and
checks the effect (what the listeners received) and the audit (a denial
naming the address or socket, with the reason a person reads). Every
outside listener is also reached once WITHOUT the sandbox, so a refusal is
the sandbox's doing and not a listener that was never there.

All traffic stays on loopback, except the one test that gives lo a second
address inside a network namespace of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy.policy import NOT_OWN, default_policy_text
from tests.conftest import (
    BLOCKED_MODE,
    IS_ROOT,
    Run,
    linux_only,
    read_audit,
    sandbox,
    write_policy,
)
from tests.escape.conftest import Ctx, _has_ipv6_loopback, program_copy

pytestmark = linux_only

DONE = 42


def program(ctx: Ctx, name: str, *argv: str) -> list[str]:
    """The program, from a copy in the scratch area."""
    return [sys.executable, "-I", str(program_copy(ctx.area, name)), *argv]


def exec_argv(ctx: Ctx, mode: str, audit: Path, policy: Path | None = None) -> list[str]:
    """`agentsh-ipy exec ... --` for a run the test starts itself."""
    argv = [sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(ctx.ws)]
    argv += ["--audit", str(audit), "--mode", mode]
    return [*argv, *(["--policy", str(policy)] if policy else []), "--"]


def start(ctx: Ctx, mode: str, audit: Path, argv: list[str]) -> subprocess.Popen[str]:
    """A sandboxed program the test talks to while it runs."""
    return subprocess.Popen(
        ctx.user.cmd([*exec_argv(ctx, mode, audit), *argv]),
        cwd=ctx.ws,
        env=ctx.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, p: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 30
    while not path.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{what}: {p.communicate(timeout=5)}"


def results(out: str) -> dict[str, str]:
    """'LABEL: ok ...' / 'LABEL: ERRNO' lines."""
    got = {}
    for line in out.splitlines():
        label, sep, rest = line.partition(": ")
        if sep and rest:
            got[label] = rest.split()[0]
    return got


def completed(run: Run) -> None:
    assert run.returncode == DONE, f"status {run.returncode}:\n{run.stdout}\n{run.stderr}"
    assert any(e.get("op") == "end" for e in run.of_type("sandbox")), "no end event"


def boxed(
    ctx: Ctx, mode: str, argv: list[str], policy: Path | None = None, timeout: float = 60
) -> Run:
    """The program through `agentsh-ipy exec --mode MODE`, run to its end."""
    run = sandbox(ctx.area, argv, policy=policy, extra=["--mode", mode], env=ctx.env(),
                  timeout=timeout)  # fmt: skip
    completed(run)
    return run


def unsandboxed(ctx: Ctx, argv: list[str]) -> dict[str, str]:
    p = subprocess.run(
        ctx.user.cmd(argv),
        cwd=ctx.ws,
        env=ctx.env(),
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert p.returncode == DONE, f"the control run failed on its own:\n{p.stdout}\n{p.stderr}"
    return results(p.stdout)


def denied(events: list[dict[str, Any]], type_: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e.get("type") == type_
        and e.get("decision") == "deny"
        and all(e.get(k) == v for k, v in match.items())
    ]


def builtin_with(rules: str) -> str:
    """The built-in policy with these network rules first."""
    text = default_policy_text()
    anchor = "\nnetwork_rules:\n"
    assert text.count(anchor) == 1, "the built-in policy changed shape"
    return text.replace(anchor, anchor + rules)


# ---------------------------------------------------------------------------


def test_the_sandboxs_own_servers_keep_working(world: Ctx, mode: str) -> None:
    """TCP and UDP on 127.0.0.1 and ::1 bound to port 0, a unix socket in
    the workspace and an abstract one, each reached from the same process
    and from a child, under the built-in policy."""
    name = f"agentsh-own-{uuid.uuid4().hex[:12]}"
    run = boxed(world, mode, program(world, "own_servers.py", name), timeout=90)
    got = results(run.stdout)
    kinds = ["tcp4", "udp4", "unix-path", "unix-abstract"]
    if _has_ipv6_loopback():
        kinds += ["tcp6", "udp6"]
    for kind in kinds:
        for label in (f"server-{kind}", f"{kind}-self", f"{kind}-child"):
            assert got.get(label) == "ok", f"{label}: {got.get(label)}\n{run.stdout}\n{run.stderr}"
    # Each reach of an own server is allowed by the rule that says why.
    for kind, type_, op in (("tcp4", "net", "connect"), ("udp4", "net", "send")):
        port = int(run.stdout.split(f"port-{kind}: ")[1].split()[0])
        own = [
            e
            for e in run.events
            if e.get("type") == type_
            and e.get("op") == op
            and e.get("port") == port
            and e.get("decision") == "allow"
        ]
        assert own and all(e.get("rule") == "own-sandbox" for e in own), own
    unix = [e for e in run.of_type("unix") if e.get("op") == "connect"]
    paths = {e.get("path") for e in unix if e.get("rule") == "own-sandbox"}
    assert {str(world.ws / "own.sock"), "@" + name} <= paths, unix
    assert not run.denials("net", "unix"), run.denials("net", "unix")


@pytest.mark.slow
def test_a_second_sandbox_cannot_reach_the_firsts_servers(world: Ctx, mode: str) -> None:
    """Sandbox A serves TCP (v4, v6), UDP, a unix path and an abstract name;
    sandbox B, another session, is refused every one of them, while the
    same attempts made without a sandbox get through."""
    ports, stop = world.ws / "ports.json", world.ws / "stop"
    abstract = f"agentsh-first-{uuid.uuid4().hex[:12]}"
    audit_a = world.area.root / "audit" / "first.jsonl"
    serve = program(world, "local_serve.py", str(ports), str(stop), abstract)
    first = start(world, mode, audit_a, serve)
    try:
        wait_for(ports, first, "the first sandbox never served")
        where = json.loads(ports.read_text())
        targets = [
            f"tcp4=tcp/127.0.0.1/{where['tcp4']}",
            f"udp4=udp/127.0.0.1/{where['udp4']}",
            f"unix-path=unix/{where['unix-path']}",
            f"unix-abstract=unix/{where['unix-abstract']}",
        ]
        if _has_ipv6_loopback():
            targets.append(f"tcp6=tcp/::1/{where['tcp6']}")
        second = boxed(world, mode, program(world, "local_connect.py", *targets))
        tried = results(second.stdout)
        for target in targets:
            label = target.split("=")[0]
            assert tried.get(label) not in (None, "ok"), f"{label}: {tried.get(label)}"
        # the control: the same attempts without a sandbox
        control = unsandboxed(world, program(world, "local_connect.py", *targets))
        assert all(v == "ok" for v in control.values()), control
    finally:
        stop.touch()
        out, err = first.communicate(timeout=30)
    assert first.returncode == DONE, f"the first sandbox: {first.returncode}\n{out}\n{err}"
    received = json.loads(out.split("received: ", 1)[1].splitlines()[0])
    expect = {label.split("=")[0]: 1 for label in targets}
    assert {k: received[k] for k in expect} == expect, (
        f"the first sandbox's servers got more than the control's attempts: {received}"
    )
    # The audit names each refused destination and why.
    events = second.events
    assert denied(events, "net", op="connect", addr="127.0.0.1", port=where["tcp4"],
                  rule="host-local", message=NOT_OWN)  # fmt: skip
    assert denied(events, "net", op="send", addr="127.0.0.1", port=where["udp4"],
                  rule="host-local")  # fmt: skip
    assert denied(events, "unix", op="connect", path=where["unix-path"], message=NOT_OWN)
    assert denied(events, "unix", op="connect", path=where["unix-abstract"], message=NOT_OWN)
    # The first sandbox's own log shows no connection from the second.
    assert read_audit(audit_a), "the first sandbox wrote no audit"


def test_a_rule_naming_a_local_port_opens_exactly_that_port(world: Ctx, mode: str) -> None:
    """127.0.0.1:PORT named by a rule is reachable; another port on the same
    address is not, even with a rule allowing 0.0.0.0/0 and ::/0 after it."""
    named, other = world.tcp("named"), world.tcp("other")
    udp = world.udp("other")
    policy = write_policy(
        world.area,
        "network_rules:\n"
        f"  - {{name: dev-db, cidrs: [127.0.0.1/32], ports: [{named.port}], decision: allow}}\n"
        "  - {name: anywhere, cidrs: ['0.0.0.0/0', '::/0'], decision: allow}\n",
    )
    targets = [
        f"named=tcp/127.0.0.1/{named.port}",
        f"other=tcp/127.0.0.1/{other.port}",
        f"other-mapped=tcp/::ffff:127.0.0.1/{other.port}",
        f"other-any=tcp/0.0.0.0/{other.port}",
        f"udp=udp/127.0.0.1/{udp.port}",
    ]
    run = boxed(world, mode, program(world, "local_connect.py", *targets), policy=policy)
    got = results(run.stdout)
    assert got["named"] == "ok", run.stdout
    for label in ("other", "other-mapped", "other-any", "udp"):
        assert got[label] != "ok", f"{label} got through:\n{run.stdout}"
    assert named.connections() == 1
    assert other.connections() == 0, "the unnamed port got a connection"
    assert udp.datagrams() == [], "the unnamed UDP port received data"
    allowed = [e for e in run.of_type("net") if e.get("port") == named.port]
    assert allowed and all((e["decision"], e["rule"]) == ("allow", "dev-db") for e in allowed), (
        allowed
    )
    refusals = denied(run.events, "net", port=other.port, rule="host-local", message=NOT_OWN)
    assert {e["op"] for e in refusals} == {"connect"} and len(refusals) >= 3, run.of_type("net")
    assert denied(run.events, "net", op="send", port=udp.port, rule="host-local")
    # the control: both ports answer without the sandbox
    control = unsandboxed(world, program(world, "local_connect.py", *targets[:2]))
    assert control == {"named": "ok", "other": "ok"}, control


def test_outside_unix_sockets_are_refused(world: Ctx, mode: str) -> None:
    """A pathname and an abstract socket of a process outside, stream and
    datagram, no rule naming them: refused under the built-in policy."""
    abstract = f"agentsh-outside-{uuid.uuid4().hex[:12]}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        listener.bind("\0" + abstract)
        listener.listen(8)
        listener.setblocking(False)
        dgram.bind("\0" + abstract + "-dgram")
        dgram.setblocking(False)
        path = world.unix("outside")
        targets = [
            f"abstract=unix/@{abstract}",
            f"abstract-dgram=unixdgram/@{abstract}-dgram",
            f"path=unix/{path.path}",
        ]
        run = boxed(world, mode, program(world, "local_connect.py", *targets))
        got = results(run.stdout)
        for label in ("abstract", "abstract-dgram", "path"):
            assert got[label] != "ok", f"{label} got through:\n{run.stdout}"
        accepted = 0
        while True:
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                break
            accepted += 1
        assert accepted == 0, "the abstract listener got a connection"
        with pytest.raises(BlockingIOError):
            dgram.recv(1024)
        assert path.connections() == 0, "the pathname listener got a connection"
        events = run.events
        assert denied(events, "unix", op="connect", path="@" + abstract, message=NOT_OWN)
        assert denied(events, "unix", op="send", path=f"@{abstract}-dgram", message=NOT_OWN)
        assert denied(events, "unix", op="connect", path=str(path.path), message=NOT_OWN)
        # the control: reachable without the sandbox
        control = unsandboxed(world, program(world, "local_connect.py", *targets))
        assert all(v == "ok" for v in control.values()), control
    finally:
        listener.close()
        dgram.close()


def test_a_swapped_unix_socket_is_not_the_sandboxs_own(world: Ctx, mode: str) -> None:
    """The sandbox binds own.sock; the test puts an outside socket under
    that name (a hard link renamed over it) and under two names the sandbox
    never bound: only the sandbox's own socket is reached."""
    ready, placed = world.ws / "ready", world.area.root / "placed"
    outside = world.unix("swapped")
    argv = program(world, "unix_swap.py", str(ready), str(placed))
    p = start(world, mode, world.area.audit, argv)
    try:
        wait_for(ready, p, "the program never got ready")
        ws = world.ws
        os.link(outside.path, ws / "linked.sock")
        os.link(outside.path, ws / "tmp.sock")
        os.rename(ws / "tmp.sock", ws / "own.sock")
        os.link(outside.path, ws / "tmp2.sock")
        os.rename(ws / "tmp2.sock", ws / "renamed.sock")
        placed.touch()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    assert p.returncode == DONE, f"status {p.returncode}:\n{out}\n{err}"
    got = results(out)
    assert got["own-before"] == "ok", out
    assert got["placed"] == "ok", out
    for label in ("own-replaced", "linked", "renamed"):
        assert got[label] != "ok", f"{label} reached the outside socket:\n{out}"
    assert outside.connections() == 0, "the outside socket got a connection"
    events = read_audit(world.area.audit)
    for name in ("own.sock", "linked.sock", "renamed.sock"):
        assert denied(events, "unix", op="connect", path=str(world.ws / name)), name
    # the control: each name reaches the outside socket without the sandbox
    outside_names = [f"{n}=unix/{world.ws / n}.sock" for n in ("linked", "renamed")]
    assert unsandboxed(world, program(world, "local_connect.py", *outside_names)) == {
        "linked": "ok",
        "renamed": "ok",
    }


NETNS_ADDR = "192.0.2.1"  # TEST-NET-1, on lo of the test's own network namespace


@pytest.mark.slow
def test_a_local_address_that_is_not_loopback_is_closed(world: Ctx, mode: str) -> None:
    """In a network namespace of the test's own, lo also carries 192.0.2.1
    (this host's address there, not loopback). A listener on it is refused
    like loopback, even under a rule allowing 0.0.0.0/0; the same attempt
    without the sandbox gets through. Nothing leaves the namespace."""
    if not IS_ROOT:
        pytest.skip("the network namespace is made by root; the nobody variant drops inside it")
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.fail("ip (iproute2) and unshare (util-linux) are required; .ci/run installs them")
    policy = write_policy(
        world.area, "network_rules:\n  - {name: anywhere, cidrs: ['0.0.0.0/0'], decision: allow}\n"
    )
    connect = program(world, "local_connect.py")
    cli = exec_argv(world, mode, world.area.audit, policy)
    cfg = {
        "addr": NETNS_ADDR,
        "control": world.user.cmd(connect),
        "sandbox": world.user.cmd([*cli, *connect]),
        "cwd": str(world.ws),
        "timeout": 60,
    }
    p = subprocess.run(
        ["unshare", "--net", "--", sys.executable, "-I",
         *program(world, "netns_listen.py")[2:], json.dumps(cfg)],
        env={**world.env(), "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
        capture_output=True,
        text=True,
        timeout=150,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    control, boxed = out["control"], out["sandbox"]
    assert control["returncode"] == DONE, control
    assert results(control["stdout"]) == {"tcp": "ok", "udp": "ok"}, control
    assert control["received"] == {"tcp": 1, "udp": 1}, control
    assert boxed["returncode"] == DONE, boxed
    got = results(boxed["stdout"])
    assert got["tcp"] != "ok" and got["udp"] != "ok", boxed
    assert boxed["received"] == {"tcp": 0, "udp": 0}, f"the listener received: {boxed}"
    events = read_audit(world.area.audit)
    assert denied(events, "net", op="connect", addr=NETNS_ADDR, port=out["tcp_port"],
                  rule="host-local", message=NOT_OWN)  # fmt: skip
    assert denied(events, "net", op="send", addr=NETNS_ADDR, port=out["udp_port"],
                  rule="host-local")  # fmt: skip


def test_host_local_open_trusts_every_local_service(world: Ctx, mode: str) -> None:
    """The documented switch for a trusted setup: with `host_local: open`
    loopback is decided by the rules like any address, so the rule test's
    refusal above is the boundary's and not the listener's."""
    other = world.tcp("other")
    policy = write_policy(
        world.area,
        "host_local: open\n"
        "network_rules:\n  - {name: loopback, cidrs: [127.0.0.0/8], decision: allow}\n",
    )
    run = boxed(
        world,
        mode,
        program(world, "local_connect.py", f"other=tcp/127.0.0.1/{other.port}"),
        policy=policy,
    )
    assert results(run.stdout) == {"other": "ok"}, run.stdout
    assert other.connections() == 1
    [event] = [e for e in run.of_type("net") if e.get("port") == other.port]
    assert (event["decision"], event["rule"]) == ("allow", "loopback")


@pytest.mark.parametrize("mode", ["notify", "ptrace", BLOCKED_MODE])
def test_a_flipped_connect_address_reaches_only_what_was_decided(world: Ctx, mode: str) -> None:
    """A second thread flips a connect's address between the program's own
    server and an outside listener: only the decided address is reached
    (notify mode connects a copy of the socket itself; ptrace mode holds the
    other threads, and so does notify mode where pidfd_getfd is refused).
    Without the sandbox about half reach the outside."""
    outside = world.tcp("raced")
    argv = program(world, "race_connect.py", str(outside.port), "200")
    run = boxed(world, mode, argv, timeout=90)
    got = {k: int(v) for k, v in results(run.stdout).items()}
    assert got["outside"] == 0 and outside.connections() == 0, run.stdout
    assert got["own"] > 0 and got["refused"] > 0, run.stdout
    refusals = denied(run.events, "net", op="connect", port=outside.port, rule="host-local")
    assert refusals, "no refusal audited"
    # Until 5 got through: the listener's backlog of 64 must not fill (nobody accepts).
    control = unsandboxed(world, [*argv[:-1], "5000", "5"])
    assert int(control["outside"]) == 5, control
    assert outside.connections() > 0


HOME_WRITABLE = """\
version: 1
file_rules:
  - {name: home, paths: ["${HOME}", "${HOME}/**"], operations: ["*"], decision: allow}
  - {name: read-only, paths: ["/", "/**"], operations: [read], decision: allow}
"""


def test_jupyters_runtime_files_stay_hidden_when_a_directory_above_moves(
    world: Ctx, mode: str
) -> None:
    """HOME is writable by policy (Jupyter started in ~); the runtime
    directory is hidden whatever the policy says, and renaming a directory
    above it, which would show its files under another path, is refused."""
    runtime = world.home / ".local" / "share" / "jupyter" / "runtime"
    for d in reversed(runtime.relative_to(world.home).parents):
        world.area.mkdir(str((world.home / d).relative_to(world.area.root)))
    world.area.mkdir(str(runtime.relative_to(world.area.root)))
    info = world.area.write(
        str((runtime / "jpserver-7.json").relative_to(world.area.root)),
        json.dumps({"token": world.secret}),
    )
    policy = world.area.write("home-rw.yaml", HOME_WRITABLE)
    script = (
        'cd "$HOME"; mv .local/share/jupyter j2; mv .local l2; '
        "cat j2/runtime/jpserver-7.json l2/share/jupyter/runtime/jpserver-7.json "
        ".local/share/jupyter/runtime/jpserver-7.json; exit 42"
    )
    run = boxed(world, mode, ["sh", "-c", script], policy=policy)
    assert world.secret not in run.stdout + run.stderr
    assert info.exists() and not (world.home / "j2").exists() and not (world.home / "l2").exists()
    renames = denied(run.events, "file", op="rename", rule="hidden")
    assert {e["path"] for e in renames} == {
        str(world.home / ".local/share/jupyter"),
        str(world.home / ".local"),
    }, renames
    assert denied(run.events, "file", path=str(info), rule="hidden")


def test_every_refused_destination_is_audited_by_its_address(world: Ctx, mode: str) -> None:
    """A loop on one refused port is cut to 20 events and a count; each other
    destination the same process tries still gets its own event."""
    looped = world.tcp("looped")
    others = [world.tcp(f"other-{i}") for i in range(5)]
    targets = [f"loop{i}=tcp/127.0.0.1/{looped.port}" for i in range(25)]
    targets += [f"other{i}=tcp/127.0.0.1/{t.port}" for i, t in enumerate(others)]
    run = boxed(world, mode, program(world, "local_connect.py", *targets))
    assert all(v != "ok" for v in results(run.stdout).values()), run.stdout
    assert len(denied(run.events, "net", port=looped.port, rule="host-local")) == 20
    [cut] = [e for e in run.of_type("sandbox") if e.get("op") == "suppressed"]
    assert (cut["count"], cut["addr"], cut["port"], cut["of_type"]) == (
        5, "127.0.0.1", looped.port, "net"
    )  # fmt: skip
    for t in others:
        assert len(denied(run.events, "net", port=t.port, rule="host-local")) == 1, t.port
