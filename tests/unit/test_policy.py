"""Policy parsing, validation and decisions (agentsh_ipy.policy)."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest

import agentsh_ipy.policy as policy_pkg
from agentsh_ipy.policy import (
    DECISIONS,
    FILE_OPERATIONS,
    PROTECTED_RULE,
    VARIABLES,
    Decision,
    Policy,
    PolicyError,
)

VARS = {"WORKSPACE": "/w", "HOME": "/home/u", "TMPDIR": "/tmp"}


def parse(text: str, variables: dict[str, str] | None = None) -> Policy:
    return Policy.parse(textwrap.dedent(text), "p.yaml", VARS if variables is None else variables)


def problems(text: str, variables: dict[str, str] | None = None) -> list[tuple[int, str]]:
    with pytest.raises(PolicyError) as info:
        parse(text, variables)
    assert all(source == "p.yaml" for source, _, _ in info.value.problems)
    return [(line, reason) for _, line, reason in info.value.problems]


def only_problem(text: str, variables: dict[str, str] | None = None) -> tuple[int, str]:
    found = problems(text, variables)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------
# constants and the layer rule


def test_public_constants() -> None:
    assert DECISIONS == ("allow", "deny", "audit", "approve", "redirect", "soft_delete")
    assert FILE_OPERATIONS == (
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
    assert VARIABLES == ("WORKSPACE", "HOME", "TMPDIR")


def test_policy_package_is_pure() -> None:
    forbidden = {"os", "ctypes", "subprocess", "socket", "IPython", "pathlib", "io", "shutil"}
    package_dir = Path(policy_pkg.__file__).parent
    sources = sorted(package_dir.glob("*.py"))
    assert sources
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{source.name} imports {name}"
            if isinstance(node, ast.Name):
                assert node.id != "open", f"{source.name} calls open()"


# --------------------------------------------------------------------------
# PolicyError


def test_policy_error_str_is_one_line_per_problem() -> None:
    err = PolicyError([("a.yaml", 3, "first"), ("a.yaml", 0, "second")])
    assert str(err) == "a.yaml:3: first\na.yaml:0: second"
    assert err.problems == [("a.yaml", 3, "first"), ("a.yaml", 0, "second")]


def test_minimal_policy_has_documented_defaults() -> None:
    p = parse("version: 1\n")
    assert p.name == "unnamed"
    assert p.source == "p.yaml"
    assert p.approval_timeout == 60.0
    assert p.check_file("read", "/etc/passwd") == Decision("deny", "default:file")
    assert p.check_command("/bin/ls", ["ls"]) == Decision("allow", "default:command")
    assert p.check_network("connect", "10.0.0.1", 80) == Decision("deny", "default:network")
    assert p.check_network("connect", "127.0.0.1", 80) == Decision(
        "deny", "host-local", "not bound inside this sandbox"
    )
    assert p.check_unix("connect", "/run/x.sock", False) == Decision(
        "deny", "default:unix_socket", "not bound inside this sandbox"
    )
    assert p.host_local == "closed"
    assert p.filter_env({"GITHUB_TOKEN": "x"}) == ({"GITHUB_TOKEN": "x"}, [])


def test_top_level_fields() -> None:
    p = parse(
        """\
        version: 1
        name: strict
        approval_timeout: 2.5
        defaults:
          file: audit
          command: approve
          network: allow
          unix_socket: deny
        """
    )
    assert p.name == "strict"
    assert p.approval_timeout == 2.5
    assert p.check_file("write", "/x").decision == "audit"
    assert p.check_command("/bin/ls", ["ls"]).decision == "approve"
    assert p.check_network("send", "8.8.8.8", 53).decision == "allow"
    assert p.check_unix("connect", "/x", False).decision == "deny"
    assert p.check_unix("bind", "/x", False).decision == "audit"  # a create: the file default


def test_empty_rule_lists_are_accepted() -> None:
    p = parse(
        """\
        version: 1
        file_rules: []
        command_rules:
        env_policy:
          hide: []
        """
    )
    assert p.file_rules == ()
    assert p.command_rules == ()


# --------------------------------------------------------------------------
# errors, each with its exact line


def test_yaml_syntax_error_uses_the_yaml_mark() -> None:
    line, reason = only_problem(
        """\
        version: 1
        name: x
          bad: indent
        """
    )
    assert line == 3
    assert reason.startswith("YAML syntax error: ")


def test_yaml_syntax_error_unclosed_quote() -> None:
    line, reason = only_problem('version: 1\nname: "x\n')
    assert reason.startswith("YAML syntax error")
    assert line == 3  # PyYAML detects the unterminated scalar at the end of input


def test_yaml_bare_star_is_a_syntax_error() -> None:
    # '*' starts a YAML alias: operations must quote it.
    text = """\
        version: 1
        file_rules:
          - name: a
            paths: ["/a"]
            operations: [*]
            decision: allow
        """
    line, reason = only_problem(text)
    assert line == 5
    assert "YAML syntax error" in reason


def test_yaml_control_character_is_reported() -> None:
    line, reason = only_problem("version: 1\nname: a\x07b\n")
    assert line == 2
    assert "YAML error" in reason


def test_multiple_documents_are_rejected() -> None:
    line, reason = only_problem("version: 1\n---\nversion: 1\n")
    assert line == 2
    assert "single document" in reason


def test_empty_text() -> None:
    assert only_problem("") == (1, "policy is empty; expected a mapping with 'version: 1'")
    assert only_problem("# just a comment\n")[1].startswith("policy is empty")


def test_not_a_mapping() -> None:
    assert only_problem("- version: 1\n") == (1, "policy must be a mapping, not a list")
    assert only_problem("just text\n") == (1, "policy must be a mapping, not 'just text'")
    assert only_problem(
        """\
        version: 1
        file_rules:
          - "/a"
        """
    ) == (3, "file rule must be a mapping, not the string '/a'")
    assert only_problem(
        """\
        version: 1
        defaults: deny
        """
    ) == (2, "defaults must be a mapping, not 'deny'")


def test_unknown_key_lists_allowed_keys() -> None:
    assert only_problem(
        """\
        version: 1
        file_rules:
          - name: a
            paths: ["/a"]
            operation: [read]
            operations: [read]
            decision: allow
        """
    ) == (
        5,
        "unknown key 'operation' in file rule; allowed: name, paths, operations, decision, message",
    )
    assert only_problem(
        """\
        version: 1

        limit: {}
        """
    ) == (
        3,
        "unknown key 'limit' in policy; allowed: version, name, defaults, approval_timeout,"
        " file_rules, command_rules, network_rules, unix_socket_rules, signal_rules,"
        " env_policy, limits, host_local, unprotect",
    )
    line, reason = only_problem(
        """\
        version: 1
        defaults:
          files: deny
        """
    )
    assert (line, reason) == (
        3,
        "unknown key 'files' in defaults; allowed: file, command, network, unix_socket, signal",
    )
    line, reason = only_problem(
        """\
        version: 1
        env_policy:
          hidden: ["X"]
        """
    )
    assert (line, reason) == (3, "unknown key 'hidden' in env_policy; allowed: hide, allow")


def test_duplicate_key() -> None:
    assert only_problem(
        """\
        version: 1
        file_rules:
          - name: a
            paths: ["/a"]
            operations: [read]
            decision: allow
            decision: deny
        """
    ) == (7, "duplicate key 'decision' in file rule")


def test_missing_required_keys() -> None:
    assert only_problem("name: x\n") == (1, "policy is missing required key 'version'")
    assert problems(
        """\
        version: 1
        file_rules:
          - name: a
            decision: allow
        """
    ) == [
        (3, "file rule 'a' is missing required key 'paths'"),
        (3, "file rule 'a' is missing required key 'operations'"),
    ]
    assert only_problem(
        """\
        version: 1
        command_rules:
          - decision: deny
            commands: [rm]
        """
    ) == (3, "command rule is missing required key 'name'")
    assert only_problem(
        """\
        version: 1
        network_rules:
          - name: n
            cidrs: ["10.0.0.0/8"]
        """
    ) == (3, "network rule 'n' is missing required key 'decision'")
    assert only_problem(
        """\
        version: 1
        unix_socket_rules:
          - name: u
            decision: deny
        """
    ) == (3, "unix socket rule 'u' is missing required key 'paths'")


def test_bad_version() -> None:
    assert only_problem("version: 2\n") == (1, "version must be 1, not '2'")
    assert only_problem("version: '1'\n") == (1, "version must be 1, not the string '1'")
    assert only_problem("name: a\nversion:\n") == (2, "version must be 1, not null")


def test_bad_decision() -> None:
    text = """\
        version: 1
        file_rules:
          - name: a
            paths: ["/a"]
            operations: [read]
            decision: maybe
        """
    # The list is the decisions this kind of rule accepts.
    assert only_problem(text) == (
        6,
        "decision 'maybe' is not one of allow, deny, audit, approve, soft_delete",
    )
    # YAML 1.1 would read `yes` as a boolean; the message shows what was written.
    assert only_problem(text.replace("maybe", "yes")) == (
        6,
        "decision 'yes' is not one of allow, deny, audit, approve, soft_delete",
    )
    assert only_problem(text.replace("maybe", "Allow"))[0] == 6
    assert only_problem(
        """\
        version: 1
        defaults:
          network: block
        """
    ) == (3, "defaults.network 'block' is not one of allow, deny, audit, approve")


def test_bad_operations() -> None:
    base = """\
        version: 1
        file_rules:
          - name: a
            paths: ["/a"]
            operations: OPS
            decision: allow
        """
    assert only_problem(base.replace("OPS", "[read, exec]")) == (
        5,
        "operation 'exec' is not one of read, write, create, delete, rename, mkdir, link,"
        " chmod, chown, or '*'",
    )
    assert only_problem(base.replace("OPS", "read")) == (
        5,
        "operations must be a list, not 'read'",
    )
    assert only_problem(base.replace("OPS", "[]")) == (5, "operations must not be empty")
    assert only_problem(
        """\
        version: 1
        network_rules:
          - name: n
            operations: [connect, listen]
            decision: deny
        """
    ) == (4, "operation 'listen' is not one of connect, bind, send, or '*'")


def test_bad_globs_each_on_its_own_line() -> None:
    assert problems(
        """\
        version: 1
        file_rules:
          - name: a
            paths:
              - "/ok/**"
              - "/a/[x"
              - "relative/x"
              - "/a**b"
              - ""
              - "~/.ssh/**"
              - "/a/../b"
            operations: [read]
            decision: allow
        """
    ) == [
        (6, "bad glob '/a/[x': unterminated '['"),
        (7, "bad glob 'relative/x': not an absolute path"),
        (8, "bad glob '/a**b': '**' must be a whole path segment, as in '/a/**/b'"),
        (9, "bad glob '': empty pattern"),
        (10, "bad glob '~/.ssh/**': '~' is not expanded; write ${HOME} instead"),
        (11, "bad glob '/a/../b': '..' segments never match a normalized path"),
    ]


def test_bad_paths_container() -> None:
    base = """\
        version: 1
        file_rules:
          - name: a
            paths: PATHS
            operations: [read]
            decision: allow
        """
    assert only_problem(base.replace("PATHS", "[]")) == (4, "paths must not be empty")
    assert only_problem(base.replace("PATHS", "/a")) == (4, "paths must be a list, not '/a'")
    assert only_problem(base.replace("PATHS", "[~]")) == (
        4,
        "each entry of paths must be a string, not null",
    )


def test_bad_env_and_command_globs() -> None:
    assert problems(
        """\
        version: 1
        command_rules:
          - name: c
            commands: ["rm", "python[3", "relative/bin"]
            decision: deny
        env_policy:
          hide:
            - "AWS_["
          allow:
            - ""
        """
    ) == [
        (4, "bad glob 'python[3': unterminated '['"),
        (4, "bad glob 'relative/bin': not an absolute path"),
        (8, "bad glob 'AWS_[': unterminated '['"),
        (10, "bad glob '': empty pattern"),
    ]


def test_bad_regex() -> None:
    assert only_problem(
        """\
        version: 1
        command_rules:
          - name: c
            commands: [rm]
            args_patterns:
              - 'ok'
              - '(unclosed'
            decision: deny
        """
    ) == (7, "bad regex '(unclosed': missing ), unterminated subpattern at position 0")
    assert only_problem(
        """\
        version: 1
        command_rules:
          - name: c
            commands: [rm]
            args_patterns: []
            decision: deny
        """
    ) == (5, "args_patterns must list at least one regex (omit it to match any arguments)")


def test_bad_cidr() -> None:
    found = problems(
        """\
        version: 1
        network_rules:
          - name: n
            cidrs:
              - "10.0.0.0/8"
              - "10.0.0.1/8"
              - "example.com"
              - "10.0.0.0/33"
              - 10
            decision: deny
        """
    )
    # The reason after the prefix is the ipaddress module's own wording.
    assert [(line, reason.split(": ")[0]) for line, reason in found] == [
        (6, "bad cidr '10.0.0.1/8'"),
        (7, "bad cidr 'example.com'"),
        (8, "bad cidr '10.0.0.0/33'"),
        (9, "bad cidr '10'"),
    ]
    assert "host bits set" in found[0][1]


def test_bad_ports() -> None:
    found = problems(
        """\
        version: 1
        network_rules:
          - name: n
            ports:
              - 80
              - "8000-8999"
              - 65536
              - -1
              - "9-1"
              - "http"
              - true
              - [1, 2]
              - "1-70000"
            decision: deny
        """
    )
    assert [line for line, _ in found] == [7, 8, 9, 10, 11, 12, 13]
    assert found[0] == (7, "bad port '65536': expected 0..65535 or a range 'lo-hi'")
    assert found[4] == (11, "bad port 'true': expected 0..65535 or a range 'lo-hi'")
    assert found[5] == (12, "bad port a list: expected 0..65535 or a range 'lo-hi'")


def test_bad_approval_timeout() -> None:
    for value in ("0", "-3", ".inf", ".nan", "soon", "true", "[1]"):
        line, reason = only_problem(f"version: 1\n\napproval_timeout: {value}\n")
        assert line == 3, value
        assert reason.startswith("approval_timeout must be a positive number of seconds, not ")
    assert parse("version: 1\napproval_timeout: 5\n").approval_timeout == 5.0


def test_duplicate_rule_name() -> None:
    assert only_problem(
        """\
        version: 1
        file_rules:
          - name: a
            paths: ["/a"]
            operations: [read]
            decision: allow
          - name: a
            paths: ["/b"]
            operations: [read]
            decision: deny
        """
    ) == (7, "duplicate rule name 'a' in file_rules (first at line 3)")
    # Names are unique per list, not across lists.
    parse(
        """\
        version: 1
        file_rules:
          - {name: a, paths: ["/a"], operations: [read], decision: allow}
        network_rules:
          - {name: a, decision: allow}
        """
    )


def test_unknown_and_unset_variables() -> None:
    assert problems(
        """\
        version: 1
        file_rules:
          - name: a
            paths:
              - "${WORKSPACE}/**"
              - "${PWD}/**"
              - "${HOME"
            operations: [read]
            decision: allow
        """
    ) == [
        (6, "unknown variable ${PWD}; known: ${WORKSPACE}, ${HOME}, ${TMPDIR}"),
        (7, "unterminated '${' in '${HOME'"),
    ]
    text = """\
        version: 1
        file_rules:
          - name: a
            paths: ["${HOME}/.ssh/**"]
            operations: ["*"]
            decision: deny
        """
    assert only_problem(text, {"WORKSPACE": "/w"}) == (4, "variable ${HOME} is not set")
    # An empty value would turn "${HOME}/.ssh/**" into "/.ssh/**" silently.
    assert only_problem(text, {"HOME": ""}) == (4, "variable ${HOME} is not set")
    assert only_problem(text, {"HOME": "home/u"}) == (
        4,
        "variable ${HOME}='home/u' is not an absolute path",
    )


def test_unknown_variable_in_args_pattern() -> None:
    assert only_problem(
        """\
        version: 1
        command_rules:
          - name: c
            commands: [rm]
            args_patterns: ['${HOMEDIR}']
            decision: deny
        """
    ) == (5, "unknown variable ${HOMEDIR}; known: ${WORKSPACE}, ${HOME}, ${TMPDIR}")


def test_all_problems_are_collected_and_sorted_by_line() -> None:
    err_lines = [
        line
        for line, _ in problems(
            """\
            version: 3
            bogus: 1
            file_rules:
              - name: a
                paths: ["rel"]
                operations: [read]
                decision: maybe
            network_rules:
              - name: n
                cidrs: ["nope"]
                decision: allow
            """
        )
    ]
    assert err_lines == [1, 2, 5, 7, 10]


def test_error_message_names_the_source() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.parse("version: 9\n", "/etc/agentsh/policy.yaml", VARS)
    assert str(info.value) == "/etc/agentsh/policy.yaml:1: version must be 1, not '9'"


# --------------------------------------------------------------------------
# decisions


def test_decision_allowed() -> None:
    assert Decision("allow", "r").allowed
    assert Decision("audit", "r").allowed
    assert not Decision("deny", "r").allowed
    assert not Decision("approve", "r").allowed
    assert Decision("deny", "r").message == ""
    with pytest.raises(ValueError, match="not one of"):
        Decision("maybe", "r")


FIRST_MATCH = """\
    version: 1
    file_rules:
      - name: secret
        paths: ["/w/secret", "/w/secret/**"]
        operations: ["*"]
        decision: deny
        message: "no secrets"
      - name: workspace
        paths: ["/w", "/w/**"]
        operations: ["*"]
        decision: allow
      - name: secret-again
        paths: ["/w/secret/**"]
        operations: [read]
        decision: allow
      - name: logs
        paths: ["/var/log/**"]
        operations: [read, write]
        decision: audit
      - name: ask
        paths: ["/srv/**"]
        operations: [delete]
        decision: approve
    """


def test_first_match_wins() -> None:
    p = parse(FIRST_MATCH)
    assert p.check_file("read", "/w/secret/a") == Decision("deny", "secret", "no secrets")
    assert p.check_file("read", "/w/secret") == Decision("deny", "secret", "no secrets")
    assert p.check_file("read", "/w/public") == Decision("allow", "workspace")
    assert p.check_file("write", "/var/log/x") == Decision("audit", "logs")
    assert p.check_file("delete", "/var/log/x") == Decision("deny", "default:file")
    assert p.check_file("delete", "/srv/x") == Decision("approve", "ask")
    assert p.check_file("read", "/srv/x") == Decision("deny", "default:file")


def test_rule_order_is_kept() -> None:
    p = parse(FIRST_MATCH)
    assert [r.name for r in p.file_rules] == ["secret", "workspace", "secret-again", "logs", "ask"]
    assert p.file_rules[0].line == 3


def test_check_file_normalizes_paths() -> None:
    p = parse(FIRST_MATCH)
    # '..' must never walk out of an allowed tree into a denied one.
    assert p.check_file("read", "/w/x/../secret/k").rule == "secret"
    assert p.check_file("write", "/w/../etc/passwd") == Decision("deny", "default:file")
    assert p.check_file("write", "//w//a/") == Decision("allow", "workspace")
    # Relative paths match no rule.
    assert p.check_file("write", "w/a") == Decision("deny", "default:file")


def test_check_file_rejects_unknown_operation() -> None:
    with pytest.raises(ValueError, match="operation 'exec'"):
        parse(FIRST_MATCH).check_file("exec", "/w/a")


def test_operations_star_means_all() -> None:
    p = parse(FIRST_MATCH)
    for op in FILE_OPERATIONS:
        assert p.check_file(op, "/w/a").decision == "allow", op


def test_variables_are_expanded_and_escaped() -> None:
    text = """\
        version: 1
        file_rules:
          - name: ws
            paths: ["${WORKSPACE}", "${WORKSPACE}/**"]
            operations: ["*"]
            decision: allow
        """
    p = parse(text, {"WORKSPACE": "/home/u/proj[1]*/"})
    assert p.file_rules[0].globs[0].pattern == "/home/u/proj[[]1][*]"
    assert p.check_file("write", "/home/u/proj[1]*/a.txt").decision == "allow"
    assert p.check_file("write", "/home/u/proj[1]*").decision == "allow"
    assert p.check_file("write", "/home/u/proj1x/a.txt").decision == "deny"
    # A trailing slash in the value is normalized, not doubled.
    p = parse(text, {"WORKSPACE": "/w/"})
    assert [g.pattern for g in p.file_rules[0].globs] == ["/w", "/w/**"]


# -- commands -----------------------------------------------------------------

COMMANDS = """\
    version: 1
    defaults:
      command: deny
    command_rules:
      - name: rm-home
        commands: ["rm"]
        args_patterns: ['(?:^|\\s)${HOME}(?:/|\\s|$)', '--no-preserve-root']
        decision: deny
      - name: rm
        commands: ["rm"]
        decision: audit
      - name: python
        commands: ["python3*"]
        decision: allow
      - name: local-bin
        commands: ["/usr/local/bin/*"]
        decision: approve
      - name: ws-tools
        commands: ["${WORKSPACE}/bin/**"]
        decision: allow
    """


def test_command_rules() -> None:
    p = parse(COMMANDS, {"HOME": "/home/u.x", "WORKSPACE": "/w"})
    assert p.check_command("/bin/rm", ["rm", "-rf", "/home/u.x"]).rule == "rm-home"
    assert p.check_command("/bin/rm", ["rm", "-rf", "/home/u.x/"]).rule == "rm-home"
    # ${HOME} is regex-escaped: the '.' is literal.
    assert p.check_command("/bin/rm", ["rm", "-rf", "/home/uXx"]).rule == "rm"
    assert p.check_command("/bin/rm", ["rm", "--no-preserve-root", "x"]).rule == "rm-home"
    assert p.check_command("/bin/rm", ["rm", "x"]) == Decision("audit", "rm")
    assert p.check_command("/usr/bin/python3.11", ["python3"]).rule == "python"
    assert p.check_command("/usr/bin/python3", ["python3", "-c", "1"]).rule == "python"
    assert p.check_command("/usr/local/bin/tool", ["tool"]).rule == "local-bin"
    assert p.check_command("/usr/local/bin/sub/tool", ["tool"]).rule == "default:command"
    assert p.check_command("/w/bin/a/b", ["b"]).rule == "ws-tools"
    assert p.check_command("/bin/ls", ["ls"]) == Decision("deny", "default:command")


def test_command_basename_comes_from_path_not_argv0() -> None:
    p = parse(COMMANDS, {"HOME": "/home/u", "WORKSPACE": "/w"})
    # argv[0] is chosen by the caller of execve; it must not select a rule.
    assert p.check_command("/bin/rm", ["ls", "x"]).rule == "rm"
    assert p.check_command("/bin/ls", ["python3"]).rule == "default:command"


def test_args_patterns_search_joined_args() -> None:
    p = parse(
        """\
        version: 1
        command_rules:
          - name: force
            commands: ["git"]
            args_patterns: ['push .*--force']
            decision: deny
        """
    )
    assert p.check_command("/usr/bin/git", ["git", "push", "origin", "--force"]).rule == "force"
    assert p.check_command("/usr/bin/git", ["git", "push", "origin"]).rule == "default:command"
    # argv[0] is not part of the searched text.
    assert p.check_command("/usr/bin/git", ["push --force"]).rule == "default:command"


# -- network --------------------------------------------------------------------

# The rules' mechanics, with this host's addresses decided like any other.
NETWORK = """\
    version: 1
    host_local: open
    network_rules:
      - name: loopback
        cidrs: ["127.0.0.0/8", "::1/128"]
        decision: allow
      - name: web
        cidrs: ["10.0.0.0/8", "fd00::/8"]
        ports: [80, 443, "8000-8999"]
        operations: [connect]
        decision: audit
      - name: mapped-written
        cidrs: ["::ffff:192.168.0.0/112"]
        decision: approve
      - name: dns
        ports: [53]
        operations: [send]
        decision: allow
      - name: no-bind
        operations: [bind]
        decision: deny
        message: "no servers"
    """


@pytest.mark.parametrize(
    ("op", "ip", "port", "rule"),
    [
        ("connect", "127.0.0.1", 1, "loopback"),
        ("bind", "127.255.255.254", 65535, "loopback"),
        ("send", "::1", 0, "loopback"),
        ("connect", "::ffff:127.0.0.1", 8888, "loopback"),  # mapped -> IPv4
        ("connect", "::2", 80, "default:network"),
        ("connect", "10.1.2.3", 80, "web"),
        ("connect", "10.1.2.3", 443, "web"),
        ("connect", "10.1.2.3", 8000, "web"),
        ("connect", "10.1.2.3", 8999, "web"),
        ("connect", "10.1.2.3", 9000, "default:network"),
        ("connect", "10.1.2.3", 7999, "default:network"),
        ("connect", "10.1.2.3", 81, "default:network"),
        ("send", "10.1.2.3", 80, "default:network"),
        ("connect", "::ffff:10.9.9.9", 443, "web"),
        ("connect", "fd12::1", 8080, "web"),
        ("connect", "11.0.0.1", 80, "default:network"),
        ("connect", "192.168.3.4", 1, "mapped-written"),
        ("connect", "::ffff:192.168.3.4", 1, "mapped-written"),
        ("send", "8.8.8.8", 53, "dns"),
        ("send", "2001:4860:4860::8888", 53, "dns"),
        ("connect", "8.8.8.8", 53, "default:network"),
        ("bind", "0.0.0.0", 8888, "no-bind"),
        ("bind", "::", 8888, "no-bind"),
    ],
)
def test_network_rules(op: str, ip: str, port: int, rule: str) -> None:
    assert parse(NETWORK).check_network(op, ip, port).rule == rule


def test_network_message_and_invalid_input() -> None:
    p = parse(NETWORK)
    assert p.check_network("bind", "1.2.3.4", 1) == Decision("deny", "no-bind", "no servers")
    with pytest.raises(ValueError):
        p.check_network("connect", "not-an-ip", 80)
    with pytest.raises(ValueError):
        p.check_network("connect", "1.2.3.4", 65536)
    with pytest.raises(ValueError):
        p.check_network("listen", "1.2.3.4", 80)


# -- this host's own addresses --------------------------------------------------

HOST = """\
    version: 1
    defaults: {network: allow}
    network_rules:
      - name: no-mail
        cidrs: ["0.0.0.0/0"]
        ports: [25]
        decision: deny
      - name: dev-db
        cidrs: ["127.0.0.1/32", "::1/128"]
        ports: [5432]
        decision: allow
      - name: lan
        cidrs: ["10.0.0.0/8"]
        ports: [8080]
        decision: allow
      - name: container-ip
        cidrs: ["10.1.2.3/32"]
        ports: [9000-9001]
        decision: audit
      - name: everything
        cidrs: ["0.0.0.0/0", "::/0"]
        decision: allow
    """


@pytest.mark.parametrize(
    ("ip", "port", "local", "rule"),
    [
        ("127.0.0.1", 5432, False, "dev-db"),  # named with its port: open
        ("::1", 5432, False, "dev-db"),
        ("::ffff:127.0.0.1", 5432, False, "dev-db"),
        ("127.0.0.1", 5433, False, "host-local"),  # the next port is not named
        ("127.0.0.2", 5432, False, "host-local"),  # nor another loopback address
        ("127.0.0.1", 25, False, "no-mail"),  # a broad deny still denies
        ("0.0.0.0", 5432, False, "host-local"),  # 0.0.0.0 is this host, not named
        ("224.0.0.1", 80, False, "host-local"),
        ("10.1.2.3", 9000, True, "container-ip"),  # a local address named exactly
        ("10.1.2.3", 8080, True, "host-local"),  # a broad range does not open it
        ("10.1.2.3", 8080, False, "lan"),  # the same address elsewhere: a LAN host
        ("10.9.9.9", 443, False, "everything"),
        ("8.8.8.8", 443, False, "everything"),
    ],
)
def test_host_local_opens_only_to_named_rules(ip: str, port: int, local: bool, rule: str) -> None:
    p = parse(HOST)
    got = p.check_network("connect", ip, port, local=local)
    assert got.rule == rule
    assert got.decision == ("deny" if rule in ("host-local", "no-mail") else
                            "audit" if rule == "container-ip" else "allow")  # fmt: skip
    if rule == "host-local":
        assert got.message == "not bound inside this sandbox"
        assert p.check_network("send", ip, port, local=local).rule == "host-local"
        own = p.check_network("connect", ip, port, local=local, own=lambda: True)
        assert own == Decision("allow", "own-sandbox", "bound inside this sandbox")


def test_host_local_binds_and_open_mode() -> None:
    p = parse(HOST)
    # A bind reaches nothing: the rules decide it as before.
    assert p.check_network("bind", "127.0.0.1", 0).rule == "everything"
    opened = parse(HOST.replace("version: 1\n", "version: 1\n    host_local: open\n"))
    assert opened.host_local == "open"
    assert opened.check_network("connect", "127.0.0.1", 5433).rule == "everything"
    assert opened.check_network("connect", "10.1.2.3", 8080, local=True).rule == "lan"


def test_host_local_rejects_loopback_rules_without_ports() -> None:
    text = """\
        version: 1
        network_rules:
          - name: loopback
            cidrs: ["127.0.0.0/8"]
            decision: allow
        """
    line, reason = only_problem(text)
    assert line == 3
    assert "network rule 'loopback' allows 127.0.0.0/8 on every port" in reason
    assert "host_local: open" in reason
    # Fine when it only binds, only denies, names ports, or host_local is open.
    parse(text.replace("decision: allow", "operations: [bind]\n            decision: allow"))
    parse(text.replace("decision: allow", "decision: deny"))
    parse(text.replace("decision: allow", "ports: [80]\n            decision: allow"))
    parse(text.replace("version: 1\n", "version: 1\n        host_local: open\n"))
    assert only_problem("version: 1\nhost_local: shut\n") == (
        2,
        "host_local must be one of closed, open, not 'shut'",
    )


# -- unix sockets -----------------------------------------------------------------


def test_unix_socket_rules() -> None:
    p = parse(
        """\
        version: 1
        defaults:
          unix_socket: deny
        unix_socket_rules:
          - name: docker
            paths: ["/run/docker.sock"]
            operations: [connect]
            decision: deny
          - name: run
            paths: ["/run/**", "${TMPDIR}/*.sock"]
            decision: allow
          - name: x11
            paths: ["@/tmp/.X11-unix/*"]
            operations: [connect]
            decision: allow
          - name: any-abstract
            paths: ["@*"]
            operations: [bind]
            decision: audit
        """
    )
    assert p.check_unix("connect", "/run/docker.sock", False).rule == "docker"
    # A bind the unix rules allow still creates a file: the file rules decide.
    assert p.check_unix("bind", "/run/docker.sock", False).rule == "default:file"
    assert p.check_unix("send", "/run/user/1000/bus", False).rule == "run"
    assert p.check_unix("connect", "/tmp/a.sock", False).rule == "run"
    assert p.check_unix("connect", "/tmp/.X11-unix/X0", True).rule == "x11"
    # Abstract names never match path rules, nor path sockets abstract rules.
    assert p.check_unix("connect", "/run/x", True).rule == "default:unix_socket"
    assert p.check_unix("bind", "/tmp/.X11-unix/X0", False).rule == "default:file"
    assert p.check_unix("bind", "anything", True) == Decision("audit", "any-abstract")
    with pytest.raises(ValueError):
        p.check_unix("accept", "/run/x", False)


def test_unix_socket_bad_path() -> None:
    assert only_problem(
        """\
        version: 1
        unix_socket_rules:
          - name: u
            paths: ["@", "/ok"]
            decision: deny
        """
    ) == (4, "bad glob '@': empty abstract socket name")


# -- env ------------------------------------------------------------------------


def test_filter_env() -> None:
    p = parse(
        """\
        version: 1
        env_policy:
          hide: ["*_TOKEN", "AWS_*", "SECRET?"]
          allow: ["AWS_REGION", "PUBLIC_*"]
        """
    )
    env = {
        "PATH": "/bin",
        "GITHUB_TOKEN": "t",
        "PUBLIC_TOKEN": "ok",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "eu",
        "SECRET1": "x",
        "SECRET12": "y",
        "aws_lower": "z",
    }
    kept, hidden = p.filter_env(env)
    assert hidden == ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "SECRET1"]
    assert kept == {
        "PATH": "/bin",
        "PUBLIC_TOKEN": "ok",
        "AWS_REGION": "eu",
        "SECRET12": "y",
        "aws_lower": "z",
    }
    assert env["GITHUB_TOKEN"] == "t"  # the input is not modified


# -- protect ------------------------------------------------------------------------


def test_protect() -> None:
    p = parse(FIRST_MATCH)
    q = p.protect(["/w/audit.jsonl", "/w/policy[1].yaml"])
    assert q is not p
    assert q.file_rules[0].name == PROTECTED_RULE
    assert q.file_rules[1:] == p.file_rules
    for op in FILE_OPERATIONS:
        expected = "workspace" if op == "read" else PROTECTED_RULE
        assert q.check_file(op, "/w/audit.jsonl").rule == expected, op
    assert q.check_file("write", "/w/policy[1].yaml").decision == "deny"
    assert q.check_file("write", "/w/policy1.yaml").rule == "workspace"  # exact, not a glob
    assert q.check_file("write", "/w/audit.jsonl.1").rule == "workspace"
    assert q.check_file("write", "/w/audit.jsonl/x").rule == "workspace"
    # The original is unchanged.
    assert p.check_file("write", "/w/audit.jsonl").rule == "workspace"
    # Reads fall through to the remaining rules, which may deny them.
    assert q.check_file("read", "/etc/x") == p.check_file("read", "/etc/x")


def test_protect_details() -> None:
    p = parse(FIRST_MATCH)
    q = p.protect(["/w/./a//log"])
    assert q.check_file("delete", "/w/a/log").rule == PROTECTED_RULE
    assert dataclasses.replace(q) == q
    assert p.protect([]).file_rules == p.file_rules
    with pytest.raises(ValueError, match="not absolute"):
        p.protect(["audit.jsonl"])


def test_hide_denies_reads_too() -> None:
    p = parse(FIRST_MATCH)
    q = p.hide(["/w/conn.json"])
    for op in FILE_OPERATIONS:
        d = q.check_file(op, "/w/conn.json")
        assert (d.decision, d.rule) == ("deny", "hidden"), op
    assert q.check_file("read", "/w/conn.json.x") == p.check_file("read", "/w/conn.json.x")
    assert p.hide([]).file_rules == p.file_rules
    with pytest.raises(ValueError, match="not absolute"):
        p.hide(["conn.json"])


def test_hide_keeps_the_directories_above_from_being_renamed() -> None:
    p = parse(FIRST_MATCH)
    q = p.hide(["/w/conn.json"], ["/h/.local/share/jupyter/runtime"])
    for path in (
        "/h/.local/share/jupyter/runtime/jpserver-1.json",
        "/h/.local/share/jupyter/runtime",
    ):
        for op in FILE_OPERATIONS:
            assert q.check_file(op, path).rule == "hidden", (op, path)
    # Renaming a directory above would show the hidden files under another path.
    for path in ("/w", "/h", "/h/.local", "/h/.local/share", "/h/.local/share/jupyter"):
        d = q.check_file("rename", path)
        assert (d.decision, d.rule) == ("deny", "hidden"), path
        assert "cannot be renamed" in d.message
        # Anything else there is the policy's to decide.
        for op in ("read", "write", "mkdir", "chmod", "delete"):
            assert q.check_file(op, path) == p.check_file(op, path), (op, path)
    assert q.check_file("rename", "/h/.local/other") == p.check_file("rename", "/h/.local/other")
    assert q.check_file("rename", "/") == p.check_file("rename", "/")


def test_allow_bind_is_first_and_only_bind_on_that_address() -> None:
    p = parse(FIRST_MATCH)
    q = p.allow_bind("kernel-channels", "127.0.0.1", range(1, 65536))
    assert q.network_rules[0].ports == ((1, 65535),)
    d = q.check_network("bind", "127.0.0.1", 5555)
    assert (d.decision, d.rule) == ("allow", "kernel-channels")
    assert q.check_network("connect", "127.0.0.1", 5555) == p.check_network(
        "connect", "127.0.0.1", 5555
    )
    assert q.check_network("bind", "0.0.0.0", 5555) == p.check_network("bind", "0.0.0.0", 5555)
    few = p.allow_bind("k", "127.0.0.1", [5000, 5002])
    assert few.network_rules[0].ports == ((5000, 5000), (5002, 5002))
    assert p.allow_bind("k", "127.0.0.1", [7, 8, 9]).network_rules[0].ports == ((7, 9),)
    assert p.allow_bind("k", "127.0.0.1", range(8, 10)).network_rules[0].ports == ((8, 9),)
    assert p.allow_bind("k", "127.0.0.1", range(5, 5)).network_rules == p.network_rules
    assert few.check_network("bind", "127.0.0.1", 5001) == p.check_network(
        "bind", "127.0.0.1", 5001
    )


def test_protect_covers_unix_sockets() -> None:
    """The supervisor daemon's socket directory is protected as a tree: no
    connect, bind or send to anything in it, whatever the unix rules say."""
    p = parse(FIRST_MATCH)
    q = p.protect([], trees=["/run/agentsh-x"])
    for op in ("connect", "bind", "send"):
        d = q.check_unix(op, "/run/agentsh-x/launch", abstract=False)
        assert (d.decision, d.rule) == ("deny", PROTECTED_RULE), op
    assert q.check_unix("connect", "/run/agentsh-x", abstract=False).rule == PROTECTED_RULE
    other = q.check_unix("connect", "/run/other", abstract=False)
    assert other == p.check_unix("connect", "/run/other", abstract=False)
    # An abstract name is not a path in the tree.
    assert q.check_unix("connect", "/run/agentsh-x/launch", abstract=True).rule != PROTECTED_RULE


def test_policy_is_immutable() -> None:
    p = parse(FIRST_MATCH)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "x"  # type: ignore[misc]
