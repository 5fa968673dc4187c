"""Policy YAML -> validated, compiled rules.

The YAML is composed to a node tree (``yaml.compose`` semantics, SafeLoader)
rather than loaded to plain Python objects, so every problem can be reported
with the line of the node that caused it.  Validation collects every problem
and the caller raises one :class:`PolicyError`; nothing half-read escapes.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar

import yaml

from ._domains import parse_pattern as parse_domain
from ._errors import PolicyError, Problem
from ._glob import Glob, GlobError, compile_abstract, compile_name, compile_path, escape, literal
from ._protected import ABOUT as PROTECTED_ABOUT
from ._protected import OPENABLE as PROTECTED_OPENABLE

DECISIONS = ("allow", "deny", "audit", "approve", "redirect", "soft_delete")
# Which decisions each kind of rule may use: `redirect` (run another argv
# instead) only makes sense for an exec, `soft_delete` (keep the file aside
# instead of removing it) only for a delete.
_BASIC_DECISIONS = ("allow", "deny", "audit", "approve")
FILE_DECISIONS = (*_BASIC_DECISIONS, "soft_delete")
COMMAND_DECISIONS = (*_BASIC_DECISIONS, "redirect")
_ONLY_IN = {"redirect": "command_rules", "soft_delete": "file_rules"}
FILE_OPERATIONS = (
    "read",
    "write",
    "create",
    "delete",
    "rename",
    "mkdir",
    "link",
    "chmod",
    "chown",
)
SOCKET_OPERATIONS = ("connect", "bind", "send")
# host_local: "closed" opens this host's own addresses to a connect or send
# only where the sandbox itself is bound, or where a rule names the address
# and its ports; "open" decides them by the rules like any other address.
HOST_LOCAL_MODES = ("closed", "open")
VARIABLES = ("WORKSPACE", "HOME", "TMPDIR")
SIGNAL_TARGETS = ("sandbox", "outside")

# Linux signal numbers (x86, arm, and the generic table most architectures
# share), by name without the SIG prefix.  Fixed here rather than read from
# the `signal` module so a policy means the same on every host.
SIGNALS: Mapping[str, int] = MappingProxyType(
    {
        "HUP": 1,
        "INT": 2,
        "QUIT": 3,
        "ILL": 4,
        "TRAP": 5,
        "ABRT": 6,
        "BUS": 7,
        "FPE": 8,
        "KILL": 9,
        "USR1": 10,
        "SEGV": 11,
        "USR2": 12,
        "PIPE": 13,
        "ALRM": 14,
        "TERM": 15,
        "STKFLT": 16,
        "CHLD": 17,
        "CONT": 18,
        "STOP": 19,
        "TSTP": 20,
        "TTIN": 21,
        "TTOU": 22,
        "URG": 23,
        "XCPU": 24,
        "XFSZ": 25,
        "VTALRM": 26,
        "PROF": 27,
        "WINCH": 28,
        "IO": 29,
        "PWR": 30,
        "SYS": 31,
    }
)
# glibc's real-time range (the kernel's starts at 32; glibc keeps 32 and 33).
SIGRTMIN = 34
SIGRTMAX = 64
# 0 sends nothing: kill(pid, 0) only probes that the process exists.
MAX_SIGNAL = SIGRTMAX

# Largest values the limits accept: the kernel's PID_MAX_LIMIT (more live
# processes cannot exist), and the largest rlim_t that is not RLIM_INFINITY
# read as signed.
MAX_PROCESSES_LIMIT = 4 * 1024 * 1024
MEMORY_LIMIT = 2**63 - 1

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"

_MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")
_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Network("::1/128")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")
_RT_SIGNAL = re.compile(r"RTMIN(?:\+(\d+))?|RTMAX(?:-(\d+))?")
_NUMBER = r"\s*(\d+(?:\.\d*)?|\.\d+)\s*"
_DURATION = re.compile(_NUMBER + r"(s|m|h)?\s*")
_SIZE = re.compile(_NUMBER + r"(KiB|MiB|GiB|TiB|KB|MB|GB|TB|K|M|G|T)?\s*")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_SIZE_UNITS = {
    "": 1,
    "K": 1024,
    "M": 1024**2,
    "G": 1024**3,
    "T": 1024**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
}


# --------------------------------------------------------------------------
# compiled rules


@dataclass(frozen=True)
class Defaults:
    file: str = "deny"
    command: str = "allow"
    network: str = "deny"
    unix_socket: str = "deny"
    signal: str = "deny"


@dataclass(frozen=True)
class FileRule:
    name: str
    globs: tuple[Glob, ...]
    operations: frozenset[str]
    decision: str
    message: str = ""
    line: int = 0
    # Literal globs are looked up (a set, str.startswith over a tuple); the
    # others are one alternation, one regex call per rule (the notify loop
    # checks each trapped open against the rules). A policy with hundreds of
    # literal paths (the protected set) compiles no regex for them.
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _below: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _any: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact: set[str] = set()
        below: list[str] = []
        other: list[str] = []
        for g in self.globs:
            lit = literal(g.pattern)
            if lit is None:
                other.append(g.source)
            elif lit[1]:
                below.append(lit[0] + "/")
            else:
                exact.add(lit[0])
        object.__setattr__(self, "_exact", frozenset(exact))
        object.__setattr__(self, "_below", tuple(below))
        # Each glob is anchored (\A...\Z), so the alternation matches the
        # whole path exactly when one of them does.
        either = re.compile("|".join(f"(?:{s})" for s in other)) if other else None
        object.__setattr__(self, "_any", either)

    def matches(self, op: str, path: str) -> bool:
        return op in self.operations and (
            path in self._exact
            or path.startswith(self._below)
            or (self._any is not None and self._any.match(path) is not None)
        )


@dataclass(frozen=True)
class CommandPattern:
    """One ``commands`` entry: a full-path glob if it contains '/', else a
    basename glob."""

    glob: Glob
    full_path: bool

    def matches(self, path: str, basename: str) -> bool:
        return self.glob.matches(path if self.full_path else basename)


@dataclass(frozen=True)
class CommandRule:
    name: str
    commands: tuple[CommandPattern, ...]
    args_patterns: tuple[re.Pattern[str], ...] | None
    decision: str
    message: str = ""
    line: int = 0
    redirect: tuple[str, ...] | None = None
    """The argv to run instead, for decision ``redirect`` (variables expanded)."""

    def matches(self, path: str, basename: str, joined_args: str) -> bool:
        if not any(c.matches(path, basename) for c in self.commands):
            return False
        if self.args_patterns is None:
            return True
        return any(p.search(joined_args) for p in self.args_patterns)


@dataclass(frozen=True)
class NetworkRule:
    name: str
    cidrs: tuple[IPNetwork, ...] | None
    ports: tuple[tuple[int, int], ...] | None
    operations: frozenset[str]
    decision: str
    message: str = ""
    line: int = 0
    domains: tuple[str, ...] | None = None
    """Names (wildcards kept as ``.suffix``): decided by the proxy only; such
    a rule's ``cidrs`` are the addresses the names may resolve to."""

    def matches(
        self, op: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
    ) -> bool:
        if op not in self.operations or self.domains is not None:
            return False
        if self.cidrs is not None and not any(addr in net for net in self.cidrs):
            return False
        return self.ports is None or any(lo <= port <= hi for lo, hi in self.ports)

    def names(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Does this rule name ``addr`` and its ports explicitly: ``ports``
        listed, and a CIDR holding ``addr`` that is one address or lies
        within loopback? Only such a rule opens a host-local address."""
        return (
            self.ports is not None
            and self.cidrs is not None
            and any(addr in net and _names_host(net) for net in self.cidrs)
        )


def _in_loopback(net: IPNetwork) -> bool:
    if isinstance(net, ipaddress.IPv4Network):
        return net.subnet_of(_LOOPBACK_V4)
    return net.subnet_of(_LOOPBACK_V6)


def _names_host(net: IPNetwork) -> bool:
    return net.num_addresses == 1 or _in_loopback(net)


@dataclass(frozen=True)
class UnixSocketRule:
    name: str
    globs: tuple[Glob, ...]
    operations: frozenset[str]
    decision: str
    message: str = ""
    line: int = 0

    def matches(self, op: str, key: str) -> bool:
        return op in self.operations and any(g.matches(key) for g in self.globs)


@dataclass(frozen=True)
class SignalRule:
    name: str
    targets: frozenset[str]
    signals: frozenset[int] | None
    """None: every signal, 0 included."""
    decision: str
    message: str = ""
    line: int = 0

    def matches(self, signal: int, target: str) -> bool:
        return target in self.targets and (self.signals is None or signal in self.signals)


@dataclass(frozen=True)
class Limits:
    """Resource limits for the sandboxed tree; None means no limit.

    ``max_processes``: live processes in the sandboxed tree at once.
    ``wall_clock``: seconds the command may run.
    ``memory``: address-space limit of each process, in bytes.
    """

    max_processes: int | None = None
    wall_clock: float | None = None
    memory: int | None = None


@dataclass(frozen=True)
class EnvPolicy:
    hide: tuple[Glob, ...] = ()
    allow: tuple[Glob, ...] = ()

    def hides(self, name: str) -> bool:
        return any(g.matches(name) for g in self.hide) and not any(
            g.matches(name) for g in self.allow
        )


@dataclass(frozen=True)
class Unprotect:
    """A protected entry the policy opens (``unprotect``), and why."""

    name: str
    reason: str
    line: int = 0


@dataclass(frozen=True)
class ParsedPolicy:
    name: str
    approval_timeout: float
    defaults: Defaults
    file_rules: tuple[FileRule, ...]
    command_rules: tuple[CommandRule, ...]
    network_rules: tuple[NetworkRule, ...]
    unix_socket_rules: tuple[UnixSocketRule, ...]
    signal_rules: tuple[SignalRule, ...]
    env_policy: EnvPolicy
    limits: Limits
    host_local: str = "closed"
    unprotect: tuple[Unprotect, ...] = ()


# --------------------------------------------------------------------------
# variables


class _VariableError(ValueError):
    pass


def expand_variables(
    text: str,
    variables: Mapping[str, str],
    quote: Callable[[str], str],
    strict: bool,
) -> str:
    """Replace ``${NAME}`` with ``quote(value)``.

    ``strict`` (paths): any ``${...}`` must be a known variable, and an
    unterminated ``${`` is an error.  Not strict (regexes): only
    ``${IDENTIFIER}`` is taken as a variable, since ``$`` and ``{`` mean
    other things in a regex.  Values must be absolute paths: an empty or
    relative value would silently widen a rule (``${TMPDIR}/**`` -> ``/**``).
    """

    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if not strict and not _IDENTIFIER.fullmatch(name):
            return m.group(0)
        if name not in VARIABLES:
            known = ", ".join(f"${{{v}}}" for v in VARIABLES)
            raise _VariableError(f"unknown variable ${{{name}}}; known: {known}")
        value = variables.get(name)
        if not value:
            raise _VariableError(f"variable ${{{name}}} is not set")
        if not value.startswith("/"):
            raise _VariableError(f"variable ${{{name}}}={value!r} is not an absolute path")
        return quote(value)

    result = _VARIABLE.sub(replace, text)
    if strict and "${" in _VARIABLE.sub("", text):
        raise _VariableError(f"unterminated '${{' in {text!r}")
    return result


# --------------------------------------------------------------------------
# the reader

_T = TypeVar("_T")


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "null"
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG and node.style in ("'", '"'):
        return f"the string {node.value!r}"
    return repr(node.value)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Reader:
    def __init__(self, source: str, loader: yaml.SafeLoader, variables: Mapping[str, str]):
        self.source = source
        self.loader = loader
        self.variables = variables
        self.problems: list[Problem] = []

    def error(self, node: yaml.Node | None, reason: str) -> None:
        self.problems.append((self.source, _line(node) if node is not None else 0, reason))

    # -- structure -------------------------------------------------------

    def mapping(
        self,
        node: yaml.Node,
        what: str,
        required: Sequence[str],
        optional: Sequence[str],
        rejected: Mapping[str, str] | None = None,
    ) -> dict[str, yaml.Node] | None:
        """The keys of mapping ``node``; ``rejected`` maps keys that are
        refused with a reason of their own to that reason."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping, not {_describe(node)}")
            return None
        allowed = [*required, *optional]
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(
                    key_node, f"{what}: a key must be a plain name, not {_describe(key_node)}"
                )
                continue
            key = str(key_node.value)
            if key in out:
                self.error(key_node, f"duplicate key '{key}' in {what}")
            elif rejected and key in rejected:
                self.error(key_node, rejected[key])
            elif key not in allowed:
                self.error(
                    key_node, f"unknown key '{key}' in {what}; allowed: {', '.join(allowed)}"
                )
            else:
                out[key] = value_node
        for key in required:
            if key not in out:
                self.error(node, f"{what} is missing required key '{key}'")
        return out

    def sequence(
        self, node: yaml.Node, what: str, allow_null: bool = False
    ) -> list[yaml.Node] | None:
        if allow_null and isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list, not {_describe(node)}")
            return None
        items: list[yaml.Node] = list(node.value)
        if not items and not allow_null:
            self.error(node, f"{what} must not be empty")
            return None
        return items

    def string(self, node: yaml.Node, what: str) -> str | None:
        # Any non-null scalar counts as its source text: "name: yes" is the
        # name "yes", not a YAML 1.1 boolean.
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL_TAG:
            self.error(node, f"{what} must be a string, not {_describe(node)}")
            return None
        return str(node.value)

    def strings(
        self, node: yaml.Node, what: str, allow_empty: bool = False
    ) -> list[tuple[yaml.Node, str]]:
        out: list[tuple[yaml.Node, str]] = []
        for item in self.sequence(node, what, allow_null=allow_empty) or []:
            text = self.string(item, f"each entry of {what}")
            if text is not None:
                out.append((item, text))
        return out

    def construct(self, node: yaml.Node) -> object:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.error(node, f"cannot read value {_describe(node)}: {exc}")
            return None

    def decision(
        self, node: yaml.Node, what: str = "decision", allowed: Sequence[str] = _BASIC_DECISIONS
    ) -> str | None:
        text = self.string(node, what)
        if text is None:
            return None
        if text in allowed:
            return text
        if text in _ONLY_IN:
            self.error(node, f"{what} '{text}' is only valid in {_ONLY_IN[text]}")
        else:
            self.error(node, f"{what} '{text}' is not one of {', '.join(allowed)}")
        return None

    def operations(self, node: yaml.Node, allowed: Sequence[str]) -> frozenset[str] | None:
        ops: set[str] = set()
        ok = True
        for item, text in self.strings(node, "operations"):
            if text == "*":
                ops.update(allowed)
            elif text in allowed:
                ops.add(text)
            else:
                self.error(item, f"operation '{text}' is not one of {', '.join(allowed)}, or '*'")
                ok = False
        return frozenset(ops) if ok and ops else None

    def expand(
        self, node: yaml.Node, text: str, quote: Callable[[str], str], strict: bool
    ) -> str | None:
        try:
            return expand_variables(text, self.variables, quote, strict)
        except _VariableError as exc:
            self.error(node, str(exc))
            return None

    def path_glob(self, node: yaml.Node, text: str, abstract_ok: bool = False) -> Glob | None:
        expanded = self.expand(node, text, escape, strict=True)
        if expanded is None:
            return None
        try:
            if abstract_ok and expanded.startswith("@"):
                return compile_abstract(expanded)
            return compile_path(expanded)
        except GlobError as exc:
            self.error(node, f"bad glob '{text}': {exc}")
            return None

    def path_globs(self, node: yaml.Node, abstract_ok: bool = False) -> tuple[Glob, ...] | None:
        entries = self.strings(node, "paths")
        globs = [self.path_glob(item, text, abstract_ok) for item, text in entries]
        if not entries or any(g is None for g in globs):
            return None
        return tuple(g for g in globs if g is not None)

    def name_globs(self, node: yaml.Node, what: str) -> tuple[Glob, ...]:
        out: list[Glob] = []
        for item, text in self.strings(node, what, allow_empty=True):
            try:
                out.append(compile_name(text))
            except GlobError as exc:
                self.error(item, f"bad glob '{text}': {exc}")
        return tuple(out)

    # -- rule lists --------------------------------------------------------

    def rules(
        self,
        node: yaml.Node,
        what: str,
        label: str,
        read_one: Callable[[yaml.MappingNode, dict[str, yaml.Node], str], _T | None],
        required: Sequence[str],
        optional: Sequence[str],
        rejected: Mapping[str, str] | None = None,
    ) -> tuple[_T, ...]:
        out: list[_T] = []
        seen: dict[str, int] = {}
        for item in self.sequence(node, what, allow_null=True) or []:
            fields = self.mapping(item, label, [], ["name", *required, *optional], rejected)
            if fields is None:
                continue
            assert isinstance(item, yaml.MappingNode)
            name: str | None = None
            if "name" not in fields:
                self.error(item, f"{label} is missing required key 'name'")
            else:
                name_node = fields["name"]
                name = self.string(name_node, "rule name")
                if name == "":
                    self.error(name_node, "rule name must not be empty")
                    name = None
                elif name is not None and name in seen:
                    self.error(
                        name_node,
                        f"duplicate rule name '{name}' in {what} (first at line {seen[name]})",
                    )
                    name = None
                elif name is not None:
                    seen[name] = _line(name_node)
            where = f"{label} '{name}'" if name else label
            missing = [key for key in required if key not in fields]
            for key in missing:
                self.error(item, f"{where} is missing required key '{key}'")
            # Read the rule even when it cannot be kept, to report its other problems.
            rule = read_one(item, fields, name or "")
            if rule is not None and name and not missing:
                out.append(rule)
        return tuple(out)

    def common(
        self, fields: dict[str, yaml.Node], allowed: Sequence[str] = _BASIC_DECISIONS
    ) -> tuple[str | None, str]:
        decision = (
            self.decision(fields["decision"], allowed=allowed) if "decision" in fields else None
        )
        message = ""
        if "message" in fields:
            message = self.string(fields["message"], "message") or ""
        return decision, message

    def file_rule(
        self, node: yaml.MappingNode, fields: dict[str, yaml.Node], name: str
    ) -> FileRule | None:
        globs = self.path_globs(fields["paths"]) if "paths" in fields else None
        ops = (
            self.operations(fields["operations"], FILE_OPERATIONS)
            if "operations" in fields
            else None
        )
        decision, message = self.common(fields, FILE_DECISIONS)
        if decision == "soft_delete" and ops is not None and ops != {"delete"}:
            # Only a delete can be kept aside; any other operation would
            # silently get a meaning nobody wrote down.
            self.error(
                fields["operations"],
                "soft_delete applies to delete only: write operations: [delete]",
            )
            return None
        if globs is None or ops is None or decision is None:
            return None
        return FileRule(name, globs, ops, decision, message, _line(node))

    def command_rule(
        self, node: yaml.MappingNode, fields: dict[str, yaml.Node], name: str
    ) -> CommandRule | None:
        commands: list[CommandPattern] = []
        ok = "commands" in fields
        if "commands" in fields:
            entries = self.strings(fields["commands"], "commands")
            ok = bool(entries)
            for item, text in entries:
                if "/" in text or text.startswith(("$", "~")):
                    glob = self.path_glob(item, text)
                    if glob is None:
                        ok = False
                    else:
                        commands.append(CommandPattern(glob, full_path=True))
                    continue
                try:
                    commands.append(CommandPattern(compile_name(text), full_path=False))
                except GlobError as exc:
                    self.error(item, f"bad glob '{text}': {exc}")
                    ok = False
        patterns: list[re.Pattern[str]] | None = None
        if "args_patterns" in fields:
            patterns = []
            node_ap = fields["args_patterns"]
            if isinstance(node_ap, yaml.SequenceNode) and not node_ap.value:
                self.error(
                    node_ap,
                    "args_patterns must list at least one regex (omit it to match any arguments)",
                )
                entries = []
            else:
                entries = self.strings(node_ap, "args_patterns")
            ok = ok and bool(entries)
            for item, text in entries:
                expanded = self.expand(item, text, re.escape, strict=False)
                if expanded is None:
                    ok = False
                    continue
                try:
                    patterns.append(re.compile(expanded))
                except re.error as exc:
                    self.error(item, f"bad regex '{text}': {exc}")
                    ok = False
        decision, message = self.common(fields, COMMAND_DECISIONS)
        redirect: tuple[str, ...] | None = None
        if "redirect_to" in fields:
            redirect = self.redirect_argv(fields["redirect_to"])
            if decision is not None and decision != "redirect":
                self.error(
                    fields["redirect_to"],
                    f"redirect_to is only valid with decision: redirect, not {decision}",
                )
                ok = False
        elif decision == "redirect":
            where = f"command rule '{name}'" if name else "command rule"
            self.error(node, f"{where} has decision redirect but no 'redirect_to'")
            ok = False
        if not ok or decision is None or (decision == "redirect" and redirect is None):
            return None
        return CommandRule(
            name,
            tuple(commands),
            None if patterns is None else tuple(patterns),
            decision,
            message,
            _line(node),
            redirect if decision == "redirect" else None,
        )

    def redirect_argv(self, node: yaml.Node) -> tuple[str, ...] | None:
        entries = self.strings(node, "redirect_to")
        argv: list[str] = []
        ok = bool(entries)
        for i, (item, text) in enumerate(entries):
            expanded = self.expand(item, text, lambda value: value, strict=True)
            if expanded is None:
                ok = False
            elif "\0" in expanded:
                self.error(item, f"redirect_to entry {text!r} contains a NUL character")
                ok = False
            elif i == 0 and not expanded.startswith("/"):
                # No PATH search: what runs instead must be exactly this file.
                self.error(item, f"redirect_to must start with an absolute path, not {text!r}")
                ok = False
            else:
                argv.append(expanded)
        return tuple(argv) if ok else None

    def network_rule(
        self, node: yaml.MappingNode, fields: dict[str, yaml.Node], name: str
    ) -> NetworkRule | None:
        ok = True
        cidrs: list[IPNetwork] | None = None
        if "cidrs" in fields:
            cidrs = []
            entries = self.strings(fields["cidrs"], "cidrs")
            ok = bool(entries)
            for item, text in entries:
                net = self.cidr(item, text)
                if net is None:
                    ok = False
                else:
                    cidrs.append(net)
        ports: list[tuple[int, int]] | None = None
        if "ports" in fields:
            ports = []
            items = self.sequence(fields["ports"], "ports")
            ok = ok and bool(items)
            for item in items or []:
                rng = self.port_range(item)
                if rng is None:
                    ok = False
                else:
                    ports.append(rng)
        ops: frozenset[str] | None = frozenset(SOCKET_OPERATIONS)
        if "operations" in fields:
            ops = self.operations(fields["operations"], SOCKET_OPERATIONS)
        domains = self.domains(fields["domains"]) if "domains" in fields else None
        if domains is not None and ops is not None and "connect" not in ops:
            self.error(fields["domains"], "domains are reached by connect: list it in operations")
            ok = False
        decision, message = self.common(fields)
        if not ok or ops is None or decision is None or domains == ():
            return None
        return NetworkRule(
            name,
            None if cidrs is None else tuple(cidrs),
            None if ports is None else tuple(ports),
            ops,
            decision,
            message,
            _line(node),
            domains,
        )

    def domains(self, node: yaml.Node) -> tuple[str, ...]:
        """``domains``: exact names and ``*.suffix`` wildcards; () if any is bad."""
        out: list[str] = []
        entries = self.strings(node, "domains")
        ok = bool(entries)
        for item, text in entries:
            pattern, reason = parse_domain(text)
            if pattern is None:
                self.error(item, reason)
                ok = False
            else:
                out.append(pattern)
        return tuple(out) if ok else ()

    def cidr(self, node: yaml.Node, text: str) -> IPNetwork | None:
        try:
            net = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as exc:
            self.error(node, f"bad cidr '{text}': {exc}")
            return None
        # Addresses are checked in IPv4 form when IPv4-mapped, so a mapped
        # network has to be turned into its IPv4 form as well to ever match.
        if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED_V4):
            v4 = net.network_address.ipv4_mapped
            assert v4 is not None
            return ipaddress.IPv4Network((v4, net.prefixlen - 96))
        return net

    def port_range(self, node: yaml.Node) -> tuple[int, int] | None:
        bad = f"bad port {_describe(node)}: expected 0..65535 or a range 'lo-hi'"
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, bad)
            return None
        if node.tag == _INT_TAG:
            value = self.construct(node)
            if isinstance(value, int) and 0 <= value <= 65535:
                return value, value
        elif node.tag == _STR_TAG:
            text = str(node.value)
            m = _PORT_RANGE.fullmatch(text)
            if m is not None:
                lo, hi = int(m.group(1)), int(m.group(2))
                if 0 <= lo <= hi <= 65535:
                    return lo, hi
            elif text.strip().isdecimal() and int(text) <= 65535:
                return int(text), int(text)
        self.error(node, bad)
        return None

    def unix_rule(
        self, node: yaml.MappingNode, fields: dict[str, yaml.Node], name: str
    ) -> UnixSocketRule | None:
        globs = self.path_globs(fields["paths"], abstract_ok=True) if "paths" in fields else None
        ops: frozenset[str] | None = frozenset(SOCKET_OPERATIONS)
        if "operations" in fields:
            ops = self.operations(fields["operations"], SOCKET_OPERATIONS)
        decision, message = self.common(fields)
        if globs is None or ops is None or decision is None:
            return None
        return UnixSocketRule(name, globs, ops, decision, message, _line(node))

    def signal_rule(
        self, node: yaml.MappingNode, fields: dict[str, yaml.Node], name: str
    ) -> SignalRule | None:
        targets: set[str] = set()
        ok = "targets" in fields
        if "targets" in fields:
            entries = self.strings(fields["targets"], "targets")
            ok = bool(entries)
            for item, text in entries:
                if text == "*":
                    targets.update(SIGNAL_TARGETS)
                elif text in SIGNAL_TARGETS:
                    targets.add(text)
                else:
                    self.error(
                        item,
                        f"target '{text}' is not one of {', '.join(SIGNAL_TARGETS)}, or '*'",
                    )
                    ok = False
        signals: set[int] | None = None
        if "signals" in fields:
            signals = set()
            items = self.sequence(fields["signals"], "signals")
            ok = ok and bool(items)
            every = False
            for item in items or []:
                number = self.signal(item)
                if number is None:
                    ok = False
                elif number == "*":
                    every = True
                else:
                    signals.add(number)
            if every:
                signals = None
        decision, message = self.common(fields)
        if not ok or decision is None:
            return None
        return SignalRule(
            name,
            frozenset(targets),
            None if signals is None else frozenset(signals),
            decision,
            message,
            _line(node),
        )

    def signal(self, node: yaml.Node) -> int | Literal["*"] | None:
        """A signal name (SIGTERM or TERM, SIGRTMIN+3), number 0..64 or '*'."""
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT_TAG:
                value = self.construct(node)
                if isinstance(value, int) and 0 <= value <= MAX_SIGNAL:
                    return value
            elif node.tag == _STR_TAG:
                text = str(node.value).strip()
                if text == "*":
                    return "*"
                if text.isdecimal() and int(text) <= MAX_SIGNAL:
                    return int(text)
                bare = text.removeprefix("SIG")
                if bare in SIGNALS:
                    return SIGNALS[bare]
                m = _RT_SIGNAL.fullmatch(bare)
                if m is not None:
                    if m.group(1) is not None:
                        number = SIGRTMIN + int(m.group(1))
                    elif m.group(2) is not None:
                        number = SIGRTMAX - int(m.group(2))
                    else:
                        number = SIGRTMIN if bare == "RTMIN" else SIGRTMAX
                    if SIGRTMIN <= number <= SIGRTMAX:
                        return number
        self.error(
            node,
            f"bad signal {_describe(node)}: expected a name such as SIGTERM or TERM,"
            f" a number 0..{MAX_SIGNAL}, or '*'",
        )
        return None

    # -- limits --------------------------------------------------------------

    def limits(self, node: yaml.Node) -> Limits:
        fields = self.mapping(node, "limits", [], ["max_processes", "wall_clock", "memory"]) or {}
        max_processes = None
        if "max_processes" in fields:
            max_processes = self.max_processes(fields["max_processes"])
        wall_clock = self.wall_clock(fields["wall_clock"]) if "wall_clock" in fields else None
        memory = self.memory(fields["memory"]) if "memory" in fields else None
        return Limits(max_processes=max_processes, wall_clock=wall_clock, memory=memory)

    def max_processes(self, node: yaml.Node) -> int | None:
        value = self.construct(node) if node.tag == _INT_TAG else None
        if not isinstance(value, int) or value <= 0:
            self.error(
                node, f"limits.max_processes must be a positive whole number, not {_describe(node)}"
            )
            return None
        if value > MAX_PROCESSES_LIMIT:
            self.error(
                node,
                f"limits.max_processes {value} is more than the kernel allows"
                f" ({MAX_PROCESSES_LIMIT})",
            )
            return None
        return value

    def wall_clock(self, node: yaml.Node) -> float | None:
        seconds: float | None = None
        if node.tag in (_INT_TAG, _FLOAT_TAG):
            value = self.construct(node)
            if isinstance(value, int | float):
                seconds = float(value)
        elif node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            m = _DURATION.fullmatch(str(node.value))
            if m is not None:
                seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2) or ""]
        if seconds is None or not math.isfinite(seconds) or seconds <= 0:
            self.error(
                node,
                "limits.wall_clock must be a positive number of seconds or a duration"
                f" such as '30s', '5m', '2h', not {_describe(node)}",
            )
            return None
        return seconds

    def memory(self, node: yaml.Node) -> int | None:
        size: int | None = None
        if node.tag == _INT_TAG:
            value = self.construct(node)
            if isinstance(value, int):
                size = value
        elif node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            m = _SIZE.fullmatch(str(node.value))
            if m is not None:
                # Exact arithmetic: "1.5GiB" is 1610612736 bytes, not a float near it.
                from fractions import Fraction  # exact "1.5G"; rare enough to import here

                size = int(Fraction(m.group(1)) * _SIZE_UNITS[m.group(2) or ""])
        if size is None or size <= 0:
            self.error(
                node,
                "limits.memory must be a positive number of bytes or a size such as"
                f" '512MiB', '2GiB', '500MB', '1G', not {_describe(node)}",
            )
            return None
        if size > MEMORY_LIMIT:
            self.error(node, f"limits.memory {size} is too large (at most {MEMORY_LIMIT} bytes)")
            return None
        return size

    # -- top level ---------------------------------------------------------

    def document(self, root: yaml.Node) -> ParsedPolicy | None:
        top = self.mapping(
            root,
            "policy",
            required=["version"],
            optional=[
                "name",
                "defaults",
                "approval_timeout",
                "file_rules",
                "command_rules",
                "network_rules",
                "unix_socket_rules",
                "signal_rules",
                "env_policy",
                "limits",
                "host_local",
                "unprotect",
            ],
        )
        if top is None:
            return None
        if "version" in top:
            node = top["version"]
            value = self.construct(node) if node.tag == _INT_TAG else None
            if value != 1:
                self.error(node, f"version must be 1, not {_describe(node)}")

        name = "unnamed"
        if "name" in top:
            name = self.string(top["name"], "name") or name

        defaults = Defaults()
        if "defaults" in top:
            fields = self.mapping(
                top["defaults"],
                "defaults",
                [],
                ["file", "command", "network", "unix_socket", "signal"],
            )
            values = {
                key: self.decision(value, f"defaults.{key}")
                for key, value in (fields or {}).items()
            }
            defaults = Defaults(**{k: v for k, v in values.items() if v is not None})

        host_local = "closed"
        if "host_local" in top:
            node = top["host_local"]
            text = self.string(node, "host_local")
            if text in HOST_LOCAL_MODES:
                host_local = text
            elif text is not None:
                self.error(node, f"host_local must be one of {', '.join(HOST_LOCAL_MODES)}, "
                                 f"not {text!r}")  # fmt: skip

        timeout = 60.0
        if "approval_timeout" in top:
            node = top["approval_timeout"]
            value = self.construct(node) if node.tag in (_INT_TAG, _FLOAT_TAG) else None
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                timeout = float(value)
            else:
                self.error(
                    node,
                    f"approval_timeout must be a positive number of seconds, not {_describe(node)}",
                )

        def rules(
            key: str,
            read_one: Callable[[yaml.MappingNode, dict[str, yaml.Node], str], _T | None],
            required: Sequence[str],
            optional: Sequence[str],
            rejected: Mapping[str, str] | None = None,
        ) -> tuple[_T, ...]:
            if key not in top:
                return ()
            label = key.removesuffix("_rules").replace("_", " ") + " rule"
            return self.rules(top[key], key, label, read_one, required, optional, rejected)

        file_rules = rules(
            "file_rules", self.file_rule, ["paths", "operations", "decision"], ["message"]
        )
        command_rules = rules(
            "command_rules",
            self.command_rule,
            ["commands", "decision"],
            ["args_patterns", "redirect_to", "message"],
        )
        network_rules = rules(
            "network_rules",
            self.network_rule,
            ["decision"],
            ["cidrs", "domains", "ports", "operations", "message"],
        )
        if host_local == "closed":
            for rule in network_rules:
                self.check_host_local(rule)
        unix_rules = rules(
            "unix_socket_rules",
            self.unix_rule,
            ["paths", "decision"],
            ["operations", "message"],
        )
        signal_rules = rules(
            "signal_rules", self.signal_rule, ["targets", "decision"], ["signals", "message"]
        )

        env = EnvPolicy()
        if "env_policy" in top:
            fields = self.mapping(top["env_policy"], "env_policy", [], ["hide", "allow"]) or {}
            env = EnvPolicy(
                hide=self.name_globs(fields["hide"], "env_policy.hide") if "hide" in fields else (),
                allow=(
                    self.name_globs(fields["allow"], "env_policy.allow")
                    if "allow" in fields
                    else ()
                ),
            )

        limits = self.limits(top["limits"]) if "limits" in top else Limits()
        unprotect = self.unprotect(top["unprotect"]) if "unprotect" in top else ()

        return ParsedPolicy(
            name=name,
            approval_timeout=timeout,
            defaults=defaults,
            file_rules=file_rules,
            command_rules=command_rules,
            network_rules=network_rules,
            unix_socket_rules=unix_rules,
            signal_rules=signal_rules,
            env_policy=env,
            limits=limits,
            host_local=host_local,
            unprotect=unprotect,
        )

    def unprotect(self, node: yaml.Node) -> tuple[Unprotect, ...]:
        """``unprotect``: the built-in protected entries this policy opens,
        each by name and with a reason (the audit's start names both)."""
        example = 'e.g. {name: python-env, reason: "cells install into ./.venv"}'
        out: list[Unprotect] = []
        seen: dict[str, int] = {}
        for item in self.sequence(node, "unprotect", allow_null=True) or []:
            if isinstance(item, yaml.ScalarNode):
                self.error(item, f"each entry of unprotect names an entry and a reason, {example}")
                continue
            fields = self.mapping(item, "each entry of unprotect", ["name", "reason"], [])
            if fields is None:
                continue
            name = self.string(fields["name"], "unprotect name") if "name" in fields else None
            reason = self.string(fields["reason"], "reason") if "reason" in fields else None
            if name is not None:
                if name not in PROTECTED_ABOUT:
                    self.error(
                        fields["name"],
                        f"unknown protected entry '{name}'; a policy may open:"
                        f" {', '.join(PROTECTED_OPENABLE)}",
                    )
                    name = None
                elif name not in PROTECTED_OPENABLE:
                    self.error(
                        fields["name"],
                        f"protected entry '{name}' cannot be opened by a policy"
                        f" ({PROTECTED_ABOUT[name][0]}); a policy may open:"
                        f" {', '.join(PROTECTED_OPENABLE)}",
                    )
                    name = None
                elif name in seen:
                    self.error(
                        fields["name"], f"'{name}' is opened twice (first at line {seen[name]})"
                    )
                    name = None
                else:
                    seen[name] = _line(fields["name"])
            if reason is not None and not reason.strip():
                self.error(fields["reason"], "the reason must not be empty")
                reason = None
            if name is not None and reason is not None:
                out.append(Unprotect(name, reason.strip(), _line(item)))
        return tuple(out)

    def check_host_local(self, rule: NetworkRule) -> None:
        """An allowing rule on loopback without ports would open nothing
        under host_local: closed; say so instead of ignoring it."""
        if rule.decision == "deny" or rule.ports is not None or rule.cidrs is None:
            return
        if rule.domains is not None:  # its cidrs bound what the names resolve to
            return
        if not rule.operations & {"connect", "send"}:
            return
        for net in rule.cidrs:
            if _in_loopback(net):
                self.problems.append((self.source, rule.line, (
                    f"network rule '{rule.name}' allows {net} on every port, but this host's "
                    "own addresses open only to a rule that names its ports: list `ports`, "
                    "or set `host_local: open` to trust every service on this machine"
                )))  # fmt: skip
                return


# libyaml's loader where PyYAML has it: several times faster than the pure
# Python one (part of every sandbox's start-up), with the same node tree.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_policy(text: str, source: str, variables: Mapping[str, str]) -> ParsedPolicy:
    """Parse and validate; raise :class:`PolicyError` listing every problem."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = _reader_line(text, exc)
        raise PolicyError([(source, line, f"YAML error: {exc.reason}")]) from None
    try:
        reader = _Reader(source, loader, variables)
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = int(mark.line) + 1 if mark is not None else 0
            reason = ", ".join(str(part) for part in (exc.context, exc.problem) if part)
            raise PolicyError([(source, line, f"YAML syntax error: {reason}")]) from None
        except yaml.reader.ReaderError as exc:
            raise PolicyError(
                [(source, _reader_line(text, exc), f"YAML error: {exc.reason}")]
            ) from None
        except yaml.YAMLError as exc:
            raise PolicyError([(source, 0, f"YAML error: {exc}")]) from None
        if root is None:
            raise PolicyError(
                [(source, 1, "policy is empty; expected a mapping with 'version: 1'")]
            )
        parsed = reader.document(root)
    finally:
        loader.dispose()
    if reader.problems or parsed is None:
        problems = sorted(reader.problems, key=lambda p: p[1]) or [(source, 0, "invalid policy")]
        raise PolicyError(problems)
    return parsed


def _reader_line(text: str, exc: yaml.reader.ReaderError) -> int:
    position = exc.position if isinstance(exc.position, int) else 0
    return text.count("\n", 0, position) + 1
