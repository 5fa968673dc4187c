"""The hooks and magics with a fake client (tests/magic/_fake.py): every
launch form is rewritten through ``wrap`` while a %%agentsh cell runs, and
passed through unchanged otherwise; results equal a plain run; unload puts
every object back by identity. No daemon, no enforcement: this checks the
front end's routing, as root and as uid 65534."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Area, linux_only

from ._forms import FORMS, ROUTED_WORD, cells
from ._harness import AUDIT_MIME, run_driver

pytestmark = [linux_only, pytest.mark.slow]

PROBE = (
    "subprocess.run(['sh', '-c', 'echo ${AGENTSH_FAKE:-none}'], capture_output=True,"
    " text=True).stdout"
)

HOOKED = [
    "Popen._execute_child", "interactiveshell.system", "os._spawnvef", "os.posix_spawn",
    "os.posix_spawnp", "os.system", "zmqshell.system", "multiprocessing.util.spawnv_passfds",
    "forkserver.connect_to_new_process",
]  # fmt: skip


AFTER = "R['after'] = " + PROBE
INSIDE = "R['inside'] = " + PROBE


@pytest.fixture
def runs(area: Area) -> tuple[dict[str, Any], dict[str, Any]]:
    plain = run_driver(area, {"fake": True, "cells": cells(False)}, name="plain")
    fake = run_driver(
        area,
        {"fake": True, "cells": [*cells(True), AFTER, "%%agentsh\n" + INSIDE]},
        name="fake",
    )  # fmt: skip
    return plain, fake


def test_every_form_is_routed_and_behaves_as_unsandboxed(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    plain, fake = runs
    assert sorted(fake["hooked"]) == sorted(HOOKED)
    # the same observable results
    assert fake["values"].pop("after") == "none\n"
    assert fake["values"].pop("inside") == "1\n"
    assert fake["values"] == plain["values"]
    sandboxed = fake["cells"][1 : len(FORMS) + 1]
    for (name, _), p, f in zip(FORMS, plain["cells"][1:], sandboxed, strict=True):
        assert (f["success"], f["error"]) == (p["success"], p["error"]), name
        assert f["stdout"] == p["stdout"], name
        assert f["stderr"] == p["stderr"], name
    # nothing was wrapped in the plain run, everything in the sandboxed one
    assert plain["calls"] == []
    by_cell: dict[int, list[dict[str, Any]]] = {}
    for c in fake["calls"]:
        by_cell.setdefault(c["cell"], []).append(c)
    for i, (name, _) in enumerate(FORMS, start=2):  # cell 1 is the setup
        words = [" ".join(c["argv"]) for c in by_cell.get(i, [])]
        if name in ("missing", "spawnv_missing"):
            assert words == [], name  # wrap refused: nothing registered, nothing ran
            continue
        assert any(ROUTED_WORD[name] in w for w in words), (name, words)
    after_cell = len(FORMS) + 2
    assert after_cell not in by_cell
    assert (after_cell + 1) in by_cell


def test_argv_and_executable_handed_to_wrap(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, fake = runs
    calls = {" ".join(c["argv"]): c for c in fake["calls"]}
    exe = calls["myname -c echo $0"]
    assert exe["executable"] == "/bin/sh"
    assert calls["/bin/sh -c echo $0"]["executable"] == "/bin/sh"  # shell=True
    env = calls["sh -c echo $ONLY; exit 4"]
    assert env["env_given"] and env["executable"] == "sh"
    assert calls["sh -c exit 4"]["executable"] == "/bin/sh"  # spawnv: the file, not argv[0]
    assert calls["sh -c exit 6"]["executable"] == "/bin/sh"
    assert calls["sh -c exit 7"]["executable"].endswith("/sh")  # posix_spawnp: searched


def test_audit_display_and_unload(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, fake = runs
    run_cell = fake["cells"][1 + [n for n, _ in FORMS].index("run")]
    bundles = [o for o in run_cell["outputs"] if AUDIT_MIME in o]
    assert len(bundles) == 1
    [bundle] = bundles
    assert set(bundle) >= {"text/plain", "text/html", AUDIT_MIME}
    events = bundle[AUDIT_MIME]["events"]
    assert [e["argv"] for e in events] == [["sh", "-c", "echo out; echo err >&2; exit 3"]]
    assert "<script" not in bundle["text/html"]
    assert fake["not_restored"] == []
    assert fake["registered_after_unload"] is False
    assert fake["agentsh_magic_after_unload"] == []
    assert fake["fake_closed"] and all(fake["fake_closed"])
    assert fake["left_children"] == []


def test_refusal_unsandboxed_opt_in_errors_and_line_magics(area: Area) -> None:
    made = area.ws / "made"
    write = f"open({str(made)!r}, 'w').close()"
    r = run_driver(
        area,
        {"enforcement": [False, "no mechanism here"], "config": {"display": "summary"},
         "cells": [
            "%%agentsh\n" + write,
            "%%agentsh --allow-unsandboxed\n" + write,
            "%agentsh on",
            "%config AgentshMagics",
            "%agentsh status",
            "%agentsh log /tmp/agentsh-next.jsonl",
            "%agentsh log",
            "%agentsh policy",
            "%agentsh bogus",
         ]},
    )  # fmt: skip
    refused, opted, on, config, status, log, log_show, policy, bogus = r["cells"]
    assert not refused["success"]
    assert "UsageError" in refused["error"] and "NOT run" in refused["error"]
    assert "no mechanism here" in refused["error"]
    assert made.exists()  # created by the opted-in cell only (the refused one ran nothing)
    assert opted["success"]
    assert any("NOT SANDBOXED" in o["text/plain"] for o in opted["outputs"])
    assert not on["success"] and "still off" in on["error"]
    for trait in ("policy", "workspace", "display", "audit_dir", "handoff_timeout",
                  "ready_timeout", "go_timeout"):  # fmt: skip
        assert f"AgentshMagics.{trait}" in config["stdout"], trait
    assert (
        "agentsh: %%agentsh cells run their processes sandboxed; other cells do not"
        in status["stdout"]
        and "UNAVAILABLE: no mechanism here" in status["stdout"]
    )
    assert (
        "/tmp/agentsh-next.jsonl" in log["stdout"]
        and "/tmp/agentsh-next.jsonl" in log_show["stdout"]
    )
    assert "built-in default policy" in policy["stdout"]
    assert not bogus["success"] and "unknown command" in bogus["error"]


def test_a_failing_body_fails_the_cell_and_still_shows_the_audit(area: Area) -> None:
    r = run_driver(
        area,
        {"fake": True, "cells": [
            "%%agentsh --display summary\nimport subprocess\nsubprocess.run(['true'])\n"
            "raise ValueError('boom')",
            "%%agentsh --display none\nimport subprocess\nsubprocess.run(['true'])",
            "%agentsh audit 2",
        ]},
    )  # fmt: skip
    failed, quiet, again = r["cells"]
    assert not failed["success"] and failed["error"] == "ValueError: boom"
    assert "ValueError" in failed["stdout"] + failed["stderr"]  # the traceback, as usual
    [bundle] = [o for o in failed["outputs"] if AUDIT_MIME in o]
    # --display summary: the counts and a reference to the log, no allowed event kept
    assert bundle[AUDIT_MIME]["summary"]["execs"] == 1 and bundle[AUDIT_MIME]["events"] == []
    assert bundle[AUDIT_MIME]["cell"] == 1 and bundle[AUDIT_MIME]["log"]["events"] >= 1
    assert "programs  1: true" in bundle["text/plain"]
    assert quiet["success"] and quiet["outputs"] == []
    [shown] = [o for o in again["outputs"] if AUDIT_MIME in o]
    # %agentsh audit N: every event
    assert shown[AUDIT_MIME]["events"][0]["cell_id"] == "cell-1"
    assert shown[AUDIT_MIME]["events_kept"] == "all"
