"""Decisions: a parsed policy applied to one file, command, socket, signal or env."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._domains import matches as domain_matches
from ._domains import normalize_name
from ._glob import Glob, GlobError, compile_path, escape, normalize_path
from ._protected import Protected, rule_name
from ._schema import (
    DECISIONS,
    FILE_OPERATIONS,
    MAX_SIGNAL,
    SIGNAL_TARGETS,
    SOCKET_OPERATIONS,
    CommandRule,
    Defaults,
    EnvPolicy,
    FileRule,
    Limits,
    NetworkRule,
    SignalRule,
    UnixSocketRule,
    Unprotect,
    parse_policy,
)

# The session's own files (its audit log, its policy) belong to the
# built-in entry of the sandbox's state, and are named after it.
PROTECTED_RULE = rule_name("agentsh-state")
HIDDEN_RULE = "hidden"
OWN_RULE = "own-sandbox"  # reached a socket the sandbox itself holds
HOST_LOCAL_RULE = "host-local"  # this host's own address, not the sandbox's socket
PROXY_RULE = "proxy"  # the proxy refused a request that names no host
REBIND_RULE = "proxy-resolved-local"  # a name resolved to a local or private address
NOT_OWN = "not bound inside this sandbox"
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def is_host_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Addresses that mean this host whatever its interfaces: loopback, the
    unspecified address (a connect to 0.0.0.0 reaches loopback), multicast
    (looped back to local members) and the limited broadcast. The caller
    adds what only the kernel knows (each interface's address)."""
    return (
        addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr == _LIMITED_BROADCAST
    )


@dataclass(frozen=True)
class Decision:
    """The outcome of one check.

    ``rule`` names the matching rule, or ``default:<kind>`` when no rule
    matched.  ``approve`` is not allowed by itself: the caller must ask a
    human and deny when nobody answers within ``Policy.approval_timeout``.
    ``redirect`` (commands only) means: do not run the command, run the argv
    in ``redirect`` instead.  ``soft_delete`` (file deletes only) means: do
    not remove the file, keep it aside where it can be restored.  Neither
    counts as :attr:`allowed`, since what was asked for does not happen.
    """

    decision: str
    rule: str
    message: str = ""
    redirect: tuple[str, ...] | None = None
    """The argv to run instead; set exactly when ``decision`` is ``redirect``."""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision {self.decision!r} is not one of {', '.join(DECISIONS)}")
        if self.decision == "redirect":
            if not isinstance(self.redirect, tuple) or not self.redirect:
                raise ValueError("a redirect decision needs a non-empty argv tuple in redirect")
        elif self.redirect is not None:
            raise ValueError(f"redirect is only set for decision 'redirect', not {self.decision!r}")

    @property
    def allowed(self) -> bool:
        return self.decision in ("allow", "audit")


def _check_op(op: str, allowed: Sequence[str]) -> None:
    if op not in allowed:
        raise ValueError(f"operation {op!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Policy:
    """A validated policy.  Immutable; build one with :meth:`parse`."""

    name: str
    source: str
    approval_timeout: float = 60.0
    defaults: Defaults = field(default_factory=Defaults)
    file_rules: tuple[FileRule, ...] = ()
    command_rules: tuple[CommandRule, ...] = ()
    network_rules: tuple[NetworkRule, ...] = ()
    unix_socket_rules: tuple[UnixSocketRule, ...] = ()
    signal_rules: tuple[SignalRule, ...] = ()
    env_policy: EnvPolicy = field(default_factory=EnvPolicy)
    limits: Limits = field(default_factory=Limits)
    host_local: str = "closed"
    unprotect: tuple[Unprotect, ...] = ()
    """The protected entries this policy opens (``unprotect``), with reasons."""
    opened: tuple[Protected, ...] = ()
    """What :meth:`with_protected` left open because of ``unprotect``."""

    @classmethod
    def parse(cls, text: str, source: str, variables: Mapping[str, str]) -> Policy:
        """Parse and validate policy YAML ``text``.

        ``source`` names the text in error messages (usually its file name).
        ``variables`` supplies ``${WORKSPACE}``, ``${HOME}`` and ``${TMPDIR}``.
        Raises :class:`PolicyError` listing every problem found.
        """
        parsed = parse_policy(text, source, variables)
        return cls(
            name=parsed.name,
            source=source,
            approval_timeout=parsed.approval_timeout,
            defaults=parsed.defaults,
            file_rules=parsed.file_rules,
            command_rules=parsed.command_rules,
            network_rules=parsed.network_rules,
            unix_socket_rules=parsed.unix_socket_rules,
            signal_rules=parsed.signal_rules,
            env_policy=parsed.env_policy,
            limits=parsed.limits,
            host_local=parsed.host_local,
            unprotect=parsed.unprotect,
        )

    # -- checks ------------------------------------------------------------

    def check_file(self, op: str, path: str) -> Decision:
        """Decide ``op`` (one of FILE_OPERATIONS) on absolute ``path``.

        The caller is expected to pass a normalized, symlink-resolved path;
        it is normalized lexically here as well, so ``..`` can never walk a
        path out of an allowed tree.  A relative path matches no rule.
        """
        _check_op(op, FILE_OPERATIONS)
        path = normalize_path(path)
        for rule in self.file_rules:
            if rule.matches(op, path):
                return Decision(rule.decision, rule.name, rule.message)
        return Decision(self.defaults.file, "default:file")

    def check_command(self, path: str, argv: Sequence[str]) -> Decision:
        """Decide an exec of ``path`` (as resolved for execve) with ``argv``.

        Bare command names in rules match the basename of ``path`` (not
        ``argv[0]``, which the caller of execve chooses freely); args
        patterns are searched in ``" ".join(argv[1:])``.  A ``redirect``
        decision carries the argv to run instead in ``Decision.redirect``.
        """
        if path.startswith("/"):
            path = normalize_path(path)
        basename = path.rsplit("/", 1)[-1]
        joined = " ".join(argv[1:])
        for rule in self.command_rules:
            if rule.matches(path, basename, joined):
                return Decision(rule.decision, rule.name, rule.message, rule.redirect)
        return Decision(self.defaults.command, "default:command")

    def check_network(
        self,
        op: str,
        ip: str,
        port: int,
        *,
        local: bool = False,
        own: Callable[[], bool] | None = None,
    ) -> Decision:
        """Decide ``op`` (connect, bind, send) to ``ip``:``port``.

        An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is checked as its
        IPv4 form, so a dual-stack socket cannot step around IPv4 rules.

        A connect or send to this host (``local``: the kernel routes ``ip``
        here; loopback, 0.0.0.0, multicast and broadcast always count) is,
        under ``host_local: closed``, decided only by deny rules and by
        rules that name the address and its ports (NetworkRule.names): a
        broad rule never opens it. Then ``own()`` (is every receiver there
        the sandbox's own socket?) allows it; else it is denied.
        Raises ValueError for a malformed address, port or op.
        """
        _check_op(op, SOCKET_OPERATIONS)
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port {port!r} is not in 0..65535")
        host = op != "bind" and self.host_local == "closed" and (local or is_host_address(addr))
        for rule in self.network_rules:
            if rule.matches(op, addr, port) and (
                not host or rule.decision == "deny" or rule.names(addr)
            ):
                return Decision(rule.decision, rule.name, rule.message)
        if not host:
            return Decision(self.defaults.network, "default:network")
        if own is not None and own():
            return Decision("allow", OWN_RULE, "bound inside this sandbox")
        return Decision("deny", HOST_LOCAL_RULE, NOT_OWN)

    @property
    def has_domains(self) -> bool:
        """Does a rule decide by name (the sandbox then gets the proxy)?"""
        return any(rule.domains is not None for rule in self.network_rules)

    def check_domain(self, name: str, port: int) -> tuple[Decision, NetworkRule | None]:
        """Decide a connection the proxy is asked for, to host ``name`` on
        ``port``, and return the deciding rule. Rules with ``domains`` and
        rules naming neither names nor addresses (a port rule, a catch-all)
        take part, first match wins; ``cidrs`` rules decide addresses only.
        A ``name`` that is not a host name (an address included) is denied."""
        if isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port {port!r} is not in 0..65535")
        host = normalize_name(name)
        if host is None:
            return Decision("deny", PROXY_RULE, f"{name!r} is not a host name"), None
        for rule in self.network_rules:
            if "connect" not in rule.operations:
                continue
            if rule.ports is not None and not any(lo <= port <= hi for lo, hi in rule.ports):
                continue
            if rule.domains is not None:
                if domain_matches(rule.domains, host):
                    return Decision(rule.decision, rule.name, rule.message), rule
            elif rule.cidrs is None:
                return Decision(rule.decision, rule.name, rule.message), rule
        return Decision(self.defaults.network, "default:network"), None

    def check_resolved(
        self, rule: NetworkRule | None, name: str, ip: str, port: int, *, local: bool = False
    ) -> Decision:
        """Decide an address the proxy resolved ``name`` to, after
        :meth:`check_domain` allowed it by ``rule``. A deny rule's cidrs
        still hold; the rule's own ``cidrs``, when it has some, bound the
        addresses; without them an address that is not global (loopback,
        private, link-local...) or that is this host's (``local``) is
        refused: a name must not lead to what an address rule keeps closed."""
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        for other in self.network_rules:
            if (
                other.decision == "deny"
                and other.cidrs is not None
                and other.matches("connect", addr, port)
            ):
                return Decision("deny", other.name, other.message)
        if rule is not None and rule.cidrs is not None:
            if any(addr in net for net in rule.cidrs):
                return Decision("allow", rule.name, rule.message)
            return Decision(
                "deny", REBIND_RULE, f"{name} resolved to {addr}, outside the rule's cidrs"
            )
        if local or is_host_address(addr) or not addr.is_global:
            return Decision(
                "deny", REBIND_RULE,
                f"{name} resolved to {addr}, an address of this host or a private network;"
                " a rule opens it only by listing it in its cidrs",
            )  # fmt: skip
        return Decision("allow", rule.name if rule is not None else "default:network")

    def check_unix(
        self, op: str, path: str, abstract: bool, *, own: Callable[[], bool] | None = None
    ) -> Decision:
        """Decide ``op`` on a unix socket; an abstract one matches as ``@name``.

        The first matching rule decides. A bind no rule matches is allowed
        for an abstract name and, for a path, decided as a ``create`` by the
        file rules (a bind creates the socket file). A connect or send no
        rule matches is allowed when ``own()`` says the socket bound there
        is the sandbox's own, else ``defaults.unix_socket`` decides.
        """
        _check_op(op, SOCKET_OPERATIONS)
        key = "@" + path if abstract else normalize_path(path)
        for rule in self.unix_socket_rules:
            if rule.matches(op, key):
                d = Decision(rule.decision, rule.name, rule.message)
                if op == "bind" and not abstract and d.decision == "allow":
                    file = self.check_file("create", key)
                    return d if file.decision == "allow" else file
                return d
        if op == "bind":
            return (
                Decision("allow", "default:unix-bind")
                if abstract
                else self.check_file("create", key)
            )
        if own is not None and own():
            return Decision("allow", OWN_RULE, "bound inside this sandbox")
        default = self.defaults.unix_socket
        return Decision(default, "default:unix_socket", NOT_OWN if default == "deny" else "")

    def check_signal(self, signal: int, target: str) -> Decision:
        """Decide sending ``signal`` (0..64; 0 probes existence) from the
        sandbox to a process that is ``target``: ``sandbox`` (any process of
        the sandboxed tree, the sender included) or ``outside`` (any other,
        the supervisor included).  Raises ValueError for anything else.
        """
        if target not in SIGNAL_TARGETS:
            raise ValueError(f"target {target!r} is not one of {', '.join(SIGNAL_TARGETS)}")
        if isinstance(signal, bool) or not isinstance(signal, int):
            raise ValueError(f"signal {signal!r} is not a number")
        if not 0 <= signal <= MAX_SIGNAL:
            raise ValueError(f"signal {signal} is not in 0..{MAX_SIGNAL}")
        for rule in self.signal_rules:
            if rule.matches(signal, target):
                return Decision(rule.decision, rule.name, rule.message)
        # A sandboxed process may always signal its own tree unless a rule
        # says otherwise; `defaults.signal` governs everything outside it.
        if target == "sandbox":
            return Decision("allow", "default:own-tree")
        return Decision(self.defaults.signal, "default:signal")

    def filter_env(self, env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """Split ``env`` into (variables the sandbox may see, sorted hidden names)."""
        kept: dict[str, str] = {}
        hidden: list[str] = []
        for name, value in env.items():
            if self.env_policy.hides(name):
                hidden.append(name)
            else:
                kept[name] = value
        return kept, sorted(hidden)

    # -- derivation ----------------------------------------------------------

    def allow_tree(self, name: str, tree: str, message: str) -> Policy:
        """Return a copy whose LAST file rule, ``name``, allows every
        operation in ``tree`` and below (the sandbox's cache home): the
        policy's own rules, its denials first, still come before it."""
        rule = FileRule(
            name=name,
            globs=_globs([], [tree], name),
            operations=frozenset(FILE_OPERATIONS),
            decision="allow",
            message=message,
        )
        return dataclasses.replace(self, file_rules=(*self.file_rules, rule))

    def allow_first(
        self, name: str, paths: Iterable[str], operations: Iterable[str], message: str
    ) -> Policy:
        """Return a copy whose FIRST file rule, ``name``, allows
        ``operations`` on exactly ``paths`` (the terminal the sandbox was
        started on: it holds it as fds already). No-op for no paths."""
        paths = list(paths)
        if not paths:
            return self
        rule = FileRule(
            name=name,
            globs=_globs(paths, [], name),
            operations=frozenset(operations),
            decision="allow",
            message=message,
        )
        return dataclasses.replace(self, file_rules=(rule, *self.file_rules))

    def allow_bind(self, name: str, ip: str, ports: Iterable[int]) -> Policy:
        """Return a copy whose first network rule, ``name``, allows binding
        exactly these ports on ``ip`` (the sandboxed kernel's own channels,
        whatever the policy says of the network)."""
        wanted: tuple[tuple[int, int], ...]
        if isinstance(ports, range) and ports.step == 1:
            # (every port: 65,535 pairs would cost ~18 ms of the kernel's start)
            wanted = ((ports.start, ports.stop - 1),) if ports else ()
        else:
            wanted = tuple((p, p) for p in ports)
            if len(wanted) > 1 and [lo for lo, _ in wanted] == list(
                range(wanted[0][0], wanted[-1][0] + 1)
            ):
                wanted = ((wanted[0][0], wanted[-1][0]),)  # a contiguous range
        if not wanted:
            return dataclasses.replace(self)
        rule = NetworkRule(
            name=name,
            cidrs=(ipaddress.ip_network(ip),),
            ports=wanted,
            operations=frozenset({"bind"}),
            decision="allow",
            message="the sandboxed kernel's own channels",
        )
        return dataclasses.replace(self, network_rules=(rule, *self.network_rules))

    def hide(
        self,
        paths: Iterable[str],
        trees: Iterable[str] = (),
        message: str = "hidden by agentsh-ipy",
    ) -> Policy:
        """Return a copy whose first file rule, ``hidden``, denies every
        operation, reads included, on exactly these paths (the connection
        file holding the frontend's key) and on these directories and
        everything below them (Jupyter's runtime directory). The directories
        above them cannot be renamed: that would show what they hide under
        another path."""
        paths, trees = list(paths), list(trees)
        globs = _globs(paths, trees, "hidden")
        if not globs:
            return dataclasses.replace(self)
        rule = FileRule(
            name=HIDDEN_RULE,
            globs=globs,
            operations=frozenset(FILE_OPERATIONS),
            decision="deny",
            message=message,
        )
        above = {parent for p in (*paths, *trees) for parent in _parents(normalize_path(p))}
        keep = FileRule(
            name=HIDDEN_RULE,
            globs=_globs(sorted(above), (), "hidden"),
            operations=frozenset({"rename"}),
            decision="deny",
            message=f"{message} (a directory above it cannot be renamed)",
        )
        return dataclasses.replace(self, file_rules=(rule, keep, *self.file_rules))

    def with_protected(self, entries: Iterable[Protected]) -> Policy:
        """Return a copy whose first file rules are the built-in protected
        set (policy._protected): every operation but read on an entry's
        paths is denied as rule ``protected:<name>``, and renaming (or
        putting a symlink in place of) a directory it starts from or one
        above, which would carry the entry away. Entries this policy opens
        under ``unprotect`` are left out and recorded in :attr:`opened`;
        a fixed entry is never left out."""
        opening = {u.name for u in self.unprotect}
        rules: list[FileRule] = []
        opened: list[Protected] = []
        kept: set[str] = set()  # a directory is kept once, by the first entry needing it
        for e in entries:
            if e.name in opening and not e.fixed:
                opened.append(e)
                continue
            globs = []
            for pattern in e.paths:
                try:
                    globs.append(compile_path(pattern))
                except GlobError as exc:
                    raise ValueError(f"protected path {pattern!r}: {exc}") from None
            rules.append(FileRule(e.rule, tuple(globs), _WRITES, "deny", e.why))
            keep = [d for d in e.keep if d not in kept]
            kept.update(keep)
            if keep:
                rules.append(FileRule(
                    e.rule, _globs(keep, (), "protected"), frozenset({"rename", "link"}),
                    "deny", f"{e.why} (a directory it lies in cannot be renamed or replaced)",
                ))  # fmt: skip
        return dataclasses.replace(
            self, file_rules=(*rules, *self.file_rules), opened=(*self.opened, *opened)
        )

    def protect(self, paths: Iterable[str], trees: Iterable[str] = ()) -> Policy:
        """Return a copy whose first file rule, ``protected``, denies every
        operation except read on exactly these paths (the audit log, the
        policy file) and on these directories and everything below them (the
        trash).  Reads still go through the remaining rules.
        """
        globs = _globs(paths, trees, "protected")
        if not globs:
            return dataclasses.replace(self)
        rule = FileRule(
            name=PROTECTED_RULE,
            globs=globs,
            operations=_WRITES,
            decision="deny",
            message="protected by agentsh-ipy",
        )
        # A protected socket (the supervisor daemon's) is not to be talked to either.
        sock_rule = UnixSocketRule(
            name=PROTECTED_RULE,
            globs=tuple(globs),
            operations=frozenset(SOCKET_OPERATIONS),
            decision="deny",
            message="protected by agentsh-ipy",
        )
        return dataclasses.replace(
            self,
            file_rules=(rule, *self.file_rules),
            unix_socket_rules=(sock_rule, *self.unix_socket_rules),
        )


_WRITES = frozenset(FILE_OPERATIONS) - {"read"}


def _parents(path: str) -> list[str]:
    """/a/b/c -> [/a/b, /a]: the directories above ``path``, "/" excepted."""
    out = []
    while (path := path.rsplit("/", 1)[0]) != "":
        out.append(path)
    return out


def _globs(paths: Iterable[str], trees: Iterable[str], what: str) -> tuple[Glob, ...]:
    """Literal globs for exactly ``paths``, and for each of ``trees`` and
    everything below it. Raises ValueError for a path that is not absolute."""
    patterns = [(p, escape(normalize_path(p)) if p.startswith("/") else p) for p in paths]
    for tree in trees:
        if tree.startswith("/"):
            base = escape(normalize_path(tree))
            patterns += [(tree, base), (tree, base.rstrip("/") + "/**")]
        else:
            patterns.append((tree, tree))
    globs = []
    for path, pattern in patterns:
        if not path.startswith("/"):
            raise ValueError(f"{what} path {path!r} is not absolute")
        try:
            globs.append(compile_path(pattern))
        except GlobError as exc:
            raise ValueError(f"{what} path {path!r}: {exc}") from None
    return tuple(globs)
