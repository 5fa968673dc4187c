"""The CLI's other verbs: detect, policy show/check, audit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Area, linux_only, read_audit, run_cli, sandbox, sandbox_env

pytestmark = linux_only


@pytest.mark.needs_notify
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


def test_policy_protected_lists_the_set_and_check_names_what_opens_it(area: Area) -> None:
    shown = run_cli(area, ["policy", "protected"])
    assert shown.returncode == 0, shown.stderr
    assert "protected:shell-startup: shell and login startup files" in shown.stdout
    assert f"    {area.home}/.bashrc\n" in shown.stdout
    assert "protected:agentsh-ipy (fixed)" in shown.stdout
    path = area.write("open.yaml", "version: 1\nunprotect:\n  - {name: git, reason: clones}\n")
    checked = run_cli(area, ["policy", "check", str(path)])
    assert checked.returncode == 0, checked.stderr
    assert "opens protected entry git: clones" in checked.stdout
    bad = area.write("bad.yaml", "version: 1\nunprotect:\n  - {name: agentsh-ipy, reason: x}\n")
    refused = run_cli(area, ["policy", "check", str(bad)])
    assert refused.returncode == 1
    assert f"{bad}:3: protected entry 'agentsh-ipy' cannot be opened" in refused.stderr


def test_audit_verb_and_report_print_the_table(area: Area) -> None:
    r = sandbox(area, ["sh", "-c", f"echo x > {area.outside}/nope"], extra=["--report"])
    assert "DENY" in r.stderr and f"{area.outside}/nope" in r.stderr
    table = run_cli(area, ["audit", str(area.audit)])
    assert table.returncode == 0
    assert "DENY" in table.stdout and "process_exit" in table.stdout


@pytest.mark.needs_notify
def test_end_event_says_what_the_supervisor_spent(area: Area) -> None:
    """The stats benchmarks/run.py reads: calls handled, the notify thread's
    CPU time, and the supervisor's own peak RSS (its rusage maximum would
    include the 300 MB interpreter that exec'd it)."""
    files = [area.write(f"f{i}.txt", "x") for i in range(20)]
    code = (
        "import os, sys; big = bytearray(300 << 20); big[::4096] = b'x' * len(big[::4096]); "
        "os.execvp(sys.argv[1], sys.argv[1:])"
    )
    r = sandbox(area, ["cat", *map(str, files)])
    assert r.returncode == 0 and r.stdout == "x" * 20, r.stderr
    stats = r.events[-1]["stats"]
    assert r.events[-1]["op"] == "end"
    assert stats["notifications"] >= 20  # one per file at least, plus the loader's
    assert stats["notify_cpu_s"] > 0 and stats["cpu_s"] >= stats["notify_cpu_s"]
    assert 1_000 < stats["peak_rss_kb"] < 150_000
    area.audit.unlink()
    cli = [sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(area.ws),
           "--audit", str(area.audit), "--", "true"]  # fmt: skip
    heavy = subprocess.run(
        area.user.cmd([sys.executable, "-c", code, *cli]), cwd=area.ws, env=sandbox_env(area),
        capture_output=True, text=True, timeout=120, start_new_session=True,
    )  # fmt: skip
    assert heavy.returncode == 0, heavy.stderr
    assert read_audit(area.audit)[-1]["stats"]["peak_rss_kb"] < 150_000


def test_the_command_starts_as_a_plain_child_would(area: Area) -> None:
    """The command is started by a fork of the supervisor (no wrapper
    interpreter): it must still get default signal dispositions (Python
    ignores SIGPIPE and SIGXFSZ), an empty mask, its own process group,
    the supervisor as parent, and be sandboxed; as root and as uid 65534,
    whose supervisor is non-dumpable (the child must be attachable)."""
    script = (
        "grep -E '^(SigIgn|SigBlk|NoNewPrivs|Seccomp):' /proc/self/status; "
        "set -- $(cat /proc/$$/stat); echo $1 $5 $4; echo x > ../outside-write"
    )
    r = sandbox(area, ["sh", "-c", script])
    fields = dict(line.split(":\t") for line in r.stdout.splitlines() if ":\t" in line)
    assert fields["SigIgn"] == "0000000000000000", r.stdout
    assert fields["SigBlk"] == "0000000000000000", r.stdout
    assert fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2", r.stdout
    pid, pgid, ppid = map(int, r.stdout.splitlines()[-1].split())
    assert pgid == pid, "the command is not the leader of its own process group"
    start = r.of_type("process_start")[0]
    assert start["pid"] == pid and start["ppid"] == ppid
    assert not (area.ws.parent / "outside-write").exists()
    denied = [e for e in r.denials("file") if e["path"].endswith("outside-write")]
    assert denied, r.events
