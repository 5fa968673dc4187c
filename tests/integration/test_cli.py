"""The CLI's other verbs: detect, policy show/check, audit."""

from __future__ import annotations

import json

from tests.conftest import Area, linux_only, run_cli, sandbox

pytestmark = linux_only


def test_detect_json_says_what_the_sandbox_uses(area: Area) -> None:
    r = run_cli(area, ["detect", "--json"])
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["sandbox"]["enforcing"] is True
    assert facts["sandbox"]["mode"] == "notify"
    assert facts["probes"]["seccomp_user_notify"]["available"] is True
    assert isinstance(facts["probes"]["landlock"]["value"], int)


def test_policy_show_prints_a_policy_that_checks(area: Area) -> None:
    shown = run_cli(area, ["policy", "show"])
    assert shown.returncode == 0
    assert "name: default" in shown.stdout
    path = area.write("shown.yaml", shown.stdout)
    checked = run_cli(area, ["policy", "check", str(path)])
    assert checked.returncode == 0, checked.stderr
    assert "ok (policy 'default')" in checked.stdout


def test_policy_check_names_file_line_and_reason(area: Area) -> None:
    path = area.write(
        "bad.yaml",
        "version: 1\nnetwork_rules:\n  - {name: n, cidrs: [300.1.1.1/8], decision: allow}\n",
    )
    r = run_cli(area, ["policy", "check", str(path)])
    assert r.returncode == 1
    assert f"{path}:3:" in r.stderr
    assert "300.1.1.1/8" in r.stderr


def test_audit_verb_and_report_print_the_table(area: Area) -> None:
    r = sandbox(area, ["sh", "-c", f"echo x > {area.outside}/nope"], extra=["--report"])
    assert "DENY" in r.stderr and f"{area.outside}/nope" in r.stderr
    table = run_cli(area, ["audit", str(area.audit)])
    assert table.returncode == 0
    assert "DENY" in table.stdout and "process_exit" in table.stdout
