"""Signal rules, limits, the redirect and soft_delete decisions, and the
network `domains` (agentsh_ipy.policy)."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from agentsh_ipy.policy import (
    COMMAND_DECISIONS,
    FILE_DECISIONS,
    SIGNAL_TARGETS,
    SIGNALS,
    Decision,
    Limits,
)
from tests.unit.test_policy import only_problem, parse, problems


def test_constants() -> None:
    assert SIGNAL_TARGETS == ("sandbox", "outside")
    assert FILE_DECISIONS == ("allow", "deny", "audit", "approve", "soft_delete")
    assert COMMAND_DECISIONS == ("allow", "deny", "audit", "approve", "redirect")
    assert len(SIGNALS) == 31
    assert sorted(SIGNALS.values()) == list(range(1, 32))
    assert (SIGNALS["HUP"], SIGNALS["KILL"], SIGNALS["TERM"], SIGNALS["SYS"]) == (1, 9, 15, 31)
    assert (SIGNALS["STKFLT"], SIGNALS["CHLD"], SIGNALS["IO"], SIGNALS["PWR"]) == (16, 17, 29, 30)
    with pytest.raises(TypeError):
        SIGNALS["NEW"] = 99  # type: ignore[index]


# --------------------------------------------------------------------------
# signal rules

SIGNAL_POLICY = """\
    version: 1
    signal_rules:
      - name: no-kill-outside
        targets: [outside]
        signals: [SIGKILL, STOP]
        decision: deny
        message: "not those"
      - name: term-outside
        targets: [outside]
        signals: [SIGTERM, 1, "2", 0]
        decision: approve
      - name: realtime
        targets: ["*"]
        signals: [SIGRTMIN, RTMIN+2, SIGRTMAX-1, RTMAX, 32]
        decision: audit
      - name: own-tree
        targets: [sandbox]
        decision: allow
    """


@pytest.mark.parametrize(
    ("signal", "target", "decision", "rule"),
    [
        (9, "outside", "deny", "no-kill-outside"),
        (19, "outside", "deny", "no-kill-outside"),
        (9, "sandbox", "allow", "own-tree"),
        (15, "outside", "approve", "term-outside"),
        (1, "outside", "approve", "term-outside"),
        (2, "outside", "approve", "term-outside"),
        (0, "outside", "approve", "term-outside"),
        (3, "outside", "deny", "default:signal"),
        (10, "outside", "deny", "default:signal"),
        (34, "outside", "audit", "realtime"),
        (36, "outside", "audit", "realtime"),
        (63, "sandbox", "audit", "realtime"),
        (64, "outside", "audit", "realtime"),
        (32, "outside", "audit", "realtime"),
        (35, "outside", "deny", "default:signal"),
        (33, "outside", "deny", "default:signal"),
        (35, "sandbox", "allow", "own-tree"),
        (0, "sandbox", "allow", "own-tree"),
    ],
)
def test_signal_rules(signal: int, target: str, decision: str, rule: str) -> None:
    got = parse(SIGNAL_POLICY).check_signal(signal, target)
    assert (got.decision, got.rule) == (decision, rule)


def test_signal_rule_details() -> None:
    p = parse(SIGNAL_POLICY)
    assert p.check_signal(9, "outside") == Decision("deny", "no-kill-outside", "not those")
    assert [r.name for r in p.signal_rules] == [
        "no-kill-outside",
        "term-outside",
        "realtime",
        "own-tree",
    ]
    assert p.signal_rules[0].line == 3
    assert p.signal_rules[0].signals == frozenset({9, 19})
    assert p.signal_rules[3].signals is None  # omitted: every signal


def test_signal_star_and_defaults() -> None:
    p = parse(
        """\
        version: 1
        defaults:
          signal: audit
        signal_rules:
          - name: any
            targets: ["*"]
            signals: [TERM, "*"]
            decision: deny
        """
    )
    assert p.signal_rules[0].targets == frozenset(SIGNAL_TARGETS)
    assert p.signal_rules[0].signals is None
    for target in SIGNAL_TARGETS:
        for signal in range(65):
            assert p.check_signal(signal, target).rule == "any"
    p = parse("version: 1\ndefaults:\n  signal: audit\n")
    assert p.check_signal(15, "outside") == Decision("audit", "default:signal")
    assert p.check_signal(15, "sandbox") == Decision("allow", "default:own-tree")


def test_minimal_policy_lets_the_tree_signal_itself_only() -> None:
    p = parse("version: 1\n")
    assert p.defaults.signal == "deny"
    assert p.signal_rules == ()
    assert p.check_signal(15, "sandbox") == Decision("allow", "default:own-tree")
    assert p.check_signal(0, "outside") == Decision("deny", "default:signal")


def test_check_signal_rejects_bad_input() -> None:
    p = parse(SIGNAL_POLICY)
    with pytest.raises(ValueError, match="target 'self'"):
        p.check_signal(15, "self")
    with pytest.raises(ValueError, match="target 'SANDBOX'"):
        p.check_signal(15, "SANDBOX")
    with pytest.raises(ValueError, match=r"not in 0\.\.64"):
        p.check_signal(65, "sandbox")
    with pytest.raises(ValueError, match=r"not in 0\.\.64"):
        p.check_signal(-1, "sandbox")
    with pytest.raises(ValueError, match="not a number"):
        p.check_signal(True, "sandbox")
    with pytest.raises(ValueError, match="not a number"):
        p.check_signal("15", "sandbox")  # type: ignore[arg-type]


def test_bad_signals_each_on_its_own_line() -> None:
    expected = "expected a name such as SIGTERM or TERM, a number 0..64, or '*'"
    assert problems(
        """\
        version: 1
        signal_rules:
          - name: s
            targets: [sandbox]
            signals:
              - SIGTERM
              - TERMINATE
              - 65
              - -1
              - sigterm
              - true
              - RTMIN+31
              - RTMAX-31
              - [9]
              - "SIG"
              - ""
            decision: allow
        """
    ) == [
        (7, f"bad signal 'TERMINATE': {expected}"),
        (8, f"bad signal '65': {expected}"),
        (9, f"bad signal '-1': {expected}"),
        (10, f"bad signal 'sigterm': {expected}"),
        (11, f"bad signal 'true': {expected}"),
        (12, f"bad signal 'RTMIN+31': {expected}"),
        (13, f"bad signal 'RTMAX-31': {expected}"),
        (14, f"bad signal a list: {expected}"),
        (15, f"bad signal the string 'SIG': {expected}"),
        (16, f"bad signal the string '': {expected}"),
    ]


def test_bad_signal_rule_structure() -> None:
    base = """\
        version: 1
        signal_rules:
          - name: s
            targets: TARGETS
            signals: SIGNALS
            decision: allow
        """
    ok = base.replace("TARGETS", "[sandbox]").replace("SIGNALS", "[TERM]")
    parse(ok)
    assert only_problem(base.replace("TARGETS", "[sandbox, parent]").replace("SIGNALS", "[1]")) == (
        4,
        "target 'parent' is not one of sandbox, outside, or '*'",
    )
    assert only_problem(base.replace("TARGETS", "[]").replace("SIGNALS", "[1]")) == (
        4,
        "targets must not be empty",
    )
    assert only_problem(base.replace("TARGETS", "sandbox").replace("SIGNALS", "[1]")) == (
        4,
        "targets must be a list, not 'sandbox'",
    )
    assert only_problem(ok.replace("[TERM]", "[]")) == (5, "signals must not be empty")
    assert only_problem(ok.replace("[TERM]", "TERM")) == (5, "signals must be a list, not 'TERM'")
    assert only_problem(
        """\
        version: 1
        signal_rules:
          - name: s
            decision: deny
        """
    ) == (3, "signal rule 's' is missing required key 'targets'")
    assert only_problem(
        """\
        version: 1
        signal_rules:
          - name: s
            targets: [outside]
            pids: [1]
            decision: deny
        """
    ) == (
        5,
        "unknown key 'pids' in signal rule; allowed: name, targets, decision, signals, message",
    )
    assert only_problem(
        """\
        version: 1
        signal_rules:
          - name: s
            targets: [outside]
            decision: block
        """
    ) == (5, "decision 'block' is not one of allow, deny, audit, approve")


# --------------------------------------------------------------------------
# limits


def limits(body: str) -> Limits:
    return parse("version: 1\nlimits:\n" + textwrap.indent(textwrap.dedent(body), "  ")).limits


def test_limits_absent_or_empty() -> None:
    assert parse("version: 1\n").limits == Limits(None, None, None)
    assert limits("{}") == Limits()
    assert limits("max_processes: 64\n") == Limits(max_processes=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().memory = 1  # type: ignore[misc]


def test_limits_all_keys() -> None:
    got = limits(
        """\
        max_processes: 100
        wall_clock: 5m
        memory: 2GiB
        """
    )
    assert got == Limits(max_processes=100, wall_clock=300.0, memory=2 * 1024**3)
    assert isinstance(got.wall_clock, float)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        ("2.5", 2.5),
        ("0x10", 16.0),
        ('"30s"', 30.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        (".5m", 30.0),
        ("'90'", 90.0),
        ("10 s", 10.0),
    ],
)
def test_wall_clock_forms(value: str, seconds: float) -> None:
    assert limits(f"wall_clock: {value}\n").wall_clock == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("1048576", 1048576),
        ("'4096'", 4096),
        ("1K", 1024),
        ("1KiB", 1024),
        ("1KB", 1000),
        ("512M", 512 * 1024**2),
        ("512MiB", 512 * 1024**2),
        ("500MB", 500 * 1000**2),
        ("1G", 1024**3),
        ("2GiB", 2 * 1024**3),
        ("3GB", 3 * 1000**3),
        ("1T", 1024**4),
        ("1TiB", 1024**4),
        ("1TB", 1000**4),
        ("1.5GiB", 1610612736),
        ("0.5K", 512),
        ("'8 GiB'", 8 * 1024**3),
    ],
)
def test_memory_forms(value: str, size: int) -> None:
    got = limits(f"memory: {value}\n").memory
    assert got == size
    assert type(got) is int


def test_max_processes_forms() -> None:
    assert limits("max_processes: 1\n").max_processes == 1
    assert limits("max_processes: 4194304\n").max_processes == 4194304


@pytest.mark.parametrize(
    "value",
    ["0", "-1", "'12 parsecs'", "true", "1.5", "'10'", "~", "[1]", "4194305", "1e3"],
)
def test_bad_max_processes(value: str) -> None:
    line, reason = only_problem(f"version: 1\nlimits:\n  max_processes: {value}\n")
    assert line == 3, value
    assert reason.startswith("limits.max_processes "), reason


def test_bad_max_processes_messages() -> None:
    assert only_problem("version: 1\nlimits:\n  max_processes: 0\n") == (
        3,
        "limits.max_processes must be a positive whole number, not '0'",
    )
    assert only_problem("version: 1\nlimits:\n  max_processes: 4194305\n") == (
        3,
        "limits.max_processes 4194305 is more than the kernel allows (4194304)",
    )


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "0.0",
        "-1",
        "-5m",
        "0s",
        "'12 parsecs'",
        "true",
        "false",
        ".inf",
        ".nan",
        "5d",
        "5 min",
        "5M",
        "1h30m",
        "~",
        "[30]",
        "''",
    ],
)
def test_bad_wall_clock(value: str) -> None:
    line, reason = only_problem(f"version: 1\nlimits:\n  wall_clock: {value}\n")
    assert line == 3, value
    assert reason.startswith(
        "limits.wall_clock must be a positive number of seconds or a duration"
        " such as '30s', '5m', '2h', not "
    ), reason


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "-1",
        "'-1K'",
        "0K",
        "0.0001K",
        "'12 parsecs'",
        "true",
        "1.5",
        "512mb",
        "512kib",
        "1e9",
        "1B",
        "1PiB",
        "~",
        "{}",
    ],
)
def test_bad_memory(value: str) -> None:
    line, reason = only_problem(f"version: 1\nlimits:\n  memory: {value}\n")
    assert line == 3, value
    assert reason.startswith(
        "limits.memory must be a positive number of bytes or a size such as"
        " '512MiB', '2GiB', '500MB', '1G', not "
    ), reason


def test_bad_limits_messages() -> None:
    assert problems(
        """\
        version: 1
        limits:
          max_processes: true
          wall_clock: 12 parsecs
          memory: -1
        """
    ) == [
        (3, "limits.max_processes must be a positive whole number, not 'true'"),
        (
            4,
            "limits.wall_clock must be a positive number of seconds or a duration"
            " such as '30s', '5m', '2h', not '12 parsecs'",
        ),
        (
            5,
            "limits.memory must be a positive number of bytes or a size such as"
            " '512MiB', '2GiB', '500MB', '1G', not '-1'",
        ),
    ]
    assert only_problem("version: 1\nlimits:\n  memory: 10000000TiB\n") == (
        3,
        "limits.memory 10995116277760000000 is too large (at most 9223372036854775807 bytes)",
    )
    assert only_problem("version: 1\nlimits:\n  cpu: 1\n") == (
        3,
        "unknown key 'cpu' in limits; allowed: max_processes, wall_clock, memory",
    )
    assert only_problem("version: 1\nlimits:\n  memory: 1G\n  memory: 2G\n") == (
        4,
        "duplicate key 'memory' in limits",
    )
    assert only_problem("version: 1\n\nlimits: 512\n") == (
        3,
        "limits must be a mapping, not '512'",
    )


# --------------------------------------------------------------------------
# redirect

REDIRECT = """\
    version: 1
    command_rules:
      - name: pip-to-uv
        commands: ["pip", "pip3"]
        args_patterns: ['^install ']
        decision: redirect
        redirect_to: ["${WORKSPACE}/bin/safe-pip", "--dry-run", "${HOME}", ""]
        message: "installs go through the wrapper"
      - name: curl
        commands: ["curl"]
        decision: redirect
        redirect_to:
          - /usr/bin/echo
          - "curl is not available"
    """


def test_redirect_rules() -> None:
    p = parse(REDIRECT)
    got = p.check_command("/usr/bin/pip", ["pip", "install", "numpy"])
    assert got == Decision(
        "redirect",
        "pip-to-uv",
        "installs go through the wrapper",
        ("/w/bin/safe-pip", "--dry-run", "/home/u", ""),
    )
    assert not got.allowed
    assert p.check_command("/usr/bin/curl", ["curl", "x"]).redirect == (
        "/usr/bin/echo",
        "curl is not available",
    )
    # Other rules and the default carry no redirect.
    assert p.check_command("/usr/bin/pip", ["pip", "list"]) == Decision("allow", "default:command")
    assert p.command_rules[1].redirect == ("/usr/bin/echo", "curl is not available")


def test_decision_redirect_field() -> None:
    assert Decision("deny", "r").redirect is None
    d = Decision("redirect", "r", "", ("/bin/true",))
    assert d.redirect == ("/bin/true",)
    assert not d.allowed
    with pytest.raises(ValueError, match="non-empty argv"):
        Decision("redirect", "r")
    with pytest.raises(ValueError, match="non-empty argv"):
        Decision("redirect", "r", "", ())
    with pytest.raises(ValueError, match="non-empty argv"):
        Decision("redirect", "r", "", ["/bin/true"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only set for decision 'redirect'"):
        Decision("allow", "r", "", ("/bin/true",))


def test_bad_redirect() -> None:
    base = """\
        version: 1
        command_rules:
          - name: c
            commands: [curl]
            decision: redirect
            redirect_to: ARGV
        """
    assert only_problem(base.replace("ARGV", "[]")) == (6, "redirect_to must not be empty")
    assert only_problem(base.replace("ARGV", "/bin/echo")) == (
        6,
        "redirect_to must be a list, not '/bin/echo'",
    )
    assert only_problem(base.replace("ARGV", "[echo, hi]")) == (
        6,
        "redirect_to must start with an absolute path, not 'echo'",
    )
    assert only_problem(base.replace("ARGV", "['', hi]")) == (
        6,
        "redirect_to must start with an absolute path, not ''",
    )
    assert only_problem(base.replace("ARGV", '["${PWD}/x"]')) == (
        6,
        "unknown variable ${PWD}; known: ${WORKSPACE}, ${HOME}, ${TMPDIR}",
    )
    assert only_problem(base.replace("ARGV", '["${HOME}/x"]'), {"WORKSPACE": "/w"}) == (
        6,
        "variable ${HOME} is not set",
    )
    assert only_problem(base.replace("ARGV", '["/bin/echo", "a\\0b"]')) == (
        6,
        "redirect_to entry 'a\\x00b' contains a NUL character",
    )
    assert only_problem(base.replace("ARGV", "[/bin/echo, ~]")) == (
        6,
        "each entry of redirect_to must be a string, not null",
    )
    assert only_problem(
        """\
        version: 1
        command_rules:
          - name: c
            commands: [curl]
            decision: redirect
            message: "no"
        """
    ) == (3, "command rule 'c' has decision redirect but no 'redirect_to'")
    assert only_problem(
        """\
        version: 1
        command_rules:
          - name: c
            commands: [curl]
            decision: deny
            redirect_to: [/bin/echo]
        """
    ) == (6, "redirect_to is only valid with decision: redirect, not deny")


def test_redirect_and_soft_delete_elsewhere_are_errors() -> None:
    assert problems(
        """\
        version: 1
        defaults:
          command: redirect
          file: soft_delete
          network: redirect
          signal: soft_delete
        file_rules:
          - name: f
            paths: ["/a"]
            operations: [delete]
            decision: redirect
        command_rules:
          - name: c
            commands: [rm]
            decision: soft_delete
        network_rules:
          - name: n
            decision: redirect
        unix_socket_rules:
          - name: u
            paths: ["/run/x.sock"]
            decision: soft_delete
        signal_rules:
          - name: s
            targets: [outside]
            decision: redirect
        """
    ) == [
        (3, "defaults.command 'redirect' is only valid in command_rules"),
        (4, "defaults.file 'soft_delete' is only valid in file_rules"),
        (5, "defaults.network 'redirect' is only valid in command_rules"),
        (6, "defaults.signal 'soft_delete' is only valid in file_rules"),
        (11, "decision 'redirect' is only valid in command_rules"),
        (15, "decision 'soft_delete' is only valid in file_rules"),
        (18, "decision 'redirect' is only valid in command_rules"),
        (22, "decision 'soft_delete' is only valid in file_rules"),
        (26, "decision 'redirect' is only valid in command_rules"),
    ]


def test_redirect_to_is_a_command_rule_key_only() -> None:
    assert only_problem(
        """\
        version: 1
        file_rules:
          - name: f
            paths: ["/a"]
            operations: [read]
            decision: allow
            redirect_to: [/bin/true]
        """
    ) == (
        7,
        "unknown key 'redirect_to' in file rule; allowed: name, paths, operations, decision,"
        " message",
    )


# --------------------------------------------------------------------------
# soft_delete


def test_soft_delete() -> None:
    p = parse(
        """\
        version: 1
        file_rules:
          - name: keep-notebooks
            paths: ["${WORKSPACE}/**/*.ipynb"]
            operations: [delete]
            decision: soft_delete
            message: "moved to the trash"
          - name: workspace
            paths: ["${WORKSPACE}/**"]
            operations: ["*"]
            decision: allow
        """
    )
    got = p.check_file("delete", "/w/a/b.ipynb")
    assert got == Decision("soft_delete", "keep-notebooks", "moved to the trash")
    assert not got.allowed
    assert got.redirect is None
    assert p.check_file("write", "/w/a/b.ipynb").rule == "workspace"
    assert p.check_file("rename", "/w/a/b.ipynb").rule == "workspace"
    assert p.check_file("delete", "/w/a/b.py").rule == "workspace"


@pytest.mark.parametrize(
    "ops", ["[delete, write]", '["*"]', "[write]", "[rename]", "[delete, rename]"]
)
def test_soft_delete_applies_to_delete_only(ops: str) -> None:
    assert only_problem(
        f"""\
        version: 1
        file_rules:
          - name: f
            paths: ["/a/**"]
            operations: {ops}
            decision: soft_delete
        """
    ) == (5, "soft_delete applies to delete only: write operations: [delete]")


def test_soft_delete_with_other_problems() -> None:
    # An unknown operation is reported once, not also as a soft_delete error.
    assert problems(
        """\
        version: 1
        file_rules:
          - name: f
            paths: ["/a/**"]
            operations: [delete, unlink]
            decision: soft_delete
          - name: g
            paths: ["/b/**"]
            operations: [delete, delete]
            decision: soft_delete
        """
    ) == [
        (
            5,
            "operation 'unlink' is not one of read, write, create, delete, rename, mkdir, link,"
            " chmod, chown, or '*'",
        ),
    ]


# --------------------------------------------------------------------------
# network domains (more in test_policy_domains.py)


def test_network_domain_problems_each_have_their_line() -> None:
    assert problems(
        """\
        version: 1
        network_rules:
          - name: a
            cidrs: ["nope"]
            domains: ["*x.org"]
            decision: allow
          - name: b
            domain: [x.org]
            decision: allow
        """
    ) == [
        (4, "bad cidr 'nope': 'nope' does not appear to be an IPv4 or IPv6 network"),
        (5, "bad wildcard '*x.org': '*' may only be a whole first label, as in '*.example.com'"),
        (
            8,
            "unknown key 'domain' in network rule; allowed: name, decision, cidrs, domains,"
            " ports, operations, message",
        ),
    ]


def test_new_problems_are_collected_and_sorted() -> None:
    found = problems(
        """\
        version: 1
        limits:
          memory: 12 parsecs
        signal_rules:
          - name: s
            targets: [parent]
            signals: [TERMINATE]
            decision: allow
        network_rules:
          - name: n
            domains: ["x.*.org"]
            decision: soft_delete
        command_rules:
          - name: c
            commands: [rm]
            decision: redirect
            redirect_to: [rm]
        """
    )
    assert [line for line, _ in found] == [3, 6, 7, 11, 12, 17]
