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
from dataclasses import dataclass
from typing import TypeVar

import yaml

from ._errors import PolicyError, Problem
from ._glob import Glob, GlobError, compile_abstract, compile_name, compile_path, escape

DECISIONS = ("allow", "deny", "audit", "approve")
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
VARIABLES = ("WORKSPACE", "HOME", "TMPDIR")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"

_MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")


# --------------------------------------------------------------------------
# compiled rules


@dataclass(frozen=True)
class Defaults:
    file: str = "deny"
    command: str = "allow"
    network: str = "deny"
    unix_socket: str = "allow"


@dataclass(frozen=True)
class FileRule:
    name: str
    globs: tuple[Glob, ...]
    operations: frozenset[str]
    decision: str
    message: str = ""
    line: int = 0

    def matches(self, op: str, path: str) -> bool:
        return op in self.operations and any(g.matches(path) for g in self.globs)


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

    def matches(
        self, op: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
    ) -> bool:
        if op not in self.operations:
            return False
        if self.cidrs is not None and not any(addr in net for net in self.cidrs):
            return False
        return self.ports is None or any(lo <= port <= hi for lo, hi in self.ports)


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
class EnvPolicy:
    hide: tuple[Glob, ...] = ()
    allow: tuple[Glob, ...] = ()

    def hides(self, name: str) -> bool:
        return any(g.matches(name) for g in self.hide) and not any(
            g.matches(name) for g in self.allow
        )


@dataclass(frozen=True)
class ParsedPolicy:
    name: str
    approval_timeout: float
    defaults: Defaults
    file_rules: tuple[FileRule, ...]
    command_rules: tuple[CommandRule, ...]
    network_rules: tuple[NetworkRule, ...]
    unix_socket_rules: tuple[UnixSocketRule, ...]
    env_policy: EnvPolicy


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
    ) -> dict[str, yaml.Node] | None:
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

    def decision(self, node: yaml.Node, what: str = "decision") -> str | None:
        text = self.string(node, what)
        if text is None:
            return None
        if text not in DECISIONS:
            self.error(node, f"{what} '{text}' is not one of {', '.join(DECISIONS)}")
            return None
        return text

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
    ) -> tuple[_T, ...]:
        out: list[_T] = []
        seen: dict[str, int] = {}
        for item in self.sequence(node, what, allow_null=True) or []:
            fields = self.mapping(item, label, [], ["name", *required, *optional])
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

    def common(self, fields: dict[str, yaml.Node]) -> tuple[str | None, str]:
        decision = self.decision(fields["decision"]) if "decision" in fields else None
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
        decision, message = self.common(fields)
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
        decision, message = self.common(fields)
        if not ok or decision is None:
            return None
        return CommandRule(
            name,
            tuple(commands),
            None if patterns is None else tuple(patterns),
            decision,
            message,
            _line(node),
        )

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
        decision, message = self.common(fields)
        if not ok or ops is None or decision is None:
            return None
        return NetworkRule(
            name,
            None if cidrs is None else tuple(cidrs),
            None if ports is None else tuple(ports),
            ops,
            decision,
            message,
            _line(node),
        )

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
                "env_policy",
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
                top["defaults"], "defaults", [], ["file", "command", "network", "unix_socket"]
            )
            values = {
                key: self.decision(value, f"defaults.{key}")
                for key, value in (fields or {}).items()
            }
            defaults = Defaults(**{k: v for k, v in values.items() if v is not None})

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
        ) -> tuple[_T, ...]:
            if key not in top:
                return ()
            label = key.removesuffix("_rules").replace("_", " ") + " rule"
            return self.rules(top[key], key, label, read_one, required, optional)

        file_rules = rules(
            "file_rules", self.file_rule, ["paths", "operations", "decision"], ["message"]
        )
        command_rules = rules(
            "command_rules",
            self.command_rule,
            ["commands", "decision"],
            ["args_patterns", "message"],
        )
        network_rules = rules(
            "network_rules",
            self.network_rule,
            ["decision"],
            ["cidrs", "ports", "operations", "message"],
        )
        unix_rules = rules(
            "unix_socket_rules",
            self.unix_rule,
            ["paths", "decision"],
            ["operations", "message"],
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

        return ParsedPolicy(
            name=name,
            approval_timeout=timeout,
            defaults=defaults,
            file_rules=file_rules,
            command_rules=command_rules,
            network_rules=network_rules,
            unix_socket_rules=unix_rules,
            env_policy=env,
        )


def parse_policy(text: str, source: str, variables: Mapping[str, str]) -> ParsedPolicy:
    """Parse and validate; raise :class:`PolicyError` listing every problem."""
    try:
        loader = yaml.SafeLoader(text)
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
