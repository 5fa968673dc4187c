"""Landlock: the plumbing, the plan derived from a policy, and enforcement.

The plan tests run on a crafted tree; the enforcement tests apply a built
ruleset in a child process and compare with the same operations done
without it (the control: the OS allows them, so only Landlock can refuse
them); the last test runs the real wrapper through a Session with a
hand-narrowed ruleset to show the wrapper enforces what it is given.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy import policy as pol
from agentsh_ipy._linux import landlock as ll
from agentsh_ipy.supervisor import _landlock as lp
from agentsh_ipy.supervisor._launch import LaunchError
from tests.conftest import linux_only

pytestmark = linux_only

ABI = ll.abi() if sys.platform.startswith("linux") else 0
needs_landlock = pytest.mark.skipif(ABI == 0, reason="this kernel has no usable Landlock")

READ = lp.READ_CONTENT


# -- plumbing -------------------------------------------------------------------
def test_fs_rights_per_abi() -> None:
    assert ll.fs_rights(0) == 0
    assert ll.fs_rights(1) == (1 << 13) - 1
    assert ll.fs_rights(2) == ll.fs_rights(1) | ll.FS_REFER
    assert ll.fs_rights(3) == ll.fs_rights(2) | ll.FS_TRUNCATE
    assert ll.fs_rights(4) == ll.fs_rights(3)  # ABI 4 added network rights only
    assert ll.fs_rights(5) == ll.fs_rights(3) | ll.FS_IOCTL_DEV
    assert ll.fs_rights(7) == ll.fs_rights(5)
    assert ll.net_rights(3) == 0
    assert ll.net_rights(4) == ll.NET_BIND_TCP | ll.NET_CONNECT_TCP


@needs_landlock
def test_abi_matches_the_detect_probe() -> None:
    from agentsh_ipy._linux import detect

    assert ll.abi() == detect.probe_host().get("landlock").value


@needs_landlock
def test_errors_say_why_in_words(tmp_path: Path) -> None:
    with pytest.raises(ll.LandlockError, match="ENOMSG: empty accesses") as e:
        ll.create_ruleset(0)
    assert e.value.errno == errno.ENOMSG
    fd = ll.create_ruleset(ll.FS_READ_FILE)
    try:
        with pytest.raises(ll.LandlockError, match="not a subset of the ruleset's handled"):
            ll.add_path_rule(fd, str(tmp_path), ll.FS_WRITE_FILE)
        if ABI >= 4:
            with pytest.raises(ll.LandlockError, match=r"port 80\): EINVAL"):
                ll.add_port_rule(fd, 80, ll.NET_CONNECT_TCP)  # TCP not handled here
    finally:
        os.close(fd)
    with pytest.raises(ll.LandlockError, match="EBADFD: not a ruleset fd"):
        ll.add_path_rule(0, str(tmp_path), ll.FS_READ_FILE)


@needs_landlock
def test_a_rule_on_a_file_keeps_only_the_file_rights(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    fd = ll.create_ruleset(ll.fs_rights(ABI))
    try:
        got = ll.add_path_rule(fd, str(f), ll.fs_rights(ABI))
        assert got == ll.fs_rights(ABI) & ll.FILE_ONLY
        assert ll.add_path_rule(fd, str(f), ll.FS_MAKE_DIR) == 0  # nothing left: no rule
        assert ll.add_path_rule(fd, str(tmp_path), ll.FS_MAKE_DIR) == ll.FS_MAKE_DIR
    finally:
        os.close(fd)


def test_ruleset_is_close_on_exec() -> None:
    if ABI == 0:
        pytest.skip("this kernel has no usable Landlock")
    fd = ll.create_ruleset(ll.FS_READ_FILE)
    try:
        assert not os.get_inheritable(fd)
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[landlock-ruleset]"
    finally:
        os.close(fd)


# -- globs -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "prefix", "kind"),
    [
        ("/w/**", "/w", "tree"),
        ("/dev/pts/**", "/dev/pts", "tree"),
        ("/**/.env", "/", "glob"),
        ("/**", "/", "tree"),
        ("/", "/", "exact"),
        ("/etc/passwd", "/etc/passwd", "exact"),
        ("/a/b*/c", "/a", "glob"),
        ("/a/[*]b", "/a/*b", "exact"),  # escape()d metacharacters are literal
        ("/a/[[]x]/**", "/a/[x]", "tree"),
        ("/a/[ab]", "/a", "glob"),
        ("/proc/*/environ", "/proc", "glob"),
    ],
)
def test_literal_prefix(pattern: str, prefix: str, kind: str) -> None:
    assert lp.literal_prefix(pattern) == (prefix, kind)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/**/known_hosts", "/h/.ssh", True),
        ("/h/.ssh/*.pub", "/h/.ssh", True),
        ("/h/.ss?/x", "/h/.ssh", True),
        ("/h/.ssh", "/h/.ssh", False),  # the directory itself, nothing below
        ("/h", "/h/.ssh", False),
        ("/h/*", "/h/.ssh", False),  # entries of /h only
        ("/h/docs/**", "/h/.ssh", False),
        ("/x/**", "/h/.ssh", False),
    ],
)
def test_could_match_below(pattern: str, path: str, expected: bool) -> None:
    assert lp.could_match_below(pattern, path) is expected


# -- the plan on a crafted tree ------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = Path(os.path.realpath(tmp_path))
    for d in ("ws", "home/.ssh", "home/docs", "etc", "out"):
        (root / d).mkdir(parents=True)
    for f, text in {
        "ws/w.txt": "in workspace\n",
        "home/.ssh/id_rsa": "SECRET\n",
        "home/notes.txt": "notes\n",
        "home/docs/a.txt": "doc\n",
        "etc/passwd": "root:x:0:0\n",
        "etc/shadow": "root:HASH\n",
        "out/existing.txt": "old\n",
        "top.txt": "top\n",
    }.items():
        (root / f).write_text(text)
    (root / "home/link").symlink_to("../ws")
    return root


POLICY = """\
version: 1
name: crafted
defaults: {file: deny, network: deny, unix_socket: deny}
file_rules:
  - name: credentials
    paths: ["${HOME}/.ssh", "${HOME}/.ssh/**", "ROOT/etc/shadow", "${HOME}/.aws/**", "/**/.env"]
    operations: ["*"]
    decision: deny
  - name: workspace
    paths: ["${WORKSPACE}", "${WORKSPACE}/**"]
    operations: ["*"]
    decision: allow
  - name: missing
    paths: ["ROOT/nope/**"]
    operations: [write]
    decision: allow
  - name: read-only
    paths: ["ROOT", "ROOT/**"]
    operations: [read]
    decision: allow
"""


def make_policy(root: Path, text: str = POLICY) -> pol.Policy:
    variables = {"WORKSPACE": str(root / "ws"), "HOME": str(root / "home"), "TMPDIR": str(root)}
    return pol.Policy.parse(text.replace("ROOT", str(root)), "test.yaml", variables)


def test_plan_grants_and_read_holes(tree: Path) -> None:
    p = lp.plan(make_policy(tree), 7)
    r = str(tree)
    assert p.handled_fs == ll.fs_rights(7)
    assert p.holes == (f"{r}/etc/shadow", f"{r}/home/.ssh")
    # The ancestor keeps READ_DIR only; contents go to the siblings on the way down.
    assert p.access(r) == ll.FS_READ_DIR
    for sib in ("out", "top.txt", "etc/passwd", "home/notes.txt", "home/docs"):
        assert p.access(f"{r}/{sib}") == READ, sib
    for none in ("home", "etc", "home/.ssh", "etc/shadow", "home/link"):
        assert p.access(f"{r}/{none}") == 0, none  # intermediate, hole or symlink
    ws = p.access(f"{r}/ws")
    assert ws & READ == READ
    need = ll.FS_WRITE_FILE | ll.FS_TRUNCATE | ll.FS_IOCTL_DEV | ll.FS_MAKE_REG
    need |= ll.FS_MAKE_DIR | ll.FS_REMOVE_FILE | ll.FS_REMOVE_DIR | ll.FS_REFER | ll.FS_MAKE_SYM
    assert ws & need == need
    assert not ws & (ll.FS_MAKE_CHAR | ll.FS_MAKE_BLOCK)
    # No rule outside the tree: '/**/.env' is a deny glob, nothing grants '/'.
    assert all(path.startswith(r) for path, _ in p.rules)
    assert "does not exist" in p.why_skipped(f"{r}/home/.aws")
    assert "(a rule needs an existing path)" in p.why_skipped(f"{r}/nope")
    # Network default deny and no rule allowing TCP: binds handled, no port
    # open; connects not (the sandbox's own servers may be on any port).
    assert (p.handled_net, p.ports) == (ll.NET_BIND_TCP, ())
    assert any("TCP connect not handled: the sandbox's own servers" in n for n in p.notes)


def test_plan_masks_rights_to_the_abi(tree: Path) -> None:
    p = lp.plan(make_policy(tree), 1)
    assert p.handled_fs == ll.fs_rights(1)
    assert all(not a & ~ll.fs_rights(1) for _, a in p.rules)
    assert p.handled_net == 0
    assert any("ABI 1 has no network rights" in n for n in p.notes)


def test_a_directory_named_without_stars_is_no_hole(tree: Path) -> None:
    text = POLICY.replace('"${HOME}/.ssh", "${HOME}/.ssh/**", ', '"${HOME}/.ssh", ')
    p = lp.plan(make_policy(tree, text), 7)
    assert p.holes == (f"{tree}/etc/shadow",)
    assert "only listing it is denied" in p.why_skipped(f"{tree}/home/.ssh")
    assert p.access(f"{tree}/home") == READ  # a sibling on the way to nothing: read


def test_an_earlier_read_allow_prevents_the_hole(tree: Path) -> None:
    text = POLICY.replace(
        "file_rules:\n",
        'file_rules:\n  - {name: pubkeys, paths: ["/**/*.pub"], operations: [read], '
        "decision: allow}\n",
    )
    p = lp.plan(make_policy(tree, text), 7)
    assert p.holes == (f"{tree}/etc/shadow",)
    assert "earlier rule 'pubkeys'" in p.why_skipped(f"{tree}/home/.ssh")


def test_no_hole_where_the_sandbox_may_create_entries(tree: Path) -> None:
    # The workspace is the home directory: a file created there later must
    # stay readable, so ~/.ssh cannot be cut out of the read grant.
    variables = {"WORKSPACE": str(tree / "home"), "HOME": str(tree / "home"), "TMPDIR": str(tree)}
    policy = pol.Policy.parse(POLICY.replace("ROOT", str(tree)), "t.yaml", variables)
    p = lp.plan(policy, 7)
    assert p.holes == (f"{tree}/etc/shadow",)
    assert "may create entries in" in p.why_skipped(f"{tree}/home/.ssh")
    assert p.access(f"{tree}/home") & READ == READ


def test_a_directory_that_cannot_be_listed_gives_up_the_hole(tree: Path) -> None:
    def listdir(path: str) -> list[tuple[str, bool]]:
        if path.endswith("/etc"):
            raise PermissionError(errno.EACCES, "denied")
        return lp.scan(path)

    p = lp.plan(make_policy(tree), 7, listdir)
    assert p.holes == (f"{tree}/home/.ssh",)
    assert "cannot list" in p.why_skipped(f"{tree}/etc/shadow")
    assert p.access(f"{tree}/etc") == READ  # granted whole as a sibling again


def test_unknown_decisions_and_operations_still_grant(tree: Path) -> None:
    base = make_policy(tree)
    odd = pol.FileRule("odd", (base.file_rules[1].globs[1],), frozenset({"teleport"}), "quarantine")
    policy = dataclasses.replace(base, file_rules=(odd,))
    p = lp.plan(policy, 7)
    assert p.access(f"{tree}/ws") == ll.fs_rights(7) & ~(ll.FS_MAKE_CHAR | ll.FS_MAKE_BLOCK)


def test_unix_socket_binds_need_make_sock(tree: Path) -> None:
    allow = POLICY.replace("unix_socket: deny", "unix_socket: allow")
    p = lp.plan(make_policy(tree, allow), 7)
    assert p.access("/") == ll.FS_MAKE_SOCK
    rule = (
        "unix_socket_rules:\n"
        '  - {name: sock, paths: ["ROOT/out/s.sock", "@abstract"], operations: [bind], '
        "decision: allow}\n"
    )
    p = lp.plan(make_policy(tree, POLICY + rule), 7)
    assert p.access("/") == 0
    assert p.access(f"{tree}/out") == READ | ll.FS_MAKE_SOCK  # the socket's directory


# Connect ports are handled only where this host's services are decided by
# the rules alone (host_local: open): under the default (closed) the
# sandbox's own servers may listen on any port.
NET = """\
version: 1
host_local: open
defaults: {network: NETDEFAULT}
network_rules:
  - name: web
    cidrs: [0.0.0.0/0]
    ports: [443, "8000-8002"]
    operations: [connect]
    decision: allow
  - {name: blocked, ports: [22], operations: [connect], decision: deny}
EXTRA
"""


def net_plan(root: Path, default: str = "deny", extra: str = "", abi: int = 7) -> lp.Plan:
    text = NET.replace("NETDEFAULT", default).replace("EXTRA", extra)
    return lp.plan(make_policy(root, text), abi)


def test_net_connect_ports_handled_when_every_allow_lists_ports(tree: Path) -> None:
    p = net_plan(tree)
    # connect: the allowed ports; bind: no rule allows any, so handled with none.
    assert p.handled_net == ll.NET_CONNECT_TCP | ll.NET_BIND_TCP
    assert p.ports == tuple((port, ll.NET_CONNECT_TCP) for port in (443, 8000, 8001, 8002))
    assert any("TCP connect handled: ports 443,8000-8002" in n for n in p.notes)


def test_net_connect_not_handled_while_host_local_is_closed(tree: Path) -> None:
    p = lp.plan(make_policy(tree, NET.replace("host_local: open", "host_local: closed")
                            .replace("NETDEFAULT", "deny").replace("EXTRA", "")), 7)  # fmt: skip
    assert p.handled_net == ll.NET_BIND_TCP and p.ports == ()
    assert any("TCP connect not handled: the sandbox's own servers" in n for n in p.notes)


def test_net_connect_not_handled_when_a_rule_names_domains(tree: Path) -> None:
    # the sandbox must reach the proxy's port, chosen at start
    extra = "  - {name: pypi, domains: [pypi.org], ports: [443], decision: allow}\n"
    p = net_plan(tree, extra=extra)
    assert not p.handled_net & ll.NET_CONNECT_TCP
    assert all(access != ll.NET_CONNECT_TCP for _, access in p.ports)
    assert any("TCP connect not handled: the proxy for names" in n for n in p.notes)


def test_net_not_handled_when_some_allow_has_any_port(tree: Path) -> None:
    extra = "  - {name: lo, cidrs: [127.0.0.0/8], decision: allow}\n"
    p = net_plan(tree, extra=extra)
    assert p.handled_net == 0
    assert any("TCP connect not handled: rule 'lo' allows any port" in n for n in p.notes)
    assert any("TCP bind not handled: rule 'lo' allows any port" in n for n in p.notes)


def test_net_not_handled_for_too_many_ports_or_an_open_default(tree: Path) -> None:
    extra = '  - {name: many, ports: ["1000-3000"], operations: [bind], decision: audit}\n'
    p = net_plan(tree, extra=extra)
    assert p.handled_net == ll.NET_CONNECT_TCP
    assert any("TCP bind not handled: more than 1024 ports" in n for n in p.notes)
    p = net_plan(tree, default="allow")
    assert p.handled_net == 0 and p.ports == ()
    assert any("defaults.network is allow" in n for n in p.notes)
    assert net_plan(tree, abi=3).handled_net == 0


def test_the_default_policy_plans_on_this_host() -> None:
    from agentsh_ipy import supervisor as sup

    policy = sup.load_policy(None, os.getcwd())
    p = lp.plan(policy, 7)
    assert p.access("/") & READ == 0 or not p.holes  # holes cut the read grant on /
    assert p.handled_net == 0  # binds: loopback, any port; connects: own servers
    assert "/etc/shadow" in p.holes or "/etc/shadow" in dict(p.skipped)
    assert any("TCP bind not handled: rule 'own-servers' allows any port" in n for n in p.notes)
    assert any("TCP connect not handled: the sandbox's own servers" in n for n in p.notes)
    assert "/dev/fd" in dict(p.skipped)  # the supervisor's own /proc/self: no rule


# -- enforcement in a child --------------------------------------------------------
PROBE = r"""
import errno, json, os, sys
fd, root, apply = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
if apply:
    from agentsh_ipy._linux import _syscall, landlock
    _syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)
    landlock.restrict_self(fd)
os.close(fd)

def attempt(fn):
    try:
        out = fn()
        return ["ok", out]
    except OSError as e:
        return ["err", errno.errorcode.get(e.errno, str(e.errno))]

def read(rel):
    f = os.open(os.path.join(root, rel), os.O_RDONLY)
    try:
        return os.read(f, 100).decode()
    finally:
        os.close(f)

def write(rel, flags=os.O_CREAT):
    f = os.open(os.path.join(root, rel), os.O_WRONLY | flags, 0o644)
    os.close(f)

out = {
    "create_out": attempt(lambda: write("out/new.txt")),
    "write_out": attempt(lambda: write("out/existing.txt", 0)),
    "truncate_out": attempt(lambda: os.truncate(os.path.join(root, "out/existing.txt"), 0)),
    "mkfifo_out": attempt(lambda: os.mkfifo(os.path.join(root, "out/fifo"))),
    "rename_to_out": attempt(lambda: os.rename(os.path.join(root, "ws/mv.txt"),
                                               os.path.join(root, "out/mv.txt"))),
    "create_ws": attempt(lambda: write("ws/new.txt")),
    "mkfifo_ws": attempt(lambda: os.mkfifo(os.path.join(root, "ws/fifo"))),
    "read_hole": attempt(lambda: read("home/.ssh/id_rsa")),
    "read_hole_file": attempt(lambda: read("etc/shadow")),
    "list_hole_parent": attempt(lambda: sorted(os.listdir(os.path.join(root, "home")))),
    "list_hole": attempt(lambda: os.listdir(os.path.join(root, "home/.ssh"))),
    "read_sibling": attempt(lambda: read("home/notes.txt")),
    "read_sibling_dir": attempt(lambda: read("home/docs/a.txt")),
    "read_etc_sibling": attempt(lambda: read("etc/passwd")),
    "read_via_symlink": attempt(lambda: read("home/link/w.txt")),
    "read_top": attempt(lambda: read("top.txt")),
    "read_host_file": attempt(lambda: read("/etc/hostname")),
}
sys.stdout.write(json.dumps(out))
"""


def probe(root: Path, fd: int, apply: bool) -> dict[str, Any]:
    (root / "ws/mv.txt").write_text("mv\n")
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(fd), str(root), "1" if apply else "0"],
        pass_fds=[fd],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    result: dict[str, Any] = json.loads(p.stdout)
    return result


@pytest.fixture
def ruleset(tree: Path) -> Iterator[int]:
    if ABI == 0:
        pytest.skip("this kernel has no usable Landlock")
    fd = lp.build(lp.plan(make_policy(tree), ABI))
    yield fd
    os.close(fd)


def reset(root: Path) -> None:
    for rel in ("out/new.txt", "out/fifo", "out/mv.txt", "ws/new.txt", "ws/fifo"):
        if os.path.lexists(root / rel):
            os.unlink(root / rel)
    (root / "out/existing.txt").write_text("old\n")


def test_a_built_ruleset_enforces_the_plan(tree: Path, ruleset: int) -> None:
    # Control: without Landlock the OS allows every one of these.
    control = probe(tree, ruleset, apply=False)
    assert all(v[0] == "ok" for k, v in control.items() if k != "read_host_file"), control
    reset(tree)

    got = probe(tree, ruleset, apply=True)
    denied = {k for k, v in got.items() if v[0] == "err"}
    assert got["create_out"] == ["err", "EACCES"]
    assert got["write_out"] == ["err", "EACCES"]
    assert got["truncate_out"] == ["err", "EACCES"]
    assert got["mkfifo_out"] == ["err", "EACCES"]
    assert got["rename_to_out"][1] in ("EACCES", "EXDEV")
    assert got["read_hole"] == ["err", "EACCES"]
    assert got["read_hole_file"] == ["err", "EACCES"]
    assert got["read_host_file"] == ["err", "EACCES"]  # nothing granted outside the tree
    assert denied == {
        "create_out", "write_out", "truncate_out", "mkfifo_out", "rename_to_out",
        "read_hole", "read_hole_file", "read_host_file",
    }  # fmt: skip
    # Listing still works, at the hole's parent and (READ_DIR) at the hole.
    assert got["list_hole_parent"] == ["ok", [".ssh", "docs", "link", "notes.txt"]]
    assert got["list_hole"] == ["ok", ["id_rsa"]]
    assert got["read_sibling"] == ["ok", "notes\n"]
    assert got["read_sibling_dir"] == ["ok", "doc\n"]
    assert got["read_via_symlink"] == ["ok", "in workspace\n"]
    assert not (tree / "out/new.txt").exists() and not (tree / "out/fifo").exists()
    assert (tree / "ws/new.txt").exists() and (tree / "ws/fifo").exists()


NET_PROBE = r"""
import json, os, socket, sys
fd, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
from agentsh_ipy._linux import _syscall, landlock
_syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)
landlock.restrict_self(fd)
os.close(fd)
out = {}
for port in ports:
    s = socket.socket()
    out[port] = s.connect_ex(("127.0.0.1", port))
    s.close()
s = socket.socket()
try:
    s.bind(("127.0.0.1", 0))
    out["bind"] = 0
except OSError as e:
    out["bind"] = e.errno
print(json.dumps(out))
"""


@needs_landlock
def test_tcp_port_rules_are_enforced(tree: Path) -> None:
    if ABI < 4:
        pytest.skip(f"Landlock ABI {ABI} has no network rights")
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        allowed, other = (s.getsockname()[1] for s in servers)
        text = (
            "version: 1\nhost_local: open\nnetwork_rules:\n"
            f"  - {{name: one, ports: [{allowed}], operations: [connect], decision: allow}}\n"
        )
        p = lp.plan(make_policy(tree, text), ABI)
        assert p.handled_net == ll.NET_CONNECT_TCP | ll.NET_BIND_TCP
        fd = lp.build(p)
        try:
            r = subprocess.run(
                [sys.executable, "-c", NET_PROBE, str(fd), str(allowed), str(other)],
                pass_fds=[fd], capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        finally:
            os.close(fd)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert got[str(allowed)] == 0
        assert got[str(other)] == errno.EACCES  # a listener is there: only Landlock refuses
        assert got["bind"] == errno.EACCES
    finally:
        for s in servers:
            s.close()


# -- the real wrapper, through a Session ------------------------------------------
SESSION = r"""
import dataclasses, json, os, sys, time
from agentsh_ipy import audit as aud
from agentsh_ipy import supervisor as sup
from agentsh_ipy._linux import landlock as ll
from agentsh_ipy.supervisor import _landlock

ws, narrow, *cmd = sys.argv[1:]

def prepare(policy, emit, listdir=_landlock.scan, one_domain=False):
    if narrow == "bogus":  # not a ruleset: the wrapper must refuse to go on
        return os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    p = _landlock.plan(policy, ll.abi())
    if narrow == "1":  # take WRITE_FILE away from the workspace and everything above it
        rules = tuple(
            (path, acc & ~ll.FS_WRITE_FILE) if ws == path or ws.startswith(path.rstrip("/") + "/")
            else (path, acc)
            for path, acc in p.rules
        )
        p = dataclasses.replace(p, rules=rules)
    emit("sandbox", op="landlock", message="hand-built", abi=p.abi)
    return _landlock.build(p)

_landlock.prepare = prepare
log = aud.AuditLog(None, "test", time.time)
events = []
log.subscribe(events.append)
# Opens continue in the kernel (the weaker guarantee a host without the
# supervisor's own opens accepts), so the caller's own Landlock domain is what
# the kernel checks them against.
session = sup.Session(sup.load_policy(None, ws), log, weaker=["opens-continue"])
result = session.run(cmd, cwd=ws)
print(json.dumps({"status": result.status, "error": result.error, "events": events}))
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory outside every tree the default policy lets a sandbox write."""
    parent = "/var/lib" if os.geteuid() == 0 else os.path.expanduser("~/.cache")
    os.makedirs(parent, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="agentsh-landlock-", dir=parent))
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def run_session(ws: Path, narrow: str, cmd: list[str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    p = subprocess.run(
        [sys.executable, "-c", SESSION, str(ws), narrow, *cmd],
        capture_output=True, text=True, timeout=120, cwd=ws, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout.splitlines()[-1])
    out["stderr"] = p.stderr
    return out


@needs_landlock
def test_the_wrapper_enforces_the_ruleset_it_is_given(scratch: Path) -> None:
    ws = Path(os.path.realpath(scratch))
    # An unnamed file (O_TMPFILE) in the workspace, opened by the kernel for
    # the caller (opens-continue, see SESSION): its Landlock domain decides.
    tmpfile = [
        sys.executable, "-c",
        f"import os; os.close(os.open({str(ws)!r}, os.O_TMPFILE | os.O_RDWR, 0o600))",
    ]  # fmt: skip
    # As planned, the policy's allow holds under Landlock too.
    r = run_session(ws, "0", tmpfile)
    assert r["status"] == 0, r
    # Narrowed by hand: the policy still allows it (the notify layer lets it
    # CONTINUE, the audit says allow), and the kernel refuses it.
    r = run_session(ws, "1", tmpfile)
    assert r["status"] == 1, r
    assert "PermissionError" in r["stderr"], r["stderr"]
    evs = [e for e in r["events"] if e["type"] == "file" and e.get("path") == str(ws)]
    assert [(e["op"], e["decision"], e["rule"]) for e in evs if e.get("flags")] == [
        ("create", "allow", "workspace")
    ], evs
    assert any(e["type"] == "sandbox" and e.get("message") == "hand-built" for e in r["events"])


@needs_landlock
def test_a_ruleset_the_wrapper_cannot_enforce_stops_the_launch(scratch: Path) -> None:
    ws = Path(os.path.realpath(scratch))
    r = run_session(ws, "bogus", ["mkdir", str(ws / "never")])
    assert r["status"] == 125
    assert r["error"].startswith("landlock_restrict_self: EBADFD"), r["error"]
    assert not (ws / "never").exists()
    assert not [e for e in r["events"] if e["type"] in ("process_start", "exec", "file")]


# -- prepare: what the session asks for -------------------------------------------
def test_prepare_without_landlock_runs_on_and_says_so(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ll, "probe", lambda: (0, "landlock_create_ruleset: ENOSYS: no"))
    events: list[tuple[str, dict[str, Any]]] = []
    fd = lp.prepare(make_policy(tree), lambda t, **f: events.append((t, f)))
    assert fd is None
    [(kind, fields)] = events
    assert (kind, fields["op"]) == ("sandbox", "landlock")
    assert fields["message"].startswith("Landlock unavailable (landlock_create_ruleset: ENOSYS")
    assert "seccomp user-notify alone" in fields["message"]


def test_prepare_refuses_when_the_ruleset_cannot_be_built(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object) -> int:
        raise ll.LandlockError(errno.EINVAL, "landlock_create_ruleset: EINVAL: test")

    monkeypatch.setattr(ll, "probe", lambda: (7, ""))
    monkeypatch.setattr(ll, "create_ruleset", broken)
    with pytest.raises(LaunchError, match=r"cannot build the Landlock ruleset: .*EINVAL"):
        lp.prepare(make_policy(tree), lambda *_a, **_f: None)


@needs_landlock
def test_prepare_reports_the_plan(tree: Path) -> None:
    events: list[dict[str, Any]] = []
    fd = lp.prepare(make_policy(tree), lambda t, **f: events.append(f))
    assert fd is not None
    os.close(fd)
    [ev] = events
    assert ev["abi"] == ABI
    assert ev["holes"] == [f"{tree}/etc/shadow", f"{tree}/home/.ssh"]
    assert [f"{tree}/top.txt", ["execute", "read_file"]] in ev["rules"]
    assert any(path == f"{tree}/nope" for path, _ in ev["skipped"])


# -- scopes (ABI 6+) -----------------------------------------------------------------
SIGNAL_OUT = """
signal_rules:
  - name: outsiders
    targets: [outside]
    signals: [TERM]
    decision: allow
"""
ABSTRACT_OUT = """
unix_socket_rules:
  - name: x11
    paths: ["@/tmp/.X11-unix/X0"]
    operations: [connect]
    decision: allow
"""


def scope_names(p: lp.Plan) -> list[str]:
    return ll.names(p.scoped, ll.SCOPE_NAMES)


def test_scopes_set_only_where_the_policy_refuses_the_same(tree: Path) -> None:
    p = lp.plan(make_policy(tree), 6, one_domain=True)
    assert p.scoped == ll.SCOPE_SIGNAL | ll.SCOPE_ABSTRACT_UNIX_SOCKET
    assert p.scopes_off == ()
    assert p.summary().endswith("scopes: abstract_unix_socket, signal")
    p = lp.plan(make_policy(tree, POLICY + SIGNAL_OUT), 7, one_domain=True)
    assert scope_names(p) == ["abstract_unix_socket"]
    assert p.scopes_off == (("signal", "signal rule 'outsiders' may allow signals outside"),)
    p = lp.plan(make_policy(tree, POLICY + ABSTRACT_OUT), 7, one_domain=True)
    assert scope_names(p) == ["signal"]
    [(name, why)] = p.scopes_off
    assert name == "abstract_unix_socket" and "'x11'" in why
    open_defaults = POLICY.replace("unix_socket: deny}", "unix_socket: allow, signal: allow}")
    p = lp.plan(make_policy(tree, open_defaults), 7, one_domain=True)
    assert p.scoped == 0
    assert dict(p.scopes_off) == {
        "signal": "defaults.signal is allow",
        "abstract_unix_socket": "defaults.unix_socket is allow",
    }


def test_no_scopes_below_abi_6_or_across_domains(tree: Path) -> None:
    p = lp.plan(make_policy(tree), 5, one_domain=True)
    assert p.scoped == 0
    assert all("has no scopes (ABI 6+)" in why for _, why in p.scopes_off)
    assert p.summary().endswith("scopes: none")
    p = lp.plan(make_policy(tree), 7)  # the %%agentsh daemon: a domain per launch
    assert p.scoped == 0
    assert {n for n, _ in p.scopes_off} == {"signal", "abstract_unix_socket"}
    assert all("its own Landlock domain" in why for _, why in p.scopes_off)


def test_the_default_policy_is_fully_scoped() -> None:
    from agentsh_ipy import supervisor as sup

    p = lp.plan(sup.load_policy(None, os.getcwd()), 7, one_domain=True)
    assert p.scoped == ll.scopes(7)


SCOPE_PROBE = r"""
import errno, json, os, socket, sys
fd, victim, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
from agentsh_ipy._linux import _syscall, landlock
_syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)
landlock.restrict_self(fd)
os.close(fd)

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def connect():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect("\0" + name)

def own():  # a child in the same domain, and an abstract socket bound inside
    pid = os.fork()
    if pid == 0:
        __import__("time").sleep(30)
        os._exit(0)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind("\0" + name + "-own")
        srv.listen(1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect("\0" + name + "-own")
    r = attempt(lambda: os.kill(pid, 9))
    os.waitpid(pid, 0)
    return r

out = {"kill_outside": attempt(lambda: os.kill(victim, 0)),
       "connect_outside": attempt(connect), "own": own()}
sys.stdout.write(json.dumps(out))
"""


@pytest.mark.skipif(ABI < 6, reason="Landlock scopes need ABI 6")
@pytest.mark.parametrize("scoped", [0, ll.SCOPE_SIGNAL | ll.SCOPE_ABSTRACT_UNIX_SOCKET])
def test_scopes_are_enforced_by_the_kernel(scoped: int) -> None:
    """An outside `sleep` and an abstract socket bound outside: reachable
    from a domain without scopes (the control), refused with them; the
    domain's own child and own abstract socket stay reachable."""
    name = f"agentsh-scope-test-{os.getpid()}"
    victim = subprocess.Popen(["sleep", "30"])
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind("\0" + name)
        srv.listen(4)
        p = lp.Plan(ABI, ll.FS_MAKE_BLOCK, 0, (), scoped=scoped)
        fd = lp.build(p)
        try:
            r = subprocess.run(
                [sys.executable, "-c", SCOPE_PROBE, str(fd), str(victim.pid), name],
                pass_fds=[fd], capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        finally:
            os.close(fd)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        want = "EPERM" if scoped else "ok"
        assert out == {"kill_outside": want, "connect_outside": want, "own": "ok"}
        assert victim.poll() is None
    finally:
        srv.close()
        victim.kill()
        victim.wait()


@needs_landlock
@pytest.mark.parametrize("one_domain", [True, False])
def test_prepare_says_which_scopes_are_on(tree: Path, one_domain: bool) -> None:
    events: list[dict[str, Any]] = []
    fd = lp.prepare(make_policy(tree), lambda t, **f: events.append(f), one_domain=one_domain)
    assert fd is not None
    os.close(fd)
    [ev] = events
    if ABI >= 6 and one_domain:
        assert ev["scopes"] == ["abstract_unix_socket", "signal"]
        assert ev["scopes_off"] == []
    else:
        assert ev["scopes"] == []
        assert {n for n, _ in ev["scopes_off"]} == {"signal", "abstract_unix_socket"}
