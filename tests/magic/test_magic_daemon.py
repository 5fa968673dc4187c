"""%%agentsh against the real supervisor daemon, in an in-process
InteractiveShell run as root and as uid 65534: each routed form's denied
write leaves no file and shows the deny in the cell's audit display and in
the JSONL; allowed commands behave exactly as without the sandbox; unload
leaves no daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Area, linux_only, read_audit, write_policy

from ._forms import FORMS, SETUP, cells
from ._harness import audit_events, pid_alive, run_driver

pytestmark = [linux_only, pytest.mark.slow]


def _writes(t: Path) -> list[tuple[str, str]]:
    """(form, cell) pairs, each trying to create ``t``-FORM."""
    forms = {
        "bang": "!echo x > {t}",
        "bangbang": "!!echo x > {t}",
        "assign": "x = !echo x > {t}",
        "sx": "%sx echo x > {t}",
        "system": "%system echo x > {t}",
        "alias": "%alias agentshw echo x > {t}\n%agentshw",
        "pip": "%pip --version > {t}",
        "bash": "%%bash\necho x > {t}",
        "sh": "%%sh\necho x > {t}",
        "script": "%%script sh\necho x > {t}",
        "run": "subprocess.run(['sh', '-c', 'echo x > {t}'])",
        "popen": "subprocess.Popen(['sh', '-c', 'echo x > {t}']).wait()",
        "check_output": "subprocess.check_output('echo x > {t}; true', shell=True)",
        "os_system": "os.system('echo x > {t}')",
        "os_popen": "os.popen('echo x > {t}').close()",
        "spawnv": "os.spawnv(os.P_WAIT, '/bin/sh', ['sh', '-c', 'echo x > {t}'])",
        "spawnlp": "os.spawnlp(os.P_WAIT, 'sh', 'sh', '-c', 'echo x > {t}')",
        "posix_spawn": "os.waitpid(os.posix_spawn('/bin/sh', ['sh', '-c', 'echo x > {t}'],"
                       " os.environ), 0)",
        "posix_spawnp": "os.waitpid(os.posix_spawnp('sh', ['sh', '-c', 'echo x > {t}'],"
                        " os.environ), 0)",
        "asyncio_exec": "async def _e():\n    p = await asyncio.create_subprocess_exec("
                        "'sh', '-c', 'echo x > {t}')\n    await p.wait()\nasyncio.run(_e())",
        "asyncio_shell": "async def _s():\n    p = await asyncio.create_subprocess_shell("
                         "'echo x > {t}')\n    await p.wait()\nasyncio.run(_s())",
        "thread": "_t = threading.Thread(target=lambda: subprocess.run(['sh', '-c',"
                  " 'echo x > {t}']))\n_t.start(); _t.join()",
    }  # fmt: skip
    return [(name, "%%agentsh\n" + code.format(t=f"{t}-{name}")) for name, code in forms.items()]


def test_denied_write_from_each_form_leaves_no_file_and_is_audited(area: Area) -> None:
    target = area.outside / "owned"  # writable by this uid: only the sandbox stops it
    writes = _writes(target)
    r = run_driver(
        area,
        {"cells": [SETUP] + [c for _, c in writes],
         "config": {"audit_dir": str(area.audit.parent)}},
    )  # fmt: skip
    assert list(area.outside.iterdir()) == []
    [jsonl] = list(area.audit.parent.glob("*.jsonl"))
    logged = read_audit(jsonl)
    for i, (name, _) in enumerate(writes, start=1):
        path = f"{target}-{name}"
        cell = r["cells"][i]
        shown = [e for e in audit_events(cell) if e.get("path") == path]
        assert any(e["decision"] == "deny" for e in shown), (name, cell)
        count = i + 1  # execution counts start at 1; the setup cell is 1
        denied = [e for e in logged if e.get("path") == path and e.get("decision") == "deny"]
        assert denied, name
        assert all(e["cell"] == count and e["cell_id"] == f"cell-{i}" for e in denied), denied
    assert r["not_restored"] == []
    assert r["daemon_pid"] is not None and not pid_alive(r["daemon_pid"])
    assert r["left_children"] == []


def _compare(plain: dict[str, Any], boxed: dict[str, Any]) -> None:
    assert boxed["values"] == plain["values"]
    for (name, _), p, b in zip(FORMS, plain["cells"][1:], boxed["cells"][1:], strict=True):
        assert (b["success"], b["error"]) == (p["success"], p["error"]), name
        assert b["stdout"] == p["stdout"], name
        assert b["stderr"] == p["stderr"], name


def test_allowed_commands_behave_as_unsandboxed(area: Area) -> None:
    plain = run_driver(area, {"cells": cells(False)}, name="plain")
    boxed = run_driver(
        area,
        {"cells": cells(True), "config": {"audit_dir": str(area.audit.parent)}},
        name="boxed",
    )
    _compare(plain, boxed)
    # every form's cell shows its audit, nothing denied
    for (name, _), cell in zip(FORMS, boxed["cells"][1:], strict=True):
        events = audit_events(cell)
        if name not in ("missing", "spawnv_missing"):
            assert any(e["type"] == "exec" for e in events), name
        # (bash asks nscd for the user when $SHELL is unset: refused by
        # rule, and glibc reads /etc instead, so the output is the same)
        denied = [e for e in events if e.get("decision") == "deny"]
        assert not [e for e in denied if e.get("rule") != "name-service-cache"], (name, denied)


def test_on_off_sandboxes_the_cells_between(area: Area) -> None:
    t = area.outside / "onoff"
    r = run_driver(
        area,
        {"cells": [
            SETUP,
            "%agentsh on",
            f"subprocess.run(['sh', '-c', 'echo x > {t}-1'])",
            "%agentsh off",
            f"subprocess.run(['sh', '-c', 'echo x > {t}-2'])",
        ], "config": {"audit_dir": str(area.audit.parent)}},
    )  # fmt: skip
    assert not (area.outside / "onoff-1").exists()
    assert (area.outside / "onoff-2").exists()
    assert any(e.get("decision") == "deny" for e in audit_events(r["cells"][2]))
    assert audit_events(r["cells"][4]) == []


def test_approval_without_stdin_is_denied(area: Area) -> None:
    t = area.outside / "asked"
    policy = write_policy(
        area,
        f"  - name: ask-me\n    paths: ['{t}']\n    operations: ['*']\n    decision: approve\n",
    )
    r = run_driver(
        area,
        {"cells": [SETUP, f"%%agentsh --policy {policy}\n!echo x > {t}"],
         "config": {"audit_dir": str(area.audit.parent)}},
    )  # fmt: skip
    assert not t.exists()
    [jsonl] = list(area.audit.parent.glob("*.jsonl"))
    text = jsonl.read_text()
    assert "no approver available (the frontend does not accept input)" in text
    assert any(e.get("decision") == "deny" for e in audit_events(r["cells"][1]))


def test_popen_runs_the_wrapper_steps_in_its_own_child(area: Area) -> None:
    """subprocess launches need no wrapper process: the wrapper's steps run
    as Popen's preexec_fn, and the caller's own preexec_fn after them, inside
    the filter and Landlock, where its write outside the workspace is denied."""
    t = area.outside / "from-preexec"
    code = f"""\
%%agentsh
def _pre():
    with open('/proc/self/status') as f:
        seen = [x for x in f if x.startswith(('Seccomp:', 'NoNewPrivs:'))]
    with open('pre.txt', 'w') as f:
        f.write(''.join(seen))
    open({str(t)!r}, 'w')
try:
    subprocess.run(['true'], preexec_fn=_pre)
except subprocess.SubprocessError as e:
    R['pre'] = str(e)
R['ok'] = subprocess.run(['sh', '-c', 'exit 3'], preexec_fn=lambda: None).returncode
"""
    r = run_driver(area, {"cells": [SETUP, code], "config": {"audit_dir": str(area.audit.parent)}})
    assert r["values"]["pre"] == "Exception occurred in preexec_fn."
    assert r["values"]["ok"] == 3
    assert not t.exists()
    seen = (area.ws / "pre.txt").read_text().split()
    assert seen == ["NoNewPrivs:", "1", "Seccomp:", "2"]
    [jsonl] = list(area.audit.parent.glob("*.jsonl"))
    denied = [e for e in read_audit(jsonl) if e.get("path") == str(t)]
    assert denied and all(e["decision"] == "deny" for e in denied), denied
    assert any(e.get("path") == str(t) for e in audit_events(r["cells"][1]))
