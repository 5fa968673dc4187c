"""The escape suite: hostile programs against the sandbox.

Every program in programs/ models one threat and runs inside
`agentsh-ipy exec --mode MODE`, as root and as uid 65534, in both supervision
modes. Each case asserts two things:

* the EFFECT did not happen: no secret in the output or in any file of the
  scratch area, nothing outside the workspace or in HOME changed, the
  listener got nothing, the outside process lives, the supervisor still
  decides (a final "probe" open is denied) and the run ended with the
  program's own exit status (42) and the supervisor's "end" event;
* the AUDIT recorded the attempt as a denial (type, op, path / addr and
  port / target pid, rule where the policy names one).

`test_program_escapes_unsandboxed` runs the same programs without the
sandbox and requires the effect checks to FAIL there: a check that passes
whether or not the sandbox acts would be a defect of this suite.

All network traffic stays on loopback (127.0.0.0/8, ::1).
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import ipaddress
import json
import os
import platform
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy._linux import caps, wrapper
from agentsh_ipy.supervisor import _fast
from tests import _host
from tests.conftest import Run, linux_only, sandbox, write_policy
from tests.escape.conftest import TOKEN_NAME, Ctx, program_copy

pytestmark = linux_only

DONE = 42  # every program's exit status when it ran to its end
FORGED = "FORGED-BY-SANDBOX"
X86_64 = platform.machine() == "x86_64"
KERNEL = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])

Event = dict[str, Any]
Check = Callable[[Ctx, Run], None]


# ---------------------------------------------------------------------------
# what the program printed: one "LABEL: RESULT ..." line per attempt, where
# RESULT is "ok" or an errno name


def results(run: Run) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in run.stdout.splitlines():
        m = re.match(r"([\w.-]+): (\S+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def number(run: Run, label: str) -> int:
    m = re.search(rf"^{re.escape(label)}: (\d+)", run.stdout, re.M)
    assert m, f"the program never reported {label!r}:\n{run.stdout}\n{run.stderr}"
    return int(m.group(1))


def supervisor(run: Run) -> int:
    m = re.search(r"^(?:supervisor|target)=(\d+)", run.stdout, re.M)
    assert m, f"the program did not name its target:\n{run.stdout}\n{run.stderr}"
    return int(m.group(1))


def _result(run: Run, label: str) -> str:
    got = results(run)
    assert label in got, (
        f"the program never reported {label!r} (it did not get that far):\n"
        f"{run.stdout}\n{run.stderr}"
    )
    return got[label]


# ---------------------------------------------------------------------------
# effect checks (each raises AssertionError when the escape worked)


def refused(*labels: str) -> Check:
    """Each attempt was made and failed."""

    def check(c: Ctx, r: Run) -> None:
        for label in labels:
            assert _result(r, label) != "ok", f"{label} succeeded:\n{r.stdout}"

    return check


def said(label: str, *values: str) -> Check:
    """The attempt ended with one of these results (e.g. EPERM)."""

    def check(c: Ctx, r: Run) -> None:
        got = _result(r, label)
        assert got in values, f"{label}: {got}, expected one of {values}:\n{r.stdout}"

    return check


def absent(text: str) -> Check:
    def check(c: Ctx, r: Run) -> None:
        assert text not in r.stdout + r.stderr, f"{text!r} in the output:\n{r.stdout}"

    return check


def missing(rel: Callable[[Ctx], Path]) -> Check:
    def check(c: Ctx, r: Run) -> None:
        assert not rel(c).exists(), f"{rel(c)} exists"

    return check


def present(rel: Callable[[Ctx], Path]) -> Check:
    def check(c: Ctx, r: Run) -> None:
        assert rel(c).exists(), f"{rel(c)} is gone"

    return check


def works(*labels: str) -> Check:
    """Each attempt was made and succeeded (a control)."""

    def check(c: Ctx, r: Run) -> None:
        for label in labels:
            assert _result(r, label) == "ok", f"{label} failed:\n{r.stdout}"

    return check


def no_socket_refused(c: Ctx, r: Run) -> None:
    refusals = [e for e in r.events if e.get("syscall") in ("socket", "socketpair")]
    assert not refusals, f"sockets were trapped: {refusals}"


PROBE_DENIED = said("probe", "EACCES")  # the supervisor still decides files
NOT_SUPPORTED = ("EOPNOTSUPP", "ENOTSUP")  # one number, two names

PERM = ("EPERM", "EACCES")  # refused for lack of permission, not EFAULT/ESRCH


def tcp_untouched(name: str, control: str = "allowed") -> Check:
    def check(c: Ctx, r: Run) -> None:
        assert c.tcp(name).connections() == 0, f"the {name} listener got a connection"
        assert c.tcp(control).connections() == 1, "the control connection did not arrive"

    return check


def udp_untouched(name: str, control: str = "allowed") -> Check:
    def check(c: Ctx, r: Run) -> None:
        time.sleep(0.2)  # loopback delivery is synchronous; be generous anyway
        assert c.udp(name).datagrams() == [], f"the {name} listener received data"
        assert b"control" in c.udp(control).datagrams(), "the control datagram did not arrive"

    return check


def unix_untouched(c: Ctx, r: Run) -> None:
    assert c.unix("denied").connections() == 0, "the denied unix socket got a connection"
    assert c.unix("allowed").connections() == 1, "the control connection did not arrive"


HOSTNAME = socket.gethostname()


def hostname_kept(c: Ctx, r: Run) -> None:
    assert socket.gethostname() == HOSTNAME, f"the host name is now {socket.gethostname()}"


def _event_has(name: str, value: Any) -> Callable[[Ctx, Run, Event], bool]:
    """The event names the sub-command (or cmsg, namespaces) refused."""
    return lambda c, r, e: e.get(name) == value


def blocked_as(syscall: str, field: str, value: Any) -> Expect:
    """A refused sub-command, named in its event (e.g. "command": "F_SETLEASE")."""
    return Expect(("syscall_blocked",), syscalls=(syscall,), where=_event_has(field, value))


def no_terminal_denied(c: Ctx, r: Run) -> None:
    denied = [e for e in r.events if e.get("rule") == "other-terminal"]
    assert not denied, f"a pty made inside was refused: {denied}"


def victim_alive(c: Ctx, r: Run) -> None:
    assert c.victim().poll() is None, f"the outside process died ({c.victim().returncode})"


def exec_race_ran(c: Ctx, r: Run) -> None:
    assert number(r, "ran") > 0, "no exec of the benign copy ran: the race never ran"


def race_lost(c: Ctx, r: Run) -> None:
    assert number(r, "opened") > 0, "the allowed file never opened: the race never ran"
    assert number(r, "leaked") == 0, r.stdout


def forks_limited(c: Ctx, r: Run) -> None:
    alive, refused_forks = number(r, "alive"), number(r, "refused")
    assert alive <= 20, f"{alive} processes ran under max_processes: 20"
    assert refused_forks >= 1
    assert r.seconds < 30, f"the run took {r.seconds:.1f} s"


def audit_intact(c: Ctx, r: Run) -> None:
    assert c.area.audit.exists(), "the audit log is gone"
    text = c.area.audit.read_text()
    assert FORGED not in text, "a forged line is in the audit log"
    lines = [json.loads(x) for x in text.splitlines() if x]
    assert lines and lines[0].get("type") == "sandbox" and lines[0].get("op") == "start"
    assert [e.get("seq") for e in lines] == list(range(1, len(lines) + 1))


def policy_intact(c: Ctx, r: Run) -> None:
    assert c.policy_path is not None
    assert FORGED not in c.policy_path.read_text(), "the policy file was edited"


def no_theft(c: Ctx, r: Run) -> None:
    assert "stolen " not in r.stdout, r.stdout


def nothing_written(c: Ctx, r: Run) -> None:
    assert number(r, "written") == 0, r.stdout
    assert not re.search(r"^wrote ", r.stdout, re.M)


def no_xattr(path: Callable[[Ctx], Path], name: str) -> Check:
    def check(c: Ctx, r: Run) -> None:
        try:
            value = os.getxattr(path(c), name)
        except OSError as e:
            assert e.errno == errno.ENODATA, e
            return
        raise AssertionError(f"{path(c)} has {name} = {value!r}")

    return check


def no_nodump_flag(c: Ctx, r: Run) -> None:
    fd = os.open(c.existing, os.O_RDONLY)
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, 0x80086601, bytes(8)))[0]  # FS_IOC_GETFLAGS
    finally:
        os.close(fd)
    assert not flags & 0x40, f"{c.existing} got FS_NODUMP_FL ({flags:#x})"


def content_kept(c: Ctx, r: Run) -> None:
    text = c.existing.read_text()
    assert text == "original content\n", f"{c.existing} was written: {text!r}"


def changed_some(c: Ctx, r: Run) -> None:
    """The racing change ran (on the workspace file)."""
    assert number(r, "changed") > 0, f"no change went through: the race never ran\n{r.stdout}"


def mtime_kept(c: Ctx, r: Run) -> None:
    mtime = c.existing.stat().st_mtime
    assert mtime > 86400 * 365, f"the times of {c.existing} were set ({mtime})"


def victim_untouched(c: Ctx, r: Run) -> None:
    pid = c.victim().pid
    limits = Path(f"/proc/{pid}/limits").read_text()
    nofile = next(x for x in limits.splitlines() if x.startswith("Max open files")).split()
    assert nofile[3:5] != ["3", "3"], f"the outside process's limits changed: {nofile}"
    nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert nice == 0, f"the outside process's nice value is {nice}"
    victim_alive(c, r)


def _untraced_program(c: Ctx) -> str:
    return str(program_copy(c.area, "clone_untraced.py"))


def nothing_outlived(c: Ctx, r: Run) -> None:
    """After the command has returned: no process of it left (2.5 s later),
    and the marker it held open got no late write."""
    time.sleep(2.5)
    marker = c.ws / "late-marker"
    late = marker.read_bytes() if marker.exists() else b""
    program = _untraced_program(c).encode()
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if program in (entry / "cmdline").read_bytes():
                    alive.append(int(entry.name))
            except OSError:
                continue
    assert not late and not alive, f"outlived the command: wrote {late!r}, alive {alive}"


# ---------------------------------------------------------------------------
# audit expectations


@dataclass(frozen=True)
class Net:
    addrs: frozenset[str]
    port: int


@dataclass(frozen=True)
class Expect:
    """At least `count` audit events like this. `about` names what the event
    must be about: a path (in path, resolved, dest or target), a pid (the
    target of a signal, in any field but the event's own pid/ppid/tid), a
    Net (addr and port), or a list of alternatives."""

    types: tuple[str, ...]
    decision: str | None = "deny"
    op: str | None = None
    syscalls: tuple[str, ...] = ()
    rule: str | tuple[str, ...] | None = None  # a name, or alternatives
    rule_has: str | None = None
    about: Callable[[Ctx, Run], Any] | None = None
    where: Callable[[Ctx, Run, Event], bool] | None = None
    count: int = 1

    def find(self, c: Ctx, r: Run) -> list[Event]:
        about = self.about(c, r) if self.about is not None else None
        return [
            e
            for e in r.events
            if e.get("type") in self.types
            and (self.decision is None or e.get("decision") == self.decision)
            and (self.op is None or e.get("op") == self.op)
            and (not self.syscalls or e.get("syscall") in self.syscalls)
            and (self.rule is None or e.get("rule") in _alternatives(self.rule))
            and (self.rule_has is None or self.rule_has in str(e.get("rule")))
            and (about is None or _names(e, about))
            and (self.where is None or self.where(c, r, e))
        ]

    def describe(self, c: Ctx, r: Run) -> str:
        parts = [f"type in {self.types}"]
        for key in ("decision", "op", "rule", "rule_has"):
            if getattr(self, key) is not None:
                parts.append(f"{key}={getattr(self, key)!r}")
        if self.syscalls:
            parts.append(f"syscall in {self.syscalls}")
        if self.about is not None:
            parts.append(f"about {self.about(c, r)!r}")
        return ", ".join(parts) + (f" (x{self.count})" if self.count > 1 else "")


_PATH_FIELDS = ("path", "resolved", "dest", "target")
_OWN_FIELDS = {"seq", "ts", "session", "cell", "pid", "ppid", "tid", "exit_code", "errno"}


def _alternatives(rule: str | tuple[str, ...]) -> tuple[str, ...]:
    return (rule,) if isinstance(rule, str) else rule


def _ip(text: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address in any spelling; an IPv4-mapped IPv6 address as its IPv4."""
    try:
        ip = ipaddress.ip_address(str(text))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _names(e: Event, about: Any) -> bool:
    if isinstance(about, list):
        return any(_names(e, a) for a in about)
    if isinstance(about, Net):
        wanted = {_ip(a) for a in about.addrs}
        return _ip(e.get("addr")) in wanted and e.get("port") == about.port
    if isinstance(about, int):
        return any(_is_pid(v, about) for k, v in e.items() if k not in _OWN_FIELDS)
    return any(e.get(k) == str(about) for k in _PATH_FIELDS)


def _is_pid(value: object, pid: int) -> bool:
    """The value names the pid: as itself, its process group (-pid), either
    as text, or inside a list (e.g. the members of a signalled group)."""
    if isinstance(value, list):
        return any(_is_pid(v, pid) for v in value)
    if isinstance(value, bool):
        return False
    return value in (pid, -pid, str(pid), str(-pid))


def denied_file(about: Callable[[Ctx, Run], Any], **kw: Any) -> Expect:
    return Expect(("file",), about=about, **kw)


def blocked(syscall: str) -> Expect:
    """A syscall the kernel filter refuses, audited by the supervisor."""
    return Expect(("syscall_blocked",), syscalls=(syscall,))


def _socket_of(family: str, protocol: str | None) -> Callable[[Ctx, Run, Event], bool]:
    """The refusal names the family (and the netlink protocol) by name."""

    def where(c: Ctx, r: Run, e: Event) -> bool:
        named = e.get("family") == family and e.get("rule") == "seccomp-blocklist"
        return named and (protocol is None or e.get("protocol") == protocol)

    return where


def _field(name: str, value: Any) -> Callable[[Ctx, Run, Event], bool]:
    return lambda c, r, e: e.get(name) == value


def _argv0_is(name: str) -> Callable[[Ctx, Run, Event], bool]:
    return lambda c, r, e: str(e.get("argv0_is", "")).endswith("/" + name)


def _runs_id_via_ldso(c: Ctx, r: Run, e: Event) -> bool:
    """ld.so was exec'd, and /usr/bin/id is what it would run."""
    return e.get("via") == "ld.so" and str(e.get("runs", "")).endswith("/id")


def _key(c: Ctx, r: Run) -> Path:
    return c.key


CREDENTIALS = denied_file(_key, rule="credentials")


def openat2_denied(c: Ctx, r: Run, e: Event) -> bool:
    """Refused in the kernel filter, or decided and named the key."""
    return e["type"] == "syscall_blocked" or _names(e, c.key)


OPENAT2_DENIED = Expect(("file", "syscall_blocked"), syscalls=("openat2",), where=openat2_denied)


def _capability(c: Ctx, r: Run, e: Event) -> bool:
    return e.get("xattr") == "security.capability" and e.get("path") == str(c.ws / "capable")


def _workspace(c: Ctx, r: Run, e: Event) -> bool:
    return str(e.get("path", "")).startswith(f"{c.ws}/")


def hidden_token(c: Ctx, r: Run, e: Event) -> bool:
    """The start event's hidden_env, or a dedicated deny event naming it."""
    if TOKEN_NAME in (e.get("hidden_env") or []):
        return True
    return e.get("decision") == "deny" and TOKEN_NAME in json.dumps(e)


def _cap_sets(r: Run) -> dict[str, int]:
    return {k: int(v, 16) for k, v in results(r).items() if k.startswith("Cap")}


def _own_bounding() -> int:
    """The bounding set of this (unsandboxed) test process: what any
    process the test starts gets, and what root keeps from it is the kept set."""
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("CapBnd:")).split()[1], 16)


def only_kept_capabilities(c: Ctx, r: Run) -> None:
    """Root holds exactly the kept set in every set but the inheritable and
    ambient ones (empty); uid 65534 holds what it holds without the sandbox:
    nothing, and the bounding set it started with (no_new_privs keeps an
    exec from using it)."""
    got = _cap_sets(r)
    assert len(got) == 5, f"the program did not report its capability sets:\n{r.stdout}"
    if c.user.name == "root":
        kept = wrapper.KEPT_MASK & _own_bounding()
        want = {"CapInh": 0, "CapPrm": kept, "CapEff": kept, "CapBnd": kept, "CapAmb": 0}
    else:
        want = {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": _own_bounding(), "CapAmb": 0}
    wrong = {k: f"{got[k]:#x}, not {v:#x}" for k, v in want.items() if got[k] != v}
    assert not wrong, f"capability sets in the sandbox: {wrong}"


def kept_capabilities_named(c: Ctx, r: Run, e: Event) -> bool:
    """The start event names root's kept capabilities, and none for uid 65534."""
    if e.get("op") != "start":
        return False
    if c.user.name == "root":
        return e.get("capabilities") == caps.kept()
    return "capabilities" not in e


def not_immutable(c: Ctx, r: Run) -> None:
    fd = os.open(c.allowed, os.O_RDONLY)
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, 0x80086601, bytes(8)))[0]  # FS_IOC_GETFLAGS
    finally:
        os.close(fd)
    assert not flags & 0x10, f"{c.allowed} became immutable ({flags:#x})"  # FS_IMMUTABLE_FL


# ---------------------------------------------------------------------------
# policies for the cases that need one (appended to tests.conftest's
# TEST_POLICY: workspace read-write, /dev/null etc., everything else
# read-only)

NO_ID = "command_rules:\n  - {name: no-id, commands: [/usr/bin/id, id], decision: deny}\n"


def dev_server(c: Ctx) -> str:
    port = c.tcp("allowed").port
    return (
        "network_rules:\n"
        f"  - {{name: dev-server, cidrs: [127.0.0.1/32], ports: [{port}], decision: allow}}\n"
    )


def no_db(c: Ctx) -> str:
    """A deny for one IPv4 host, then a broad IPv6 allow: the mapped form of
    the denied host is an IPv6 address inside ::/0."""
    port = c.tcp("allowed").port
    return (
        "network_rules:\n"
        "  - {name: no-db, cidrs: [127.0.0.3/32], decision: deny}\n"
        f"  - {{name: dev-server, cidrs: [127.0.0.1/32], ports: [{port}], decision: allow}}\n"
        "  - {name: any-v6, cidrs: ['::/0'], decision: allow}\n"
    )


def udp_allowed(c: Ctx) -> str:
    port = c.udp("allowed").port
    return (
        "network_rules:\n"
        f"  - {{name: dev-server, cidrs: [127.0.0.1/32], ports: [{port}], decision: allow}}\n"
    )


def no_agent(c: Ctx) -> str:
    """The agent's socket denied by name; the control socket named, allowed:
    an outside socket is reachable only where a rule names it."""
    return (
        "unix_socket_rules:\n"
        f"  - {{name: no-agent, paths: ['{c.unix('denied').path}'], decision: deny}}\n"
        f"  - {{name: control, paths: ['{c.unix('allowed').path}'], decision: allow}}\n"
    )


def whole_area(c: Ctx) -> str:
    root = c.area.root
    return (
        f"  - {{name: whole-area, paths: ['{root}', '{root}/**'], operations: ['*'],"
        " decision: allow}\n"
    )


FORK_LIMIT = "limits:\n  max_processes: 20\n"
ACL = "system.posix_acl_access"
USER_XATTR = "user.agentsh-escape"

# HOME is writable (say, the notebook lives there), its .ssh is not. Landlock
# can only allow trees, so it cannot carve .ssh out of an allowed HOME: the
# supervisor's own decision is all that stands between the program and the
# key. A complete policy (it starts with "version:"), not an extension.
HOME_RW = """\
version: 1
name: home-rw
file_rules:
  - name: credentials
    paths: ["${HOME}/.ssh", "${HOME}/.ssh/**"]
    operations: ["*"]
    decision: deny
  - name: home-and-workspace
    paths: ["${HOME}", "${HOME}/**", "${WORKSPACE}", "${WORKSPACE}/**"]
    operations: ["*"]
    decision: allow
  - name: devices
    paths: ["/dev/null", "/dev/tty", "/dev/pts/**"]
    operations: [read, write, create]
    decision: allow
  - name: read-only
    paths: ["/", "/**"]
    operations: [read]
    decision: allow
"""


# ---------------------------------------------------------------------------
# the threats


@dataclass(frozen=True)
class Case:
    name: str
    program: str
    argv: Callable[[Ctx], Sequence[str]] = lambda c: ()
    policy: Callable[[Ctx], str] | None = None  # None: the built-in default policy
    effect: Sequence[Check] = ()
    audit: Sequence[Expect] = ()
    raw: bool = False  # the program uses x86_64 syscall numbers
    slow: bool = False
    # Who the program really escapes as when run WITHOUT the sandbox; empty
    # when it cannot (then no_baseline says why).
    baseline: tuple[str, ...] = ("root", "nobody", "self")
    no_baseline: str = ""
    kernel: tuple[int, int] = (0, 0)  # the oldest Linux that has the calls it makes


def args(*fixed: str) -> Callable[[Ctx], Sequence[str]]:
    return lambda c: fixed


def with_outside(variant: str) -> Callable[[Ctx], Sequence[str]]:
    return lambda c: (variant, str(c.outside))


def with_existing(variant: str) -> Callable[[Ctx], Sequence[str]]:
    return lambda c: (variant, str(c.existing))


def and_home_rw(case: Case) -> list[Case]:
    """The case as given, and its twin under HOME_RW (HOME writable by
    policy, .ssh denied), where no Landlock rule can back the decision up."""
    twin = dataclasses.replace(case, name=f"{case.name}-home-rw", policy=lambda c: HOME_RW)
    return [case, twin]


def _outside(name: str) -> Callable[[Ctx, Run], Path]:
    return lambda c, r: c.outside / name


def _existing(c: Ctx, r: Run) -> Path:
    return c.existing


def _loopback(addrs: set[str], listener: Callable[[Ctx], Any]) -> Callable[[Ctx, Run], Net]:
    return lambda c, r: Net(frozenset(addrs), listener(c).port)


# linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH before Linux 6.10, so
# there only root can name an O_TMPFILE by its fd (sandbox or not).
FLINK_USERS = (
    ("root", "nobody", "self")
    if tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2]) >= (6, 10)
    else ("root",)
)
# The default policy's rule for other processes' environments, or the
# supervisor's built-in protection of every outside process's /proc entries,
# which may decide first.
PROC_RULES = ("process-environ", "proc-outside")
SUPERVISOR_ONLY = "it attacks the supervisor, which exists only inside the sandbox"
SIGNAL_METHODS = {  # signal_kill.py method -> the syscalls its audit event may name
    "kill": ("kill",),
    "tkill": ("tkill",),
    "tgkill": ("tgkill",),
    "pidfd": ("pidfd_send_signal", "pidfd_open"),
    "sigqueue": ("rt_sigqueueinfo",),
    "pgrp": ("kill",),  # kill(-pgid): a group that holds the target
}


def race_args(c: Ctx) -> Sequence[str]:
    # the allowed file, and seconds of racing: a race that wins at all wins
    # within thousands of tries, far under a second without the sandbox
    return (str(c.allowed), "2")


MAPPED_DB = {"127.0.0.3"}  # matches ::ffff:127.0.0.3 in any spelling


def _db(c: Ctx) -> Any:
    return c.tcp("db", "127.0.0.3")


def _v6(c: Ctx) -> Any:
    return c.tcp("v6", "::1")


def _denied_udp(c: Ctx) -> Any:
    return c.udp("denied")


def _tcp_args(other: Callable[[Ctx], Any]) -> Callable[[Ctx], Sequence[str]]:
    return lambda c: (str(c.tcp("allowed").port), str(other(c).port))


def _udp_args(variant: str | None = None) -> Callable[[Ctx], Sequence[str]]:
    pre = () if variant is None else (variant,)
    return lambda c: (*pre, str(c.udp("allowed").port), str(c.udp("denied").port))


def _unix_args(variant: str) -> Callable[[Ctx], Sequence[str]]:
    return lambda c: (variant, str(c.unix("denied").path), str(c.unix("allowed").path))


CASES: list[Case] = [
    # -- reading the SSH key (default policy: rule "credentials") ------------
    *and_home_rw(
        Case("read-direct", "read_direct.py", effect=[refused("open")], audit=[CREDENTIALS])
    ),
    *and_home_rw(
        Case("read-via-symlink", "read_symlink.py", effect=[refused("open")], audit=[CREDENTIALS])
    ),
    Case(
        "read-via-hardlink",
        "read_hardlink.py",
        effect=[refused("link", "open"), missing(lambda c: c.ws / "notes.txt")],
        audit=[denied_file(_key, op="link", rule="credentials")],
    ),
    *[
        Case(
            f"read-proc-{x}-root",
            "read_proc_root.py",
            args(x),
            effect=[refused("open")],
            audit=[CREDENTIALS],
        )
        for x in ("self", "thread-self", "pid")
    ],
    *[
        case
        for x in ("plain", "symlink-hop", "proc-cwd", "relative")
        for case in and_home_rw(
            Case(
                f"read-dotdot-{x}",
                "read_dotdot.py",
                args(x),
                effect=[refused("open")],
                audit=[CREDENTIALS],
            )
        )
    ],
    *[
        case
        for x in ("no-symlinks", "beneath", "in-root")
        for case in and_home_rw(
            Case(
                f"read-openat2-{x}",
                "read_openat2.py",
                args(x),
                effect=[refused("openat2")],
                audit=[OPENAT2_DENIED],
                raw=True,
            )
        )
    ],
    *[
        case
        for x in ("openat", "proc-fd", "fchdir")
        for case in and_home_rw(
            Case(
                f"read-dirfd-{x}",
                "read_dirfd.py",
                args(x),
                effect=[refused("open")],
                audit=[CREDENTIALS],
            )
        )
    ],
    Case(
        "read-after-renaming-ssh-away",
        "read_renamed_dir.py",
        effect=[refused("rename-dir", "open-moved", "rename-key", "open-stolen")],
        audit=[
            # ~/.ssh holds a protected entry (.ssh/rc): the protected set,
            # which comes before the policy's rules, refuses the rename first
            denied_file(lambda c, r: c.ssh, op="rename", rule="protected:shell-startup"),
            denied_file(_key, op="rename", rule="credentials"),
        ],
    ),
    Case(
        "read-open-by-handle",
        "read_open_by_handle.py",
        effect=[refused("open_by_handle_at")],
        audit=[blocked("open_by_handle_at")],
        raw=True,
        baseline=("root",),  # needs CAP_DAC_READ_SEARCH, sandbox or not
    ),
    *and_home_rw(
        Case(
            "race-path-buffer-swap",
            "race_path_swap.py",
            race_args,
            effect=[race_lost],
            audit=[CREDENTIALS],
            slow=True,
        )
    ),
    *and_home_rw(
        Case(
            "race-symlink-swap",
            "race_symlink_swap.py",
            race_args,
            effect=[race_lost],
            audit=[CREDENTIALS],
            slow=True,
        )
    ),
    Case(
        "read-via-io-uring",
        "io_uring_read.py",
        effect=[refused("setup")],
        audit=[blocked("io_uring_setup")],
        raw=True,
    ),
    # -- writing outside the workspace (default policy: "default:file") ------
    Case(
        "write-rename-out",
        "write_rename.py",
        lambda c: (str(c.outside),),
        effect=[refused("rename"), present(lambda c: c.ws / "payload")],
        audit=[denied_file(_outside("moved"), op="rename", rule="default:file")],
    ),
    Case(
        "write-rename-exchange",
        "write_rename_exchange.py",
        lambda c: (str(c.existing),),
        effect=[refused("exchange")],
        audit=[denied_file(_existing, op="rename", rule="default:file")],
        raw=True,
    ),
    Case(
        "write-hardlink-out",
        "write_link.py",
        lambda c: (str(c.outside),),
        effect=[refused("link")],
        audit=[denied_file(_outside("linked"), op="link", rule="default:file")],
    ),
    Case(
        "write-tmpfile-linkat-empty-path",
        "write_tmpfile.py",
        with_outside("ws-empty-path"),
        effect=[said("tmpfile", "ok"), refused("linkat")],
        audit=[denied_file(_outside("from-tmpfile"), op="link", rule="default:file")],
        raw=True,
        baseline=FLINK_USERS,
    ),
    Case(
        "write-tmpfile-linkat-proc-fd",
        "write_tmpfile.py",
        with_outside("ws-proc-fd"),
        effect=[said("tmpfile", "ok"), refused("linkat")],
        audit=[denied_file(_outside("from-tmpfile"), op="link", rule="default:file")],
        raw=True,
    ),
    Case(
        "write-tmpfile-in-outside-dir",
        "write_tmpfile.py",
        with_outside("outside-dir"),
        effect=[refused("tmpfile")],
        audit=[denied_file(lambda c, r: [c.outside, c.outside / "from-tmpfile"])],
        raw=True,
    ),
    Case(
        "write-via-symlink-create",
        "write_symlink_out.py",
        with_outside("create"),
        effect=[refused("write")],
        audit=[denied_file(_outside("via-symlink"), rule="default:file")],
    ),
    Case(
        "write-via-symlink-existing",
        "write_symlink_out.py",
        with_outside("existing"),
        effect=[refused("write")],
        audit=[denied_file(_existing, op="write", rule="default:file")],
    ),
    *[
        Case(
            f"write-truncate-{x}",
            "write_truncate.py",
            with_existing(x),
            effect=[refused("truncate")],
            audit=[denied_file(_existing, op="write", rule="default:file")],
            raw=True,
        )
        for x in ("truncate", "o-trunc", "creat")
    ],
    *[
        Case(
            f"write-chmod-{x}",
            "write_chmod.py",
            with_existing(x),
            effect=[refused("chmod")],
            audit=[denied_file(_existing, op="chmod", rule="default:file")],
            raw=True,
        )
        for x in ("chmod", "fchmod", "fchmodat", "symlink")
    ],
    *[
        Case(
            f"write-{x}-fd-dir",
            "write_proc_fd_dir.py",
            with_outside(x),
            effect=[refused("create")],
            audit=[denied_file(_outside("planted"), rule="default:file")],
        )
        for x in ("proc", "dev")
    ],
    Case(
        # The policy allows every write in the scratch area; the audit log
        # and the policy file must stay protected anyway (README).
        "forge-audit-log",
        "forge_audit.py",
        lambda c: (str(c.area.audit), str(c.policy_path)),
        policy=whole_area,
        effect=[
            refused("append", "append-via-symlink", "truncate", "rename", "unlink", "policy"),
            audit_intact,
            policy_intact,
        ],
        audit=[
            denied_file(lambda c, r: c.area.audit, op="write", count=3),
            denied_file(lambda c, r: c.area.audit, op="rename"),
            denied_file(lambda c, r: c.area.audit, op="delete"),
            denied_file(lambda c, r: c.policy_path, op="write"),
        ],
    ),
    # -- running a denied program (policy: no-id denies /usr/bin/id and id) --
    *[
        Case(
            f"exec-execveat-{x}",
            "exec_execveat.py",
            args(x),
            policy=lambda c: NO_ID,
            effect=[absent("uid="), refused("exec")],
            audit=[Expect(("exec",), rule="no-id", syscalls=("execveat",))],
            raw=True,
        )
        for x in ("empty-path", "dirfd")
    ],
    *[
        Case(
            f"exec-{x}",
            "exec_fexecve.py",
            args(x),
            policy=lambda c: NO_ID,
            effect=[absent("uid="), refused("exec")],
            audit=[Expect(("exec",), rule="no-id")],
        )
        for x in ("fexecve", "proc-fd", "dev-fd")
    ],
    Case(
        "exec-copy-same-name",
        "exec_copy.py",
        args("id"),
        policy=lambda c: NO_ID,
        effect=[absent("uid="), refused("exec")],
        audit=[Expect(("exec",), rule="no-id", about=lambda c, r: c.ws / "id")],
    ),
    Case(
        # A renamed copy matches neither "id" nor "/usr/bin/id": it is
        # decided by its content, as the program it is a copy of.
        "exec-copy-renamed",
        "exec_copy.py",
        args("innocent"),
        policy=lambda c: NO_ID,
        effect=[absent("uid="), refused("exec")],
        audit=[
            Expect(
                ("exec",),
                rule="no-id",
                about=lambda c, r: c.ws / "innocent",
                where=_field("same_content_as", "/usr/bin/id"),
            )
        ],
    ),
    Case(
        # Execute-only: a supervisor that is not root cannot read it to
        # compare, and refuses a file of a named program's size unread.
        "exec-copy-execute-only",
        "exec_copy.py",
        args("innocent", "111"),
        policy=lambda c: NO_ID,
        effect=[absent("uid="), refused("exec")],
        audit=[
            Expect(
                ("exec",),
                rule=("no-id", "exec-unreadable"),
                about=lambda c, r: c.ws / "innocent",
            )
        ],
    ),
    *[
        Case(
            f"exec-ldso-{x}",
            "exec_ldso.py",
            args(x),
            policy=lambda c: NO_ID,
            effect=[absent("uid="), refused("exec")],
            audit=[Expect(("exec",), rule="no-id", where=_runs_id_via_ldso)],
        )
        for x in ("plain", "options", "relative", "loader-copy")
    ],
    *[
        Case(
            f"exec-memfd-{x}",
            "exec_memfd.py",
            args(x),
            policy=lambda c: NO_ID,
            effect=[absent("uid="), absent("ran-from-memfd"), refused("exec")],
            audit=[Expect(("exec",), rule=rule, where=where)],
        )
        for x, rule, where in (
            ("id", "no-id", _field("same_content_as", "/usr/bin/id")),
            ("id-proc-fd", "no-id", _field("same_content_as", "/usr/bin/id")),
            ("id-link", "no-id", _field("same_content_as", "/usr/bin/id")),
            ("echo", "exec-no-file", _field("no_file", True)),
        )
    ],
    *[
        Case(
            f"exec-script-{x}",
            "exec_script.py",
            args(x),
            policy=lambda c: NO_ID,
            effect=[absent("uid="), refused("exec")],
            audit=[Expect(("exec",), rule="no-id", where=lambda c, r, e: "interpreter" in e)],
        )
        for x in ("direct", "nested", "copy")
    ],
    Case(
        # xz run as "unxz": a multi-call program does what argv[0] names.
        "exec-argv0-multi-call",
        "exec_argv0.py",
        policy=lambda c: "command_rules:\n  - {name: no-unxz, commands: [unxz], decision: deny}\n",
        effect=[said("data", "absent"), refused("exec")],
        audit=[Expect(("exec",), rule="no-unxz", where=_argv0_is("unxz"))],
    ),
    Case(
        # The copy is swapped between the decision and the exec: what the
        # kernel mapped is checked again at the exec event, and killed.
        "exec-race-rewritten-copy",
        "exec_race.py",
        args("2"),
        policy=lambda c: NO_ID,
        effect=[absent("uid="), exec_race_ran],
        audit=[Expect(("exec",), rule="no-id")],
        slow=True,
    ),
    # -- attacking the supervisor (found as the agentsh_ipy.cli ancestor) ----
    Case(
        "ptrace-attach-supervisor",
        "ptrace_supervisor.py",
        effect=[said("attach", *PERM), said("seize", *PERM), PROBE_DENIED],
        audit=[blocked("ptrace")],
        raw=True,
        baseline=(),
        no_baseline=SUPERVISOR_ONLY,
    ),
    *[
        Case(
            f"process-vm-{x}-supervisor",
            "process_vm_supervisor.py",
            args(x),
            effect=[said(x, *PERM), PROBE_DENIED],
            audit=[blocked(f"process_vm_{x}")],
            raw=True,
            baseline=(),
            no_baseline=SUPERVISOR_ONLY,
        )
        for x in ("readv", "writev")
    ],
    Case(
        "pidfd-getfd-supervisor",
        "pidfd_getfd_supervisor.py",
        effect=[no_theft, said("getfd", *PERM), PROBE_DENIED],
        audit=[blocked("pidfd_getfd")],
        raw=True,
        baseline=(),
        no_baseline=SUPERVISOR_ONLY,
    ),
    *[
        Case(
            f"signal-supervisor-{x}",
            "signal_kill.py",
            args("supervisor", x),
            effect=[refused("signal"), PROBE_DENIED],
            audit=[Expect(("signal",), syscalls=calls, about=lambda c, r: supervisor(r))],
            raw=True,
            baseline=(),
            no_baseline=SUPERVISOR_ONLY,
        )
        for x, calls in SIGNAL_METHODS.items()
    ],
    Case(
        "supervisor-environ",
        "supervisor_environ.py",
        effect=[refused("environ", "task-environ"), PROBE_DENIED],
        audit=[
            denied_file(lambda c, r: f"/proc/{supervisor(r)}/environ", rule=PROC_RULES),
            denied_file(
                lambda c, r: f"/proc/{supervisor(r)}/task/{supervisor(r)}/environ",
                rule=PROC_RULES,
            ),
        ],
        baseline=(),
        no_baseline=SUPERVISOR_ONLY,
    ),
    Case(
        "supervisor-mem",
        "supervisor_mem.py",
        effect=[refused("mem-read", "mem-write"), absent("found:"), PROBE_DENIED],
        audit=[denied_file(lambda c, r: f"/proc/{supervisor(r)}/mem", count=2)],
        baseline=(),
        no_baseline=SUPERVISOR_ONLY,
    ),
    Case(
        "supervisor-fds",
        "supervisor_fds.py",
        effect=[nothing_written, audit_intact, PROBE_DENIED],
        audit=[Expect(("file",), where=lambda c, r, e: _under_proc_of(e, supervisor(r)))],
        baseline=(),
        no_baseline=SUPERVISOR_ONLY,
    ),
    # -- what no rule looked at (issue 17): metadata, mknod, host IPC -------
    # An ACL is a chmod, a user xattr a write, inode flags a chmod: decided
    # by the file rules (HOME_RW: no Landlock rule covers xattrs anyway).
    *and_home_rw(
        Case(
            "metadata-acl-on-the-key",
            "metadata_outside.py",
            lambda c: ("acl", str(c.key)),
            effect=[said("setxattr", "EACCES"), no_xattr(lambda c: c.key, ACL)],
            audit=[denied_file(_key, op="chmod", rule="credentials", syscalls=("setxattr",))],
        )
    ),
    Case(
        "metadata-user-xattr-by-readonly-fd",
        "metadata_outside.py",
        with_existing("fd-user"),
        effect=[said("setxattr", "EACCES"), no_xattr(lambda c: c.existing, USER_XATTR)],
        audit=[denied_file(_existing, op="write", rule="default:file", syscalls=("fsetxattr",))],
    ),
    Case(
        "metadata-inode-flags-by-readonly-fd",
        "inode_flags.py",
        lambda c: (str(c.existing),),
        effect=[said("setflags", "EACCES"), no_nodump_flag],
        audit=[denied_file(_existing, op="chmod", rule="default:file", syscalls=("ioctl",))],
    ),
    Case(
        "metadata-file-capability-in-workspace",
        "metadata_workspace.py",
        args("capability"),
        effect=[
            said("capability", *NOT_SUPPORTED),
            no_xattr(lambda c: c.ws / "capable", "security.capability"),
        ],
        audit=[Expect(("syscall_blocked",), syscalls=("setxattr",), where=_capability)],
        baseline=("root",),  # CAP_SETFCAP
        no_baseline="only root may set a file capability, sandbox or not",
    ),
    Case(
        "metadata-workspace-still-allowed",
        "metadata_workspace.py",
        args("control"),
        effect=[works("user-xattr", "user-xattr-fd", "acl", "noatime", "chattr", "by-fd", "cp-a")],
        audit=[
            Expect(("file",), "allow", "chmod", ("setxattr",), where=_workspace),
            Expect(("file",), "allow", "write", ("setxattr",), where=_workspace),
            Expect(("file",), "allow", "write", ("fsetxattr",), where=_workspace),
            Expect(("file",), "allow", "chmod", ("ioctl",), where=_workspace),
            Expect(("file",), "allow", "chmod", ("fchmod",), where=_workspace),
            Expect(("file",), "allow", "write", ("utimensat",), where=_workspace),
        ],
        baseline=(),
        no_baseline="a control: these changes are allowed, sandbox or not",
    ),
    *[
        Case(
            f"race-fd-swap-{x}",
            "race_fd_swap.py",
            lambda c, x=x: (x, str(c.allowed), str(c.existing), "2"),
            effect=[changed_some, no_xattr(lambda c: c.existing, USER_XATTR)],
            audit=[denied_file(_existing, op=op, rule="default:file", syscalls=(x,))],
            slow=True,
        )
        for x, op in (("fchmod", "chmod"), ("fsetxattr", "write"))
    ],
    Case(
        # An fd's /proc link whose file has no name (a pipe) is reopened
        # through the supervisor's own copy of the fd: a dup2() of an
        # outside file onto the number after the decision is not reached.
        "race-fd-swap-reopen",
        "race_fd_swap.py",
        lambda c: ("reopen", str(c.allowed), str(c.existing), "2"),
        # the pipe's reopen is allowed (the default policy allows none)
        policy=lambda c: (
            "  - {name: fd-reopen, paths: ['/proc/*/fd/*'], operations: [write], decision: allow}\n"
        ),
        effect=[changed_some, nothing_written, content_kept],
        audit=[denied_file(_existing, op="write", rule="default:file")],
        slow=True,
    ),
    # setxattrat/removexattrat (6.13) and file_setattr (6.17): the same decisions
    Case(
        "metadata-setxattrat-outside",
        "metadata_outside.py",
        with_existing("at-user"),
        effect=[said("setxattrat", "EACCES"), no_xattr(lambda c: c.existing, USER_XATTR)],
        audit=[denied_file(_existing, op="write", rule="default:file", syscalls=("setxattrat",))],
        raw=True,
        kernel=(6, 13),
    ),
    Case(
        "metadata-file-setattr-outside",
        "metadata_outside.py",
        with_existing("setattr"),
        effect=[said("setattr", "EACCES"), no_nodump_flag],
        audit=[denied_file(_existing, op="chmod", rule="default:file", syscalls=("file_setattr",))],
        raw=True,
        kernel=(6, 17),
    ),
    Case(
        "metadata-at-forms-in-workspace",
        "metadata_workspace.py",
        args("at-forms"),
        effect=[works("xattrat", "xattrat-fd", "file-setattr")],
        audit=[
            Expect(("file",), "allow", "write", ("setxattrat",), where=_workspace, count=2),
            Expect(("file",), "allow", "write", ("removexattrat",), where=_workspace, count=2),
            Expect(("file",), "allow", "chmod", ("file_setattr",), where=_workspace, count=2),
        ],
        raw=True,
        kernel=(6, 17),
        baseline=(),
        no_baseline="a control: these changes are allowed, sandbox or not",
    ),
    *[
        Case(
            f"metadata-times-{x}",
            "times_outside.py",
            with_existing(x),
            effect=[refused("times"), mtime_kept],
            audit=[denied_file(_existing, op="write", rule="default:file")],
            raw=True,
        )
        for x in ("utimensat", "futimens", "utimes", "utime")
    ],
    Case(
        "mknod-socket-in-ssh",
        "mknod_outside.py",
        lambda c: ("sock", str(c.ssh / "agent.sock")),
        effect=[refused("mknod")],
        audit=[denied_file(lambda c, r: c.ssh / "agent.sock", op="create", rule="credentials")],
    ),
    Case(
        "mknod-fifo-outside",
        "mknod_outside.py",
        lambda c: ("fifo", str(c.outside / "fifo")),
        effect=[refused("mknod")],
        audit=[denied_file(_outside("fifo"), op="create", rule="default:file")],
    ),
    Case(
        "mknod-device-node",
        "mknod_outside.py",
        lambda c: ("chr", str(c.ws / "null-dev")),
        effect=[said("mknod", "EPERM"), missing(lambda c: c.ws / "null-dev")],
        audit=[
            Expect(
                ("syscall_blocked",),
                syscalls=("mknod", "mknodat"),
                about=lambda c, r: c.ws / "null-dev",
            )
        ],
        baseline=("root",),  # CAP_MKNOD, sandbox or not
    ),
    Case(
        "sysv-shm-of-the-host",
        "sysv_shm.py",
        lambda c: (hex(c.shm()),),
        effect=[refused("shmget")],
        audit=[blocked("shmget")],
    ),
    Case(
        "sethostname-in-own-uts-namespace",
        "sethostname_uts.py",
        effect=[said("sethostname", "EPERM")],
        audit=[blocked("sethostname")],
        baseline=("root",),  # unshare(CLONE_NEWUTS) needs CAP_SYS_ADMIN
    ),
    # -- terminals (issue 17): another terminal's input; a pty made inside ---
    Case(
        "terminal-of-another-session",
        "other_terminal.py",
        lambda c: ("read", c.terminal()),
        effect=[refused("open")],
        audit=[denied_file(lambda c, r: c.terminal(), op="read", rule="other-terminal")],
    ),
    Case(
        "terminal-made-inside-still-works",
        "other_terminal.py",
        args("own"),
        effect=[
            works("openpty", "reopen", "child"),
            said("script", "ok", "absent"),
            no_terminal_denied,
        ],
        baseline=(),
        no_baseline="a control: a pty of its own works, sandbox or not",
    ),
    # -- socket families the address decisions never see (refused at socket())
    *[
        Case(
            f"socket-{x}",
            "socket_families.py",
            args(x),
            effect=[said(label, "EPERM") for label in labels],
            audit=[
                Expect(("syscall_blocked",), syscalls=("socket",), where=_socket_of(family, proto))
                for family, proto in audit
            ],
            baseline=users,  # packet and raw sockets need CAP_NET_RAW, sandbox or not
        )
        for x, labels, audit, users in (
            (
                "packet",
                ("packet", "packet-dgram"),
                [("AF_PACKET", None)],
                ("root",),
            ),
            ("raw", ("raw", "raw6"), [("AF_INET", None), ("AF_INET6", None)], ("root",)),
            (
                "netlink",
                ("netlink-audit", "netlink-generic"),
                [("AF_NETLINK", "NETLINK_AUDIT"), ("AF_NETLINK", "NETLINK_GENERIC")],
                ("root", "nobody", "self"),
            ),
        )
    ],
    Case(
        "socket-families-still-allowed",
        "socket_families.py",
        args("control"),
        effect=[
            works(
                "inet-stream",
                "inet-dgram",
                "inet6-stream",
                "inet6-dgram",
                "unix",
                "socketpair",
                "netlink-route",
                "getaddrinfo",
                "if_nameindex",
            ),
            no_socket_refused,
        ],
        baseline=(),
        no_baseline="a control: these sockets are allowed, sandbox or not",
    ),
    Case(
        "syscall-unknown-numbers",
        "unknown_syscall.py",
        args("400", "1000"),
        # ENOSYS, as the kernel would say: the audit is what shows the refusal
        effect=[said("nr400", "ENOSYS"), said("nr1000", "ENOSYS")],
        audit=[blocked("syscall_400"), blocked("syscall_1000")],
        raw=True,
        baseline=(),
        no_baseline="no effect to show: the kernel has no such call (ENOSYS)",
    ),
    # -- leaving the tree: a child ptrace does not follow ---------------------
    Case(
        "clone-untraced-outlives-the-command",
        "clone_untraced.py",
        lambda c: (str(c.ws / "late-marker"),),
        effect=[said("clone", "EPERM"), nothing_outlived],
        audit=[blocked("clone")],
        raw=True,
        slow=True,
    ),
    # -- namespaces and mounts (refused in the kernel filter) ----------------
    *[
        Case(
            f"userns-{x}",
            "unshare_userns.py",
            args(x),
            effect=[said("userns", "EPERM")],
            audit=[blocked("clone" if x == "clone" else "unshare")],
            raw=True,
        )
        for x in ("unshare", "unshare-net", "clone")
    ],
    Case(
        "mount-tmpfs",
        "mount_over.py",
        effect=[said("mount", "EPERM"), said("fsopen", "EPERM")],
        audit=[blocked("mount"), blocked("fsopen")],
        raw=True,
    ),
    # -- sub-commands that reach outside (issue 17 item 1) --------------------
    *[
        Case(
            f"sigio-owner-{x}",
            "subcommands.py",
            lambda c, x=x: (x, str(c.victim().pid)),
            effect=[said("owner", "EPERM"), victim_alive],
            audit=[
                Expect(
                    ("syscall_blocked",),
                    syscalls=(call,),
                    about=lambda c, r: c.victim().pid,
                    where=_event_has(key, value),
                )
            ],
        )
        for x, call, key, value in (
            ("setown", "fcntl", "command", "F_SETOWN"),
            ("setown-group", "fcntl", "command", "F_SETOWN"),
            ("fiosetown", "ioctl", "request", "FIOSETOWN"),
        )
    ],
    Case(
        "lease-outside",
        "subcommands.py",
        lambda c: ("setlease", str(c.existing)),
        effect=[said("setlease", "EPERM")],
        audit=[blocked_as("fcntl", "command", "F_SETLEASE")],
    ),
    Case(
        "reroute-by-options",  # loopback only: 127.0.0.1, through 127.0.0.2
        "subcommands.py",
        args("reroute"),
        effect=[
            said("ip_options", "ENOPROTOOPT"),
            said("retopts", "EINVAL"),
            said("pktinfo", "EINVAL"),
        ],
        audit=[
            blocked_as("setsockopt", "option", "IP_OPTIONS"),
            blocked_as("sendmsg", "cmsg", "IP_RETOPTS"),
            blocked_as("sendmsg", "cmsg", "IP_PKTINFO"),
        ],
    ),
    *[
        Case(
            f"namespace-{x}",  # the program's own namespace: the host is never touched
            "subcommands.py",
            args(x),
            effect=[said("unshare", "EPERM"), hostname_kept],
            audit=[blocked_as("unshare", "namespaces", [ns])],
            baseline=("root",),  # CAP_SYS_ADMIN, sandbox or not
        )
        for x, ns in (("unshare-net", "CLONE_NEWNET"), ("unshare-uts", "CLONE_NEWUTS"))
    ],
    Case(
        "unknown-ioctl-and-prctl",
        "subcommands.py",
        args("unknown"),
        effect=[said("ethtool", "ENOTTY"), said("prctl-unknown", "EINVAL")],
        audit=[
            blocked_as("ioctl", "request", "0x8946"),
            blocked_as("prctl", "option", "0x7fff0000"),
            blocked_as("prctl", "option", "PR_SET_PTRACER"),
        ],
    ),
    # -- network: loopback listeners only; the policy names one port --------
    # (the others are this host's services: closed, rule host-local)
    Case(
        "connect-ipv6-loopback",
        "connect_ipv6.py",
        _tcp_args(_v6),
        policy=dev_server,
        effect=[refused("ipv6"), tcp_untouched("v6")],
        audit=[Expect(("net",), op="connect", rule="host-local", about=_loopback({"::1"}, _v6))],
    ),
    Case(
        "connect-v4-mapped",
        "connect_v4mapped.py",
        _tcp_args(_db),
        policy=dev_server,
        effect=[refused("mapped"), tcp_untouched("db")],
        audit=[Expect(("net",), op="connect", rule="host-local", about=_loopback(MAPPED_DB, _db))],
    ),
    Case(
        # deny 127.0.0.3, allow ::/0: the mapped form must still meet no-db
        "connect-v4-mapped-past-deny-rule",
        "connect_v4mapped.py",
        _tcp_args(_db),
        policy=no_db,
        effect=[refused("mapped"), tcp_untouched("db")],
        audit=[Expect(("net",), op="connect", rule="no-db", about=_loopback(MAPPED_DB, _db))],
    ),
    Case(
        "udp-sendto-unconnected",
        "udp_sendto.py",
        _udp_args(),
        policy=udp_allowed,
        effect=[refused("denied"), udp_untouched("denied")],
        audit=[
            Expect(
                ("net",),
                op="send",
                rule="host-local",
                about=_loopback({"127.0.0.1"}, _denied_udp),
            )
        ],
    ),
    *[
        Case(
            f"udp-{x}-msg-name",
            "udp_sendmsg.py",
            _udp_args(x),
            policy=udp_allowed,
            effect=[refused("denied"), udp_untouched("denied")],
            audit=[
                Expect(
                    ("net",),
                    op="send",
                    syscalls=(x,),
                    rule="host-local",
                    about=_loopback({"127.0.0.1"}, _denied_udp),
                )
            ],
        )
        for x in ("sendmsg", "sendmmsg")
    ],
    *[
        Case(
            f"unix-connect-{x}",
            "unix_connect.py",
            _unix_args(x),
            policy=no_agent,
            effect=[refused("denied"), unix_untouched],
            audit=[
                Expect(
                    ("unix",),
                    op="connect",
                    rule="no-agent",
                    about=lambda c, r: c.unix("denied").path,
                )
            ],
        )
        for x in ("direct", "symlink", "proc-root", "relative")
    ],
    # -- resources, hidden environment, processes outside ---------------------
    Case(
        "fork-bomb",
        "fork_bomb.py",
        args("6"),
        policy=lambda c: FORK_LIMIT,
        effect=[forks_limited],
        audit=[Expect(("syscall_blocked", "process_start"), rule_has="max_processes")],
    ),
    Case(
        "env-secret",
        "env_secret.py",
        effect=[said("has-name", "no")],
        audit=[Expect(("sandbox",), decision=None, where=hidden_token)],
    ),
    *[
        Case(
            f"outside-process-{x}",
            "outside_process.py",
            lambda c, x=x: (x, str(c.victim().pid)),
            effect=[refused("change"), victim_untouched],
            audit=[
                Expect(("syscall_blocked",), syscalls=(call,), about=lambda c, r: c.victim().pid)
            ],
        )
        for x, call in (("prlimit", "prlimit64"), ("setpriority", "setpriority"))
    ],
    Case(
        "prlimit-supervisor",
        "outside_process.py",
        args("prlimit", "supervisor"),
        effect=[refused("change"), PROBE_DENIED],
        audit=[
            Expect(("syscall_blocked",), syscalls=("prlimit64",), about=lambda c, r: supervisor(r))
        ],
        baseline=(),
        no_baseline=SUPERVISOR_ONLY,
    ),
    *[
        Case(
            f"signal-outside-{x}",
            "signal_kill.py",
            lambda c, x=x: (str(c.victim().pid), x),
            effect=[refused("signal"), victim_alive],
            audit=[Expect(("signal",), syscalls=calls, about=lambda c, r: c.victim().pid)],
            raw=True,
        )
        for x, calls in SIGNAL_METHODS.items()
    ],
    # -- what root's capabilities open (issue 17): only the kept set remains --
    Case(
        "capabilities-dropped",
        "capabilities.py",
        effect=[only_kept_capabilities],
        audit=[Expect(("sandbox",), decision=None, where=kept_capabilities_named)],
        baseline=("root",),
        no_baseline="uid 65534 holds no capability: the sandbox has nothing to drop",
    ),
    Case(
        "chattr-immutable-in-workspace",
        "immutable.py",
        lambda c: (str(c.allowed),),
        effect=[refused("chattr"), not_immutable],
        audit=[Expect(("file", "syscall_blocked"), decision=None, syscalls=("ioctl",))],
        baseline=("root",),  # CAP_LINUX_IMMUTABLE
    ),
]


def _under_proc_of(e: Event, pid: int) -> bool:
    return any(str(e.get(k, "")).startswith(f"/proc/{pid}/") for k in _PATH_FIELDS)


def _params(cases: Iterable[Case]) -> list[Any]:
    out = []
    for case in cases:
        marks: list[Any] = []
        if case.slow:
            marks.append(pytest.mark.slow)
        if case.raw and not X86_64:
            marks.append(pytest.mark.skip(reason="the program uses x86_64 syscall numbers"))
        if case.kernel > KERNEL:
            marks.append(pytest.mark.skip(reason="needs Linux {}.{}".format(*case.kernel)))
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


def _outer_answers(case: Case) -> tuple[list[str], list[str]]:
    """The calls the case's audit expects that an outer seccomp filter (a
    container's) answers before the sandbox sees them: (those it answers
    ENOSYS, newer than its profile; those it refuses). Both empty on an
    ordinary run."""
    calls = {s: _host.outer_refusal(s) for e in case.audit for s in e.syscalls}
    newer = sorted(s for s, answer in calls.items() if answer == "ENOSYS")
    refused = sorted(s for s, answer in calls.items() if answer and answer != "ENOSYS")
    return newer, refused


OUTER = "an outer seccomp filter (a container's) "


# ---------------------------------------------------------------------------
# running


def _prepare(case: Case, ctx: Ctx) -> tuple[Path | None, list[str]]:
    policy = None
    if case.policy is not None:
        text = case.policy(ctx)
        if text.startswith("version:"):
            policy = ctx.area.write("policy.yaml", text)
        else:
            policy = write_policy(ctx.area, text)
        ctx.policy_path = policy
    program = program_copy(ctx.area, case.program)
    return policy, [sys.executable, "-I", str(program), *case.argv(ctx)]


def _effects(case: Case, ctx: Ctx, run: Run, before: dict[str, Any]) -> None:
    """Everything that says whether the escape worked (no audit here)."""
    leaks = ctx.leaks(run.stdout, run.stderr)
    assert not leaks, f"a secret leaked to {leaks}:\n{run.stdout}\n{run.stderr}"
    after = ctx.snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed outside the workspace or in HOME: {changed}"
    for check in case.effect:
        check(ctx, run)


def _completed(run: Run) -> None:
    """The supervisor lived to the end and reported the program's own status."""
    assert run.returncode == DONE, (
        f"exit status {run.returncode}, not the program's {DONE}:\n{run.stdout}\n{run.stderr}"
    )
    ends = [e for e in run.of_type("sandbox") if e.get("op") == "end"]
    assert ends, "the audit has no sandbox end event: the supervisor did not finish"
    assert ends[-1].get("exit_code") == DONE


def _brief(run: Run) -> str:
    keep = (
        "type",
        "op",
        "syscall",
        "path",
        "resolved",
        "dest",
        "addr",
        "port",
        "argv",
        "decision",
        "rule",
    )
    lines = [
        json.dumps({k: e[k] for k in keep if k in e})
        for e in run.events
        if e.get("decision") == "deny" or e.get("type") in ("syscall_blocked", "signal")
    ]
    return "\n".join(lines[-40:]) or "(no denials, no blocked syscalls, no signals)"


@pytest.mark.parametrize("case", _params(CASES))
def test_escape(case: Case, world: Ctx, mode: str) -> None:
    # A call the container's filter refuses first is still audited: our
    # filter traps it (SECCOMP_RET_TRAP outranks its ERRNO).
    newer, _ = _outer_answers(case)
    if newer:
        pytest.skip(f"{OUTER}answers {', '.join(newer)} ENOSYS, as a kernel without them would")
    policy, cmd = _prepare(case, world)
    before = world.snapshot()
    run = sandbox(
        world.area,
        cmd,
        policy=policy,
        extra=["--mode", mode],
        env=world.env(),
        timeout=90,
    )
    _completed(run)
    # File rules decided in C unless this run switched the fast path off
    # (CI runs the suite both ways); never a silent fallback.
    start = next(e for e in run.events if e.get("op") == "start")
    assert start.get("fast_path") == _fast.expected(), start
    _effects(case, world, run, before)
    for expect in case.audit:
        found = expect.find(world, run)
        assert len(found) >= expect.count, (
            f"no audit event with {expect.describe(world, run)}; denials and blocks seen:\n"
            + _brief(run)
        )


@pytest.mark.unsandboxed
@pytest.mark.parametrize("case", _params(CASES))
def test_program_escapes_unsandboxed(case: Case, world: Ctx) -> None:
    """The same program WITHOUT the sandbox must trip the effect checks:
    this is what makes a passing test_escape evidence."""
    if world.user.name not in case.baseline:
        pytest.skip(case.no_baseline or f"the program cannot escape as {world.user.name}")
    newer, refused = _outer_answers(case)
    if newer or refused:
        calls = ", ".join(newer + refused)
        pytest.skip(f"{OUTER}refuses {calls}: the program cannot escape here, sandbox or not")
    _, cmd = _prepare(case, world)
    # forge_audit needs a log to forge: a start event as the sandbox writes it
    world.area.audit.write_text('{"seq":1,"type":"sandbox","op":"start"}\n')
    world.area.own(world.area.audit)
    before = world.snapshot()
    start = time.monotonic()
    p = subprocess.run(
        world.user.cmd(cmd),
        cwd=world.ws,
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=90,
        start_new_session=True,
    )
    run = Run(p.returncode, p.stdout, p.stderr, [], time.monotonic() - start)
    assert run.returncode == DONE, f"the program failed on its own:\n{run.stdout}\n{run.stderr}"
    with pytest.raises(AssertionError):
        _effects(case, world, run, before)
