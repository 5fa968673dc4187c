"""Decisions: a parsed policy applied to one file, command, socket, signal or env."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._glob import GlobError, compile_path, escape, normalize_path
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
    parse_policy,
)

PROTECTED_RULE = "protected"
HIDDEN_RULE = "hidden"


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

    def check_network(self, op: str, ip: str, port: int) -> Decision:
        """Decide ``op`` (connect, bind, send) to ``ip``:``port``.

        An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is checked as its
        IPv4 form, so a dual-stack socket cannot step around IPv4 rules.
        Raises ValueError for a malformed address, port or op.
        """
        _check_op(op, SOCKET_OPERATIONS)
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port {port!r} is not in 0..65535")
        for rule in self.network_rules:
            if rule.matches(op, addr, port):
                return Decision(rule.decision, rule.name, rule.message)
        return Decision(self.defaults.network, "default:network")

    def check_unix(self, op: str, path: str, abstract: bool) -> Decision:
        """Decide ``op`` on a unix socket; an abstract one matches as ``@name``."""
        _check_op(op, SOCKET_OPERATIONS)
        key = "@" + path if abstract else normalize_path(path)
        for rule in self.unix_socket_rules:
            if rule.matches(op, key):
                return Decision(rule.decision, rule.name, rule.message)
        return Decision(self.defaults.unix_socket, "default:unix_socket")

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

    def hide(self, paths: Iterable[str]) -> Policy:
        """Return a copy whose first file rule, ``hidden``, denies every
        operation, reads included, on exactly these paths (the connection
        file holding the frontend's key)."""
        globs = []
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"hidden path {path!r} is not absolute")
            globs.append(compile_path(escape(normalize_path(path))))
        if not globs:
            return dataclasses.replace(self)
        rule = FileRule(
            name=HIDDEN_RULE,
            globs=tuple(globs),
            operations=frozenset(FILE_OPERATIONS),
            decision="deny",
            message="hidden by agentsh-ipy",
        )
        return dataclasses.replace(self, file_rules=(rule, *self.file_rules))

    def protect(self, paths: Iterable[str], trees: Iterable[str] = ()) -> Policy:
        """Return a copy whose first file rule, ``protected``, denies every
        operation except read on exactly these paths (the audit log, the
        policy file) and on these directories and everything below them (the
        trash).  Reads still go through the remaining rules.
        """
        globs = []
        patterns = [(p, escape(normalize_path(p)) if p.startswith("/") else p) for p in paths]
        for tree in trees:
            if tree.startswith("/"):
                base = escape(normalize_path(tree))
                patterns += [(tree, base), (tree, base.rstrip("/") + "/**")]
            else:
                patterns.append((tree, tree))
        for path, pattern in patterns:
            if not path.startswith("/"):
                raise ValueError(f"protected path {path!r} is not absolute")
            try:
                globs.append(compile_path(pattern))
            except GlobError as exc:
                raise ValueError(f"protected path {path!r}: {exc}") from None
        if not globs:
            return dataclasses.replace(self)
        rule = FileRule(
            name=PROTECTED_RULE,
            globs=tuple(globs),
            operations=frozenset(FILE_OPERATIONS) - {"read"},
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
