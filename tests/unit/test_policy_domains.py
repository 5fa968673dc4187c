"""Network rules by domain name: validation (file, line, reason), matching,
first match, and what a resolved address may be (agentsh_ipy.policy)."""

from __future__ import annotations

import pytest

from agentsh_ipy.policy import REBIND_RULE, Policy, example_policy_text
from tests.unit.test_policy import only_problem, parse, problems

RULES = """\
version: 1
network_rules:
  - name: no-smtp
    ports: [25]
    decision: deny
  - name: pypi
    domains: ["pypi.org", "*.pythonhosted.org"]
    ports: [443]
    decision: allow
  - name: index
    domains: ["Index.Test."]
    cidrs: ["10.0.0.2/32"]
    decision: allow
  - name: bad-net
    cidrs: ["203.0.113.0/24"]
    decision: deny
  - name: any-443
    cidrs: ["0.0.0.0/0"]
    ports: [443]
    decision: allow
"""


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('""', "a domain must not be empty"),
        ('"  "', "a domain must not be empty"),
        ('"*"', "bad wildcard '*': '*' may only be a whole first label"),
        ('"*.com"', "bad wildcard '*.com': the suffix must have at least two labels"),
        ('"*example.com"', "bad wildcard '*example.com': '*' may only be a whole first label"),
        ('"a.*.example.com"', "bad wildcard 'a.*.example.com': '*' may only be"),
        ('"**.example.com"', "bad wildcard '**.example.com': '*' may only be"),
        ('"exa mple.com"', "bad domain 'exa mple.com': expected a host name"),
        ('"-x.com"', "bad domain '-x.com': expected a host name"),
        ('"a..b"', "bad domain 'a..b': expected a host name"),
        ('"10.0.0.1"', "'10.0.0.1' is an address, not a name: use cidrs"),
        ('"[::1]"', "'[::1]' is an address, not a name: use cidrs"),
        ('"pypi.org:443"', "bad domain 'pypi.org:443': expected a host name"),
        ('"bücher.de"', "bad domain 'bücher.de': expected a host name"),
    ],
)
def test_bad_domains_give_file_line_and_reason(entry: str, reason: str) -> None:
    line, text = only_problem(
        f"""\
        version: 1
        network_rules:
          - name: n
            domains:
              - ok.example.com
              - {entry}
            decision: allow
        """
    )
    assert line == 6
    assert text.startswith(reason), text


def test_domains_must_be_a_non_empty_list_reached_by_connect() -> None:
    assert only_problem(
        """\
        version: 1
        network_rules:
          - name: n
            domains: []
            decision: allow
        """
    ) == (4, "domains must not be empty")
    assert only_problem(
        """\
        version: 1
        network_rules:
          - name: n
            domains: pypi.org
            decision: allow
        """
    ) == (4, "domains must be a list, not 'pypi.org'")
    assert only_problem(
        """\
        version: 1
        network_rules:
          - name: n
            domains: [pypi.org]
            operations: [bind]
            decision: allow
        """
    ) == (4, "domains are reached by connect: list it in operations")


def test_names_match_exactly_or_below_a_wildcard_first_match_wins() -> None:
    p = parse(RULES)
    assert p.has_domains
    assert p.check_domain("pypi.org", 443)[0].rule == "pypi"
    assert p.check_domain("PyPI.org.", 443)[0].rule == "pypi"
    assert p.check_domain("files.pythonhosted.org", 443)[0].rule == "pypi"
    assert p.check_domain("a.b.pythonhosted.org", 443)[0].rule == "pypi"
    # the wildcard is below the suffix only; a look-alike suffix is another name
    assert p.check_domain("pythonhosted.org", 443)[0].rule == "default:network"
    assert p.check_domain("evilpythonhosted.org", 443)[0].rule == "default:network"
    assert p.check_domain("pypi.org.evil.com", 443)[0].rule == "default:network"
    # ports belong to the rule
    assert p.check_domain("pypi.org", 80)[0].decision == "deny"
    # a rule naming neither names nor addresses applies to names too, in order
    d, rule = p.check_domain("pypi.org", 25)
    assert (d.decision, d.rule, rule and rule.name) == ("deny", "no-smtp", "no-smtp")
    # an address-only rule never decides a name, however broad
    assert p.check_domain("example.com", 443)[0].rule == "default:network"
    # what is not a name is refused before any rule
    assert p.check_domain("10.0.0.2", 443)[0].rule == "proxy"
    assert p.check_domain("", 443)[0].rule == "proxy"


def test_domain_rules_never_decide_a_direct_connect() -> None:
    p = parse(RULES)
    # 10.0.0.2 is in the index rule's cidrs: only a name resolved by the proxy reaches it
    assert p.check_network("connect", "10.0.0.2", 80).rule == "default:network"
    assert p.check_network("connect", "151.101.0.223", 443).rule == "any-443"


def test_resolved_addresses_local_and_private_need_the_rules_cidrs() -> None:
    p = parse(RULES)
    _, pypi = p.check_domain("pypi.org", 443)
    _, index = p.check_domain("index.test", 80)
    assert p.check_resolved(pypi, "pypi.org", "151.101.0.223", 443).decision == "allow"
    for ip in ("127.0.0.1", "10.0.0.2", "192.168.1.1", "169.254.169.254", "::1", "fd00::1",
               "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1"):  # fmt: skip
        d = p.check_resolved(pypi, "pypi.org", ip, 443)
        assert (d.decision, d.rule) == ("deny", REBIND_RULE), ip
    # this host's own public address (the caller knows it from the kernel)
    d = p.check_resolved(pypi, "pypi.org", "151.101.0.223", 443, local=True)
    assert (d.decision, d.rule) == ("deny", REBIND_RULE)
    # the rule's cidrs open exactly their addresses, and close every other
    assert p.check_resolved(index, "index.test", "10.0.0.2", 80).decision == "allow"
    assert p.check_resolved(index, "index.test", "10.0.0.3", 80).rule == REBIND_RULE
    assert p.check_resolved(index, "index.test", "151.101.0.223", 80).rule == REBIND_RULE
    # a deny rule's addresses stay closed to names too
    assert p.check_resolved(pypi, "pypi.org", "203.0.113.5", 443).rule == "bad-net"


def test_example_pypi_policy() -> None:
    variables = {"WORKSPACE": "/w", "HOME": "/home/u", "TMPDIR": "/tmp"}
    p = Policy.parse(example_policy_text("pypi"), "pypi.yaml", variables)
    assert p.name == "pypi"
    assert p.check_domain("pypi.org", 443)[0].decision == "allow"
    assert p.check_domain("files.pythonhosted.org", 443)[0].decision == "allow"
    for name, port in (("pypi.org", 80), ("github.com", 443), ("x.pythonhosted.org", 443)):
        assert p.check_domain(name, port)[0].decision == "deny", name
    # a program that ignores the proxy reaches nothing
    assert p.check_network("connect", "151.101.0.223", 443).decision == "deny"
    with pytest.raises(ValueError, match="no example policy"):
        example_policy_text("npm")


def test_problems_in_several_rules_are_all_reported() -> None:
    assert [line for line, _ in problems(
        """\
        version: 1
        network_rules:
          - name: a
            domains: ["*"]
            decision: allow
          - name: b
            domains: [ok.org, ""]
            ports: [99999]
            decision: allow
        """
    )] == [4, 7, 8]  # fmt: skip
