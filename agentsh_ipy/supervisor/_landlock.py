"""The policy as a Landlock ruleset: the only place joining the two.

The seccomp user-notify layer decides each trapped call by the policy, but
after an allow (CONTINUE) the kernel reads the path again, so a racing
thread can swap it. Landlock is checked by the kernel on the object it
actually resolves, so it closes that race for everything Landlock can
express. Two rules shape the ruleset:

* It is a SUPERSET of what the policy allows: an operation the policy
  allows must never be refused by Landlock. Every non-deny file rule
  grants its operations' rights on the rule's literal prefix (the longest
  glob-free leading run of segments of each path glob): ``/w/**`` grants
  on ``/w``, ``/**/.env`` on ``/``. Landlock rules hold for a directory and
  everything beneath it, so this covers every path the glob can match.
* Within that, it closes what it can. Read holes: a deny rule naming a
  literal file (or a literal directory + ``/**``) that lies under a read
  grant is cut out of the read grant: READ_FILE/EXECUTE go to every
  sibling on the way down instead of to the ancestor, while READ_DIR stays
  on the ancestor (listing ``~`` still works, reading ``~/.ssh/id_rsa``
  does not). Holes are never cut out of write grants, and a hole is given
  up where the policy lets the sandbox create entries on the way down
  (those new entries would be unreadable).

What Landlock cannot express stays with the notify layer alone: denies
inside a granted tree that are globs (``/**/.env``), chmod/chown, exec
decisions by command rule, network addresses and UDP, unix sockets by path.

Scopes (ABI 6+) hold two decisions of the policy in the kernel, for the
whole domain: SIGNAL refuses signals to processes outside the domain,
ABSTRACT_UNIX_SOCKET refuses connects and sends to abstract unix sockets
bound outside it. A scope is set only when the policy refuses the same
(see :func:`scopes`) and only when the whole sandbox is ONE domain: each
``landlock_restrict_self`` makes a new domain, so where every launch
restricts itself separately (the ``%%agentsh`` daemon) a process of one
launch is "outside" for the next, while the policy treats the launches of a
session as one sandbox: there the scopes stay off (``one_domain=False``).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .. import policy as pol
from .._linux import landlock as ll
from ..policy._glob import compile_path
from ._launch import LaunchError

Lister = Callable[[str], Iterable[tuple[str, bool]]]
"""``listdir(path)`` -> (entry name, entry is a symlink) for each entry."""

Emit = Callable[..., Any]

# Ports a handled TCP right may list before we give up handling it.
MAX_PORTS = 1024

READ_CONTENT = ll.FS_READ_FILE | ll.FS_EXECUTE  # what a read hole takes away
# Rights that let new entries appear in a directory which would need a read
# grant of their own: a hole below such a directory is given up. (A symlink
# is read through its target; a unix socket is connected, never opened.)
_NEW_READABLE = ll.FS_MAKE_REG | ll.FS_MAKE_DIR | ll.FS_MAKE_FIFO
_DEVICES = ll.FS_MAKE_CHAR | ll.FS_MAKE_BLOCK  # handled, never granted

_MAKE_ANY = ll.FS_MAKE_REG | ll.FS_MAKE_SOCK | ll.FS_MAKE_FIFO | ll.FS_MAKE_SYM
OP_RIGHTS: dict[str, int] = {
    "read": ll.FS_READ_FILE | ll.FS_READ_DIR | ll.FS_EXECUTE,
    # IOCTL_DEV goes with write: an ioctl on a device is a way of writing to it.
    "write": ll.FS_WRITE_FILE | ll.FS_TRUNCATE | ll.FS_IOCTL_DEV,
    "create": _MAKE_ANY,
    "delete": ll.FS_REMOVE_FILE | ll.FS_REMOVE_DIR,
    "mkdir": ll.FS_MAKE_DIR,
    "rename": ll.FS_REFER | ll.FS_REMOVE_FILE | ll.FS_REMOVE_DIR | ll.FS_MAKE_DIR | _MAKE_ANY,
    # A hard link of a FIFO or socket needs MAKE_FIFO/MAKE_SOCK at the target.
    "link": _MAKE_ANY | ll.FS_REFER,
    # No Landlock right exists for these; they stay with the notify layer.
    "chmod": 0,
    "chown": 0,
}


def op_rights(ops: Iterable[str]) -> int:
    """The Landlock rights the operations need. An operation this code
    does not know gets every right (except device nodes): never less than
    the policy allows."""
    out = 0
    for op in ops:
        out |= OP_RIGHTS.get(op, ~_DEVICES & ((1 << 64) - 1))
    return out


@dataclass(frozen=True)
class Plan:
    """What the ruleset will hold, and why, for the audit."""

    abi: int
    handled_fs: int
    handled_net: int
    rules: tuple[tuple[str, int], ...]  # (path, allowed access), sorted by path
    ports: tuple[tuple[int, int], ...] = ()  # (TCP port, allowed access)
    holes: tuple[str, ...] = ()  # read holes cut out of read grants
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why no rule or hole)
    notes: tuple[str, ...] = ()  # what Landlock leaves to the notify layer
    scoped: int = 0  # LANDLOCK_SCOPE_* bits set on the ruleset
    scopes_off: tuple[tuple[str, str], ...] = ()  # (scope, why it is not set)

    def access(self, path: str) -> int:
        """The access of the rule on exactly ``path`` (0 if none)."""
        return dict(self.rules).get(path, 0)

    def why_skipped(self, path: str) -> str:
        """Every reason ``path`` was skipped, joined by "; " ("" if none)."""
        return "; ".join(why for p, why in self.skipped if p == path)

    def summary(self) -> str:
        net = ", ".join(ll.names(self.handled_net, ll.NET_NAMES)) or "none"
        scoped = ", ".join(ll.names(self.scoped, ll.SCOPE_NAMES)) or "none"
        return (
            f"Landlock ABI {self.abi}: {len(self.rules)} path rules, "
            f"{len(self.holes)} read holes, {len(self.ports)} port rules "
            f"(TCP rights handled: {net}), {len(self.skipped)} skipped, "
            f"scopes: {scoped}"
        )


def scan(path: str) -> list[tuple[str, bool]]:
    """The default ``listdir``: os.scandir, symlinks not followed."""
    with os.scandir(path) as it:
        return [(e.name, e.is_symlink()) for e in it]


# -- path globs ----------------------------------------------------------------
def _literal_segment(seg: str) -> str | None:
    """The text a glob segment matches when it matches one string only
    (plain characters and escape()'s ``[*]``, ``[?]``, ``[[]``), else None."""
    out: list[str] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c in "*?":
            return None
        if c == "[":
            if i + 2 < len(seg) and seg[i + 2] == "]" and seg[i + 1] in "*?[":
                out.append(seg[i + 1])
                i += 3
                continue
            return None
        out.append(c)
        i += 1
    return "".join(out)


def _segments(pattern: str) -> list[str]:
    return [s for s in pattern.split("/") if s]


def literal_prefix(pattern: str) -> tuple[str, str]:
    """(prefix, kind) of a normalized path glob: the longest leading run of
    glob-free segments, and ``exact`` (the glob is that one path), ``tree``
    (the prefix followed by ``/**``) or ``glob`` (anything else)."""
    segs = _segments(pattern)
    lits: list[str] = []
    for s in segs:
        lit = _literal_segment(s)
        if lit is None:
            break
        lits.append(lit)
    prefix = "/" + "/".join(lits)
    if len(lits) == len(segs):
        return prefix, "exact"
    if len(lits) == len(segs) - 1 and segs[-1] == "**":
        return prefix, "tree"
    return prefix, "glob"


def _under(parent: str, path: str) -> bool:
    """``path`` is strictly below ``parent``."""
    if parent == "/":
        return path != "/"
    return path.startswith(parent + "/")


def _at_or_under(parent: str, path: str) -> bool:
    return path == parent or _under(parent, path)


def _segment_matches(seg: str, name: str) -> bool:
    return compile_path("/" + seg).matches("/" + name)


def could_match_below(pattern: str, path: str) -> bool:
    """Whether the glob may match some path strictly below ``path``
    (conservative: True when unsure)."""
    segs = _segments(pattern)
    parts = _segments(path)
    for i, name in enumerate(parts):
        if i >= len(segs):
            return False  # the glob only matches ancestors of path
        if segs[i] == "**":
            return True
        if not _segment_matches(segs[i], name):
            return False
    return len(segs) > len(parts)


# -- the plan --------------------------------------------------------------------
class _Builder:
    def __init__(self, policy: pol.Policy, abi: int, listdir: Lister) -> None:
        self.policy = policy
        self.abi = abi
        self.listdir = listdir
        self.handled = ll.fs_rights(abi)
        self.grants: dict[str, int] = {}
        self.skipped: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.own_proc = f"/proc/{os.getpid()}"
        self._listings: dict[str, list[tuple[str, bool]] | None] = {}

    def skip(self, path: str, why: str) -> None:
        if (path, why) not in self.skipped:
            self.skipped.append((path, why))

    def grant(self, path: str, rights: int, why: str) -> None:
        rights &= self.handled & ~_DEVICES
        if not rights:
            return
        try:
            st = os.stat(path)
            real = os.path.realpath(path)
        except OSError as e:
            self.skip(path, f"{why}: {e.strerror or 'not found'} (a rule needs an existing path)")
            return
        if _at_or_under(self.own_proc, real):
            self.skip(path, f"{why}: resolves to the supervisor's own /proc entry")
            return
        if not stat.S_ISDIR(st.st_mode):
            rights &= ll.FILE_ONLY
        if rights:
            self.grants[path] = self.grants.get(path, 0) | rights

    # -- grants ------------------------------------------------------------
    def file_grants(self) -> None:
        for rule in self.policy.file_rules:
            if rule.decision == "deny":
                continue
            rights = op_rights(rule.operations)
            for g in rule.globs:
                prefix, kind = literal_prefix(g.pattern)
                self.grant(prefix, rights, f"rule '{rule.name}'")
                entry_ops = sorted({"delete", "rename"} & rule.operations)
                if kind == "exact" and entry_ops and prefix != "/" and os.path.lexists(prefix):
                    self.notes.append(
                        f"rule '{rule.name}': {'/'.join(entry_ops)} of {prefix} itself is refused "
                        f"by Landlock (it could be granted only on all of "
                        f"{posixpath.dirname(prefix)})"
                    )
        if self.policy.defaults.file != "deny":
            self.grant(
                "/", op_rights(pol.FILE_OPERATIONS), f"defaults.file: {self.policy.defaults.file}"
            )
            self.notes.append(
                f"defaults.file is {self.policy.defaults.file}: "
                "Landlock grants every file right on /"
            )

    def unix_grants(self) -> None:
        """Binding a unix socket creates a file: MAKE_SOCK wherever the unix
        socket rules may allow a bind."""
        if self.policy.defaults.unix_socket != "deny":
            self.grant("/", ll.FS_MAKE_SOCK, "defaults.unix_socket")
            self.notes.append(
                f"defaults.unix_socket is {self.policy.defaults.unix_socket}: "
                "unix sockets may be bound anywhere (MAKE_SOCK on /)"
            )
            return
        for rule in self.policy.unix_socket_rules:
            if rule.decision == "deny" or "bind" not in rule.operations:
                continue
            for g in rule.globs:
                if g.pattern.startswith("@"):
                    continue  # abstract: no file
                prefix, kind = literal_prefix(g.pattern)
                if kind == "exact":  # the socket file itself: its directory makes it
                    prefix = posixpath.dirname(prefix)
                self.grant(prefix, ll.FS_MAKE_SOCK, f"unix socket rule '{rule.name}'")

    # -- holes -------------------------------------------------------------
    def _covered(self, upto: int, path: str, kind: str) -> str | None:
        """The name of an earlier rule that may let the sandbox read inside
        the would-be hole, if any."""
        for rule in self.policy.file_rules[:upto]:
            if rule.decision == "deny" or not op_rights(rule.operations) & READ_CONTENT:
                continue
            for g in rule.globs:
                if g.matches(path) if kind == "exact" else could_match_below(g.pattern, path):
                    return rule.name
        return None

    def _listing(self, path: str) -> list[tuple[str, bool]] | None:
        if path not in self._listings:
            try:
                self._listings[path] = list(self.listdir(path))
            except OSError:
                self._listings[path] = None
        return self._listings[path]

    def hole_candidates(self) -> list[str]:
        out: list[str] = []
        for i, rule in enumerate(self.policy.file_rules):
            if rule.decision != "deny" or "read" not in rule.operations:
                continue
            for g in rule.globs:
                path, kind = literal_prefix(g.pattern)
                if kind == "glob" or path == "/":
                    continue
                why = self._hole_refusal(i, rule.name, path, kind)
                if why is None:
                    out.append(path)
                else:
                    self.skip(path, why)
        return out

    def _hole_refusal(self, i: int, name: str, path: str, kind: str) -> str | None:
        earlier = self._covered(i, path, kind)
        if earlier is not None:
            return f"no read hole: the earlier rule '{earlier}' may allow reading there"
        try:
            st = os.lstat(path)
        except OSError:
            return f"no read hole for rule '{name}': does not exist"
        if os.path.realpath(path) != path:
            return (
                f"no read hole for rule '{name}': the path goes through a symlink "
                "(the policy also decides on the resolved path)"
            )
        if kind == "exact" and stat.S_ISDIR(st.st_mode):
            return (
                f"no read hole for rule '{name}': a directory named without '/**' "
                "(only listing it is denied)"
            )
        if kind == "tree" and not stat.S_ISDIR(st.st_mode):
            return f"no read hole for rule '{name}': '/**' below a non-directory"
        return None

    def _read_ancestors(self, path: str) -> list[str]:
        return sorted(
            (p for p, r in self.grants.items() if r & READ_CONTENT and _under(p, path)), key=len
        )

    def _chain(self, top: str, hole: str) -> list[str]:
        """The directories from ``top`` down to the hole's parent."""
        out = [top]
        rest = _segments(hole[len(top) :])
        for name in rest[:-1]:
            out.append(posixpath.join(out[-1], name))
        return out

    def holes(self) -> list[str]:
        accepted: list[str] = []
        for hole in self.hole_candidates():
            if hole in accepted:
                continue
            above = self._read_ancestors(hole)
            if not above:
                continue  # nothing grants reading there: no hole needed
            why = None
            for d in self._chain(above[0], hole):
                creatable = [
                    p for p, r in self.grants.items() if r & _NEW_READABLE and _at_or_under(p, d)
                ]
                if creatable:
                    why = (
                        f"no read hole: the sandbox may create entries in {d} (rule on "
                        f"{creatable[0]}), which would then be unreadable"
                    )
                    break
                if self._listing(d) is None:
                    why = f"no read hole: cannot list {d}"
                    break
            if why is not None:
                self.skip(hole, why)
            else:
                accepted.append(hole)
        return accepted

    def punch(self, holes: list[str]) -> None:
        siblings: dict[str, int] = {}
        tops = [p for p, r in self.grants.items() if r & READ_CONTENT]
        for top in tops:
            below = [h for h in holes if _under(top, h)]
            if not below:
                continue
            self.grants[top] &= ~READ_CONTENT
            trie: dict[str, Any] = {}
            for h in below:
                node = trie
                parts = _segments(h[len(top) :])
                for name in parts[:-1]:
                    node = node.setdefault(name, {})
                    if node is _HOLE:
                        break
                else:
                    node[parts[-1]] = _HOLE
            self._walk(top, trie, siblings)
        # A grant at or inside a hole reads what the deny forbids: drop that.
        for path in list(self.grants):
            if any(_at_or_under(h, path) for h in holes):
                self.grants[path] &= ~READ_CONTENT
        for path, rights in siblings.items():
            self.grants[path] = self.grants.get(path, 0) | rights
        self.grants = {p: r for p, r in self.grants.items() if r}

    def _walk(self, d: str, node: dict[str, Any], out: dict[str, int]) -> None:
        listing = self._listing(d)
        assert listing is not None  # listed when the hole was accepted
        for name, is_link in listing:
            child = node.get(name)
            if child is _HOLE:
                continue
            path = posixpath.join(d, name)
            if child is not None:
                self._walk(path, child, out)
            elif not is_link:  # a symlink resolves elsewhere: granted (or not) there
                out[path] = out.get(path, 0) | READ_CONTENT

    # -- network -------------------------------------------------------------
    def net(self) -> tuple[int, list[tuple[int, int]]]:
        if ll.net_rights(self.abi) == 0:
            self.notes.append(f"TCP not handled: Landlock ABI {self.abi} has no network rights")
            return 0, []
        default = self.policy.defaults.network
        if default != "deny":
            self.notes.append(f"TCP not handled: defaults.network is {default} (any port)")
            return 0, []
        handled = 0
        ports: dict[int, int] = {}
        for op, right in (("connect", ll.NET_CONNECT_TCP), ("bind", ll.NET_BIND_TCP)):
            if op == "connect" and self.policy.host_local == "closed":
                # A server of the sandbox's own, on any port, is reachable.
                self.notes.append("TCP connect not handled: the sandbox's own servers "
                                  "may listen on any port (the notify layer decides)")  # fmt: skip
                continue
            if op == "connect" and self.policy.has_domains:
                # The sandbox connects to the proxy for names (supervisor/_proxy.py),
                # whose port is chosen when the session starts.
                self.notes.append("TCP connect not handled: the proxy for names listens on a "
                                  "port chosen at start (the notify layer decides)")  # fmt: skip
                continue
            rules = [
                r for r in self.policy.network_rules if r.decision != "deny" and op in r.operations
            ]
            open_rule = next((r for r in rules if r.ports is None), None)
            if open_rule is not None:
                self.notes.append(f"TCP {op} not handled: rule '{open_rule.name}' allows any port")
                continue
            wanted: set[int] = set()
            for r in rules:
                for lo, hi in r.ports or ():
                    wanted.update(range(lo, min(hi, lo + MAX_PORTS + 1) + 1))
                    if len(wanted) > MAX_PORTS:
                        break
            if len(wanted) > MAX_PORTS:
                self.notes.append(f"TCP {op} not handled: more than {MAX_PORTS} ports allowed")
                continue
            handled |= right
            for port in wanted:
                ports[port] = ports.get(port, 0) | right
            self.notes.append(
                f"TCP {op} handled: ports {_ranges(sorted(wanted)) or 'none'} "
                "(any address: the notify layer checks addresses)"
            )
        return handled, sorted(ports.items())


_HOLE: dict[str, Any] = {}


def _ranges(ports: list[int]) -> str:
    out: list[str] = []
    for p in ports:
        if out and out[-1].split("-")[-1] == str(p - 1):
            out[-1] = out[-1].split("-")[0] + f"-{p}"
        else:
            out.append(str(p))
    return ",".join(out)


def scopes(policy: pol.Policy, abi: int, one_domain: bool) -> tuple[int, list[tuple[str, str]]]:
    """The scopes to set for ``policy``, and (scope, why not) for each left off.

    A scope is set only where it refuses nothing the policy allows:

    * ``signal``: no signal rule allows (or asks about) a target
      ``outside``, and ``defaults.signal`` is ``deny``.
    * ``abstract_unix_socket``: no unix socket rule allows (or asks about)
      a connect or send to an abstract name (``@...``), and
      ``defaults.unix_socket`` is ``deny``.

    ``one_domain`` says the whole sandbox is one Landlock domain (one
    restricted root process; everything else descends from it); without
    it no scope is set (see the module docstring)."""
    names = {ll.SCOPE_SIGNAL: "signal", ll.SCOPE_ABSTRACT_UNIX_SOCKET: "abstract_unix_socket"}
    if ll.scopes(abi) == 0:
        return 0, [(n, f"Landlock ABI {abi} has no scopes (ABI 6+)") for n in names.values()]
    if not one_domain:
        why = (
            "each launch of this session is its own Landlock domain, while the policy "
            "treats them as one sandbox: the policy decides in the supervisor"
        )
        return 0, [(n, why) for n in names.values()]
    off: dict[int, str] = {}
    if policy.defaults.signal != "deny":
        off[ll.SCOPE_SIGNAL] = f"defaults.signal is {policy.defaults.signal}"
    else:
        for r in policy.signal_rules:
            if r.decision != "deny" and "outside" in r.targets:
                off[ll.SCOPE_SIGNAL] = f"signal rule '{r.name}' may allow signals outside"
                break
    if policy.defaults.unix_socket != "deny":
        off[ll.SCOPE_ABSTRACT_UNIX_SOCKET] = (
            f"defaults.unix_socket is {policy.defaults.unix_socket}"
        )
    else:
        for u in policy.unix_socket_rules:
            if (
                u.decision != "deny"
                and u.operations & {"connect", "send"}
                and any(g.pattern.startswith("@") for g in u.globs)
            ):
                off[ll.SCOPE_ABSTRACT_UNIX_SOCKET] = (
                    f"unix socket rule '{u.name}' may allow an abstract socket bound outside"
                )
                break
    scoped = sum(bit for bit in names if bit not in off)
    return scoped, [(names[bit], why) for bit, why in off.items()]


def plan(policy: pol.Policy, abi: int, listdir: Lister = scan, one_domain: bool = False) -> Plan:
    """The ruleset for ``policy`` on a kernel with Landlock ABI ``abi``;
    ``one_domain``: the whole sandbox is one Landlock domain (see
    :func:`scopes`)."""
    if abi <= 0:
        return Plan(abi, 0, 0, (), notes=("Landlock is unavailable",))
    b = _Builder(policy, abi, listdir)
    b.file_grants()
    b.unix_grants()
    holes = b.holes()
    b.punch(holes)
    handled_net, ports = b.net()
    scoped, scopes_off = scopes(policy, abi, one_domain)
    return Plan(
        abi=abi,
        handled_fs=b.handled,
        handled_net=handled_net,
        rules=tuple(sorted(b.grants.items())),
        ports=tuple(ports),
        holes=tuple(sorted(holes)),
        skipped=tuple(sorted(b.skipped)),
        notes=tuple(b.notes),
        scoped=scoped,
        scopes_off=tuple(scopes_off),
    )


def build(p: Plan, skipped: list[tuple[str, str]] | None = None) -> int:
    """Create the ruleset fd (O_CLOEXEC) and add the plan's rules.

    A path that vanished or became unreachable since planning is left out
    (and reported in ``skipped``); a Landlock error closes the fd and raises.
    """
    fd = ll.create_ruleset(p.handled_fs, p.handled_net, p.scoped)
    try:
        for path, access in p.rules:
            try:
                ll.add_path_rule(fd, path, access)
            except ll.LandlockError:
                raise
            except OSError as e:
                if skipped is not None:
                    skipped.append((path, f"gone before the ruleset was built: {e.strerror}"))
        for port, access in p.ports:
            ll.add_port_rule(fd, port, access)
    except BaseException:
        os.close(fd)
        raise
    return fd


def prepare(
    policy: pol.Policy, emit: Emit, listdir: Lister = scan, *, one_domain: bool = False
) -> int | None:
    """The session's ruleset fd, or None when the host has no Landlock.
    ``one_domain``: every process of the sandbox descends from the one
    process that enforces this ruleset (scopes may be set, see
    :func:`scopes`).

    Emits one ``sandbox`` audit event (op ``landlock``) saying what is
    enforced, or that Landlock is unavailable and file rules rest on the
    notify layer alone. Raises LaunchError when the ruleset cannot be
    built: the command must then not run."""
    try:
        level, why = ll.probe()
    except OSError as e:
        raise LaunchError(f"cannot probe Landlock: {e}") from None
    if level <= 0:
        emit(
            "sandbox",
            op="landlock",
            message=f"Landlock unavailable ({why}); file rules are enforced by seccomp "
            "user-notify alone, without protection against path races",
            scopes=[],
            scopes_off=[["*", "Landlock unavailable"]],
        )
        return None
    try:
        p = plan(policy, level, listdir, one_domain=one_domain)
        late: list[tuple[str, str]] = []
        fd = build(p, late)
    except OSError as e:
        raise LaunchError(f"cannot build the Landlock ruleset: {e}") from None
    emit(
        "sandbox",
        op="landlock",
        message=p.summary(),
        abi=p.abi,
        handled_fs=ll.names(p.handled_fs),
        handled_net=ll.names(p.handled_net, ll.NET_NAMES),
        rules=[[path, ll.names(access)] for path, access in p.rules],
        ports=[[port, ll.names(access, ll.NET_NAMES)] for port, access in p.ports],
        holes=list(p.holes),
        skipped=[list(s) for s in (*p.skipped, *late)],
        notes=list(p.notes),
        scopes=ll.names(p.scoped, ll.SCOPE_NAMES),
        scopes_off=[list(s) for s in p.scopes_off],
    )
    return fd
