"""The magic in a real ipykernel, as root and as uid 65534: the audit
display's three representations, approvals with and without the kernel's
stdin, ``--workspace``, ``%agentsh on|off``, and that unloading the
extension or shutting the kernel down leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_POLICY, Area

from ._harness import (
    AUDIT_MIME,
    SECRET,
    Cell,
    Kernel,
    alive,
    kernel_area,
    kernel_fixture,
    make_user,
    token,
)

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module", params=["root", "nobody"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    for k in kernel_fixture(request):
        k.ok("%load_ext agentsh_ipy")
        yield k


def denied_file(cell: Cell, path: Path) -> dict[str, Any]:
    [event] = [
        e
        for e in cell.events()
        if e["type"] == "file" and e.get("path") == str(path) and e.get("decision") != "allow"
    ]
    return event


def test_the_audit_display_has_three_representations_and_marks_denials(kernel: Kernel) -> None:
    area = kernel.area
    target = area.outside / f"display-{token()}"
    cell = kernel.run(f"%%agentsh --display full\n!echo ok > inside.txt; echo no > {target}")
    assert not target.exists()
    display = cell.audit()
    assert set(display["data"]) == {AUDIT_MIME, "text/html", "text/plain"}

    data = display["data"][AUDIT_MIME]
    assert data["cell"] == cell.execution_count
    assert {e["cell"] for e in data["events"]} == {cell.execution_count}
    execs = [e for e in data["events"] if e["type"] == "exec"]
    assert any(e.get("argv", [""])[0].endswith("sh") for e in execs), execs
    assert denied_file(cell, target)["decision"] == "deny"
    assert data["summary"]["denials"] >= 1

    page = display["data"]["text/html"]
    assert not re.search(r"<\s*(script|style)", page, re.I)
    # The denial first, in its own table, before anything folded.
    first = page.split("<details>")[0]
    [row] = [r for r in first.split("<tr>") if f">{target}</code>" in r]
    assert "<strong>DENIED</strong>" in row and "default:file" in row
    # --display full: every event too, folded, the denied row marked.
    assert "<summary>every event (" in page

    text = display["data"]["text/plain"]
    [denial] = [ln for ln in text.splitlines() if ln.startswith(f"  ! create {target}")]
    assert "[default:file]" in denial
    [line] = [ln for ln in text.splitlines() if str(target) in ln and ln.startswith("! ")]
    assert " file " in line and "DENY" in line
    ok = [ln for ln in text.splitlines() if ln.endswith("workspace") or "inside.txt" in ln]
    assert ok and not any(ln.startswith("!") for ln in ok)


def test_display_summary_is_one_line_and_none_shows_nothing(kernel: Kernel) -> None:
    area = kernel.area
    target = area.outside / f"summary-{token()}"
    summary = kernel.run(f"%%agentsh --display summary\n!echo no > {target}")
    data = summary.audit()["data"]
    # summary: the counts, the denial, the allowed ones folded, no event list
    lines = data["text/plain"].splitlines()
    assert lines[0].startswith("agentsh: 1 DENIED") and lines[1].startswith(f"  ! create {target}")
    assert "every event" not in data["text/html"] and "  seq  type" not in data["text/plain"]
    assert [e.get("path") for e in data[AUDIT_MIME]["events"]] == [str(target)]
    quiet = area.outside / f"none-{token()}"
    none = kernel.run(f"%%agentsh --display none\n!echo no > {quiet}")
    assert not quiet.exists()
    assert not none.audits()


def ask_policy(area: Area, name: str) -> Path:
    ask = (
        f"  - {{name: ask-first, paths: ['{area.outside}/**'], operations: ['*'],"
        " decision: approve}\n"
    )
    return area.write(name, TEST_POLICY.replace("file_rules:\n", "file_rules:\n" + ask, 1))


def test_approve_without_stdin_is_denied_and_the_audit_says_no_approver(kernel: Kernel) -> None:
    area = kernel.area
    policy = ask_policy(area, f"ask-{token()}.yaml")
    target = area.outside / f"asked-{token()}"
    start = time.monotonic()
    cell = kernel.run(
        f"%%agentsh --display full --policy {policy}\n!echo x > {target}", allow_stdin=False
    )
    assert time.monotonic() - start < 30, "an approval without stdin waited for its timeout"
    assert not target.exists()
    assert cell.input_requests == []
    event = denied_file(cell, target)
    assert event["rule"] == "ask-first"
    assert event["decision"] in ("deny", "approve")
    assert "no approver" in str(event.get("approval", "")).lower(), event
    text = cell.audit()["data"]["text/plain"]
    [line] = [ln for ln in text.splitlines() if str(target) in ln and ln.startswith("! ")]
    assert " file " in line and "DENY" in line


def test_approve_asks_through_the_kernels_stdin(kernel: Kernel) -> None:
    area = kernel.area
    policy = ask_policy(area, f"ask-{token()}.yaml")
    yes = area.outside / f"yes-{token()}"
    no = area.outside / f"no-{token()}"
    cell = kernel.run(
        f"%%agentsh --policy {policy}\n!echo x > {yes}\n!echo x > {no}",
        allow_stdin=True,
        answers=["y", "n"],
    )
    assert len(cell.input_requests) == 2, cell.outputs
    assert str(yes) in cell.input_requests[0] and "ask-first" in cell.input_requests[0]
    assert yes.read_text() == "x\n"
    assert not no.exists()
    [granted] = [e for e in cell.events() if e["type"] == "file" and e.get("path") == str(yes)]
    assert granted["decision"] in ("allow", "approve") and granted.get("approval")
    assert denied_file(cell, no)["rule"] == "ask-first"


def test_workspace_option_moves_the_writable_tree(kernel: Kernel) -> None:
    area = kernel.area
    other = area.mkdir(f"other-{token()}")
    in_cwd = area.ws / f"cwd-{token()}"
    cell = kernel.run(f"%%agentsh --workspace {other}\n!echo a > {other}/w; echo b > {in_cwd}")
    assert (other / "w").read_text() == "a\n"
    assert not in_cwd.exists()
    assert denied_file(cell, in_cwd)["decision"] == "deny"


def test_agentsh_on_sandboxes_every_cell_until_off(kernel: Kernel) -> None:
    area = kernel.area
    kernel.ok("%agentsh on")
    try:
        first, second = (area.outside / f"on-{token()}" for _ in range(2))
        cell1 = kernel.run(f"!echo x > {first}")
        cell2 = kernel.run(f"import os\nos.system('echo x > {second}')")
    finally:
        kernel.ok("%agentsh off")
    for cell, target in ((cell1, first), (cell2, second)):
        assert not target.exists()
        assert denied_file(cell, target)["cell"] == cell.execution_count
    after = area.outside / f"off-{token()}"
    cell = kernel.run(f"!echo x > {after}")
    assert after.exists() and not cell.audits()


def test_status_says_whether_the_sandbox_is_on(kernel: Kernel) -> None:
    off = kernel.ok("%agentsh status")
    kernel.ok("%agentsh on")
    try:
        on = kernel.ok("%agentsh status")
    finally:
        kernel.ok("%agentsh off")
    assert str(off.outputs) != str(on.outputs)


ENTRY_NAMES = (
    "Popen._execute_child",
    "os.system",
    "os._spawnvef",
    "os.posix_spawn",
    "os.posix_spawnp",
    "multiprocessing.util.spawnv_passfds",
    "forkserver.connect_to_new_process",
    "interactiveshell.system",
    "zmqshell.system",
    "shell.system",
    "shell.system_piped",
    "shell.getoutput",
    "magic bash",
    "magic sh",
    "magic script",
)
ENTRY_POINTS = f"""\
import os, subprocess, multiprocessing.util, multiprocessing.forkserver
import IPython.core.interactiveshell, ipykernel.zmqshell
def entry_points():
    shell = get_ipython()
    cell_magics = shell.magics_manager.magics["cell"]
    found = [
        subprocess.Popen._execute_child, os.system, os._spawnvef, os.posix_spawn,
        os.posix_spawnp, multiprocessing.util.spawnv_passfds,
        multiprocessing.forkserver.connect_to_new_process,
        IPython.core.interactiveshell.system, ipykernel.zmqshell.system,
        shell.system, shell.system_piped, shell.getoutput,
        cell_magics["bash"], cell_magics["sh"], cell_magics["script"],
    ]
    return dict(zip({ENTRY_NAMES!r}, (getattr(x, "__func__", x) for x in found)))
"""


def sleeping(kernel: Kernel) -> list[list[Any]]:
    """The kernel's processes once the sandboxed ``sleep 600`` runs (Popen
    returns when the wrapper starts; the sleep is exec'd after the handshake)."""
    deadline = time.monotonic() + 15
    while True:
        procs = kernel.processes()
        if any(argv[:2] == ["sleep", "600"] for _, _, argv in procs):
            return procs
        assert time.monotonic() < deadline, f"no sandboxed sleep 600 among {procs}"
        time.sleep(0.1)


def own_kernel(name: str) -> tuple[Kernel, Area]:
    area = kernel_area(make_user(name))
    return Kernel(area), area


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_unload_restores_and_stops_the_supervisor(name: str) -> None:
    kernel, area = own_kernel(name)
    try:
        # Everything the extension may hook, unwrapped from bound methods;
        # after %unload_ext each must be the very object it was before.
        # IPython registers %%bash and %%sh lazily: use them once first so
        # the entries are the loaded magics.
        kernel.ok("%%bash\ntrue\n")
        kernel.ok("%%sh\ntrue\n")
        kernel.ok(ENTRY_POINTS + "_before = entry_points()")
        assert kernel.processes() == []
        kernel.ok("%load_ext agentsh_ipy")
        target = area.outside / f"unload-{token()}"
        sandboxed = kernel.run(f"%%agentsh\n!echo x > {target}")
        assert denied_file(sandboxed, target)
        assert kernel.processes(), "no supervisor runs after a sandboxed cell"
        kernel.ok("%unload_ext agentsh_ipy")
        changed = kernel.ok("[k for k, v in entry_points().items() if v is not _before[k]]")
        assert changed.without_audit()["results"] == ["[]"], "not restored by %unload_ext"
        deadline = time.monotonic() + 10
        while kernel.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kernel.processes() == [], "the supervisor outlived %unload_ext"
        gone = kernel.run("%%agentsh\n!true")
        assert gone.reply["status"] == "error" and not gone.audits()
    finally:
        kernel.shutdown()
        area.cleanup()


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_kernel_shutdown_leaves_no_process(name: str) -> None:
    kernel, area = own_kernel(name)
    try:
        kernel.ok("%load_ext agentsh_ipy")
        # A sandboxed command still running in the background when the
        # kernel goes away, besides the supervisor itself.
        kernel.ok("%%agentsh\nimport subprocess\np = subprocess.Popen(['sleep', '600'])")
        procs = sleeping(kernel)
        kernel.shutdown()
        deadline = time.monotonic() + 15
        while any(alive(pid, start) for pid, start, _ in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [argv for pid, start, argv in procs if alive(pid, start)]
        assert left == [], f"left running after the kernel shut down: {left}"
    finally:
        kernel.shutdown()
        area.cleanup()


def test_events_carry_the_execution_count_and_the_cell_id(kernel: Kernel) -> None:
    cell_id = f"cell-{token()}"
    cell = kernel.ok("%%agentsh\n!true", cell_id=cell_id)
    events = cell.events()
    assert events
    assert {(e["cell"], e.get("cell_id")) for e in events} == {(cell.execution_count, cell_id)}


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_a_killed_kernel_leaves_no_sandboxed_process(name: str) -> None:
    # SIGKILL gives the extension no chance to stop anything: the supervisor
    # must notice its kernel is gone, and nothing may go on unsupervised.
    kernel, area = own_kernel(name)
    try:
        kernel.ok("%load_ext agentsh_ipy")
        kernel.ok("%%agentsh\nimport subprocess\np = subprocess.Popen(['sleep', '600'])")
        procs = sleeping(kernel)
        os.kill(kernel.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while any(alive(pid, start) for pid, start, _ in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [argv for pid, start, argv in procs if alive(pid, start)]
        assert left == [], f"left running after the kernel was killed: {left}"
    finally:
        kernel.shutdown()
        area.cleanup()


def test_pip_runs_sandboxed_as_it_would_without(kernel: Kernel) -> None:
    plain = kernel.run("%pip --version")
    sandboxed = kernel.run("%%agentsh\n%pip --version")
    assert "pip " in plain.stdout
    assert sandboxed.without_audit() == plain.without_audit()
    argvs = [" ".join(e.get("argv", [])) for e in sandboxed.events() if e["type"] == "exec"]
    assert any("-m pip --version" in a for a in argvs), argvs


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_cell_does_what_the_readme_says(kernel: Kernel) -> None:
    [cell_text] = [
        block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
        if block.startswith("%%agentsh\n")
    ]  # fmt: skip
    etc = Path("/etc/agentsh-demo")
    assert not etc.exists(), "left over from an earlier run: remove /etc/agentsh-demo"
    try:
        cell = kernel.run(cell_text)
        assert not etc.exists()
    finally:
        etc.unlink(missing_ok=True)
    assert "hello" in cell.stdout
    assert (kernel.area.ws / "demo.txt").read_text() == "hello\n"
    assert SECRET not in str(cell.outputs)
    denied = {e.get("path") for e in cell.events() if e.get("decision") == "deny"}
    assert {str(etc), str(kernel.area.home / ".ssh" / "id_rsa")} <= denied


STREAMING = {
    "bang": "!for i in 1 2 3; do echo line-$$i; sleep 0.3; done",
    "bash": "%%bash\nfor i in 1 2 3; do echo line-$i; sleep 0.3; done\n",
    "os.system": ("import os\nos.system('for i in 1 2 3; do echo line-$i; sleep 0.3; done')"),
}


@pytest.mark.parametrize("form", STREAMING)
def test_output_streams_while_the_command_runs(kernel: Kernel, form: str) -> None:
    # Each line reaches the client while the command still runs (about 0.3 s
    # apart), in the sandbox as without it.
    for code in (STREAMING[form], "%%agentsh\n" + STREAMING[form]):
        cell = kernel.ok(code)
        arrivals = [
            (o["t"], line)
            for o in cell.outputs
            if o["output_type"] == "stream"
            for line in o["text"].splitlines()
            if line.startswith("line-")
        ]
        assert [line for _, line in arrivals] == ["line-1", "line-2", "line-3"]
        spread = arrivals[-1][0] - arrivals[0][0]
        assert spread > 0.25, f"{code!r}: all output arrived at once ({spread:.2f}s apart)"


INTERRUPTIBLE = {
    "bang": "!sleep 30",
    "subprocess": "import subprocess\nsubprocess.run(['sleep', '30'])",
}


@pytest.mark.parametrize("form", INTERRUPTIBLE)
def test_interrupt_stops_a_sandboxed_command_as_it_does_a_plain_one(
    kernel: Kernel, form: str
) -> None:
    for code in (INTERRUPTIBLE[form], "%%agentsh\n" + INTERRUPTIBLE[form]):
        start = time.monotonic()
        cell = kernel.run(code, interrupt_after=1.0, timeout=40)
        took = time.monotonic() - start
        assert took < 10, f"{code!r}: the interrupt took {took:.1f}s to end the cell"
        deadline = time.monotonic() + 5
        while [a for _, _, a in kernel.processes() if a[:2] == ["sleep", "30"]]:
            assert time.monotonic() < deadline, f"{code!r}: sleep 30 survived the interrupt"
            time.sleep(0.1)
        if code.startswith("%%agentsh"):
            assert any(e["type"] == "process_exit" for e in cell.events()), cell.outputs


def test_hidden_environment_variables_do_not_reach_sandboxed_commands(kernel: Kernel) -> None:
    secret = f"tok-{token()}"
    kernel.ok(f"import os\nos.environ['AGENTSH_TEST_TOKEN'] = {secret!r}")
    try:
        plain = kernel.ok("!env")
        sandboxed = kernel.ok("%%agentsh\n!env")
    finally:
        kernel.ok("del os.environ['AGENTSH_TEST_TOKEN']")
    assert secret in plain.stdout
    assert secret not in str(sandboxed.outputs)
    assert "PATH=" in sandboxed.stdout


def test_a_bad_policy_runs_nothing(kernel: Kernel) -> None:
    area = kernel.area
    bad = area.write(f"bad-{token()}.yaml", "version: 1\nfile_rules: [{decision: maybe}]\n")
    marker = area.ws / f"ran-{token()}"
    for policy in (bad, area.root / "no-such-policy.yaml"):
        cell = kernel.run(f"%%agentsh --policy {policy}\nopen({str(marker)!r}, 'w').close()")
        assert cell.reply["status"] == "error"
        assert str(policy) in str(cell.outputs)
        assert not marker.exists(), "the cell ran although its sandbox could not start"


def test_audit_again_shows_an_earlier_cells_audit(kernel: Kernel) -> None:
    target = kernel.area.outside / f"again-{token()}"
    first = kernel.run(f"%%agentsh\n!echo x > {target}")
    kernel.ok("print('another cell in between')")
    again = kernel.ok(f"%agentsh audit {first.execution_count}")
    [display] = again.audits()
    assert display["data"][AUDIT_MIME]["events"] == first.events()
    assert denied_file(first, target)["decision"] == "deny"


def test_the_audit_log_in_the_workspace_cannot_be_written_by_the_sandbox(kernel: Kernel) -> None:
    area = kernel.area
    log = area.ws / f"audit-{token()}.jsonl"
    # Another policy starts another supervisor, which takes the new log path.
    policy = area.write(f"policy-{token()}.yaml", TEST_POLICY)
    kernel.ok(f"%agentsh log {log}")
    cell = kernel.run(f"%%agentsh --policy {policy}\n!echo forged >> {log}; echo '{{}}' > {log}")
    # Only the supervisor's events: no "forged" line, not truncated to "{}".
    lines = log.read_text().splitlines()
    assert "forged" not in lines and "{}" not in lines and lines
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["session"] for e in events}) == 1
    denied = [e for e in cell.events() if e.get("path") == str(log)]
    assert denied and all(e["decision"] == "deny" for e in denied)
    assert {e["seq"] for e in cell.events()} <= {e["seq"] for e in events}


def test_a_flood_of_allowed_events_does_not_hide_a_denial(kernel: Kernel) -> None:
    # A cell (a model) that first makes more audited operations than the
    # per-cell store keeps (10,000 reads) must not be able to push its denied
    # write out of the display the person reviewing the notebook reads.
    target = kernel.area.outside / f"flood-{token()}"
    reads = "[open('/etc/hostname').close() for i in range(10100)]"
    cell = kernel.run(
        f'%%agentsh --display summary\n!python3 -c "{reads}"; echo x > {target}', timeout=120
    )
    assert not target.exists()
    data = cell.audit()["data"]
    assert data[AUDIT_MIME]["summary"]["denials"] >= 1, data["text/plain"]
    assert "DENIED" in data["text/plain"], data["text/plain"]


def test_sandboxed_commands_cannot_signal_the_supervisor_or_the_kernel(kernel: Kernel) -> None:
    kernel.ok("%%agentsh\n!true")  # the supervisor runs
    status = kernel.ok("%agentsh status").stdout
    [daemon] = [int(p) for p in re.findall(r"daemon: alive, pid (\d+)", status)]
    before = {pid: start for pid, start, _ in kernel.processes()}
    assert daemon in before
    cell = kernel.run(f"%%agentsh\n!kill -9 {daemon}; kill -9 {kernel.pid}; echo still-here")
    assert "still-here" in cell.stdout
    assert alive(daemon, before[daemon]), "a sandboxed command killed the supervisor"
    assert kernel.ok("print('kernel alive')").stdout == "kernel alive\n"
    signals = [e for e in cell.events() if e["type"] == "signal"]
    assert {e.get("target") for e in signals if e["decision"] == "deny"} >= {daemon, kernel.pid}, (
        signals
    )


def test_a_background_process_stays_sandboxed_after_its_cell(kernel: Kernel) -> None:
    target = kernel.area.outside / f"later-{token()}"
    marker = kernel.area.ws / f"later-{token()}"
    kernel.ok(
        "%%agentsh\nimport subprocess\n"
        f"bg = subprocess.Popen(['sh', '-c', 'sleep 1; echo x > {target}; touch {marker}'])"
    )
    kernel.ok("bg.wait(timeout=30)")
    assert marker.exists(), "the background command did not run to its end"
    assert not target.exists(), "a sandboxed process wrote outside once its cell had ended"


def mp_cell(kernel: Kernel, method: str, target: Path) -> str:
    """A cell that starts one multiprocessing worker writing ``target``."""
    helper = f"mp_helper_{token()}"
    kernel.area.write(f"ws/{helper}.py", "def write(path):\n    open(path, 'w').write('x')\n")
    return (
        f"import multiprocessing, {helper}\n"
        f"p = multiprocessing.get_context({method!r}).Process(\n"
        f"    target={helper}.write, args=({str(target)!r},))\n"
        "p.start(); p.join()\n"
        "p.exitcode"
    )


def test_a_multiprocessing_spawn_worker_is_sandboxed(kernel: Kernel) -> None:
    # The spawn start method starts a new interpreter through
    # _posixsubprocess.fork_exec, not through Popen.
    area = kernel.area
    plain_target = area.outside / f"mp-spawn-{token()}-plain"
    assert kernel.ok(mp_cell(kernel, "spawn", plain_target)).without_audit()["results"] == ["0"]
    assert plain_target.exists()  # the companion: the worker does write
    target = area.outside / f"mp-spawn-{token()}"
    sandboxed = kernel.run("%%agentsh\n" + mp_cell(kernel, "spawn", target))
    assert not target.exists(), "a spawn worker wrote outside the workspace"
    assert denied_file(sandboxed, target)["decision"] == "deny"


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_a_forkserver_a_sandboxed_cell_starts_is_sandboxed(name: str) -> None:
    # forkserver (the default start method from Python 3.14) starts its
    # server through _posixsubprocess.fork_exec on first use; its workers are
    # forked from it. A fresh kernel, so this cell is that first use.
    kernel, area = own_kernel(name)
    try:
        kernel.ok("%load_ext agentsh_ipy")
        target = area.outside / f"mp-forkserver-{token()}"
        sandboxed = kernel.run("%%agentsh\n" + mp_cell(kernel, "forkserver", target))
        assert not target.exists(), "a forkserver worker wrote outside the workspace"
        assert denied_file(sandboxed, target)["decision"] == "deny"
    finally:
        kernel.shutdown()
        area.cleanup()


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_a_forkserver_started_outside_the_sandbox_is_refused(name: str) -> None:
    # Its workers are forks of a server that runs unsandboxed: a sandboxed
    # cell must not use it, and says why instead.
    kernel, area = own_kernel(name)
    try:
        kernel.ok("%load_ext agentsh_ipy")
        plain = area.outside / f"mp-fs-plain-{token()}"
        assert kernel.ok(mp_cell(kernel, "forkserver", plain)).without_audit()["results"] == ["0"]
        assert plain.exists()  # the companion: a worker of that server does write
        target = area.outside / f"mp-fs-{token()}"
        cell = kernel.run("%%agentsh\n" + mp_cell(kernel, "forkserver", target))
        assert not target.exists(), "a worker of an unsandboxed forkserver ran in a sandboxed cell"
        errors = cell.without_audit()["errors"]
        assert errors and errors[0][0] == "HookError", errors
        assert "started outside the sandbox" in errors[0][1]
    finally:
        kernel.shutdown()
        area.cleanup()


@pytest.mark.parametrize("name", ["root", "nobody"])
def test_loaded_and_configured_from_the_kernels_config_file(name: str) -> None:
    # c.InteractiveShellApp.extensions loads it; c.AgentshMagics.* configure it.
    area = kernel_area(make_user(name))
    audit_dir = area.mkdir("configured-audit")
    area.write(
        "ipython/profile_default/ipython_kernel_config.py",
        "c.InteractiveShellApp.extensions = ['agentsh_ipy']\n"
        "c.AgentshMagics.display = 'summary'\n"
        f"c.AgentshMagics.audit_dir = {str(audit_dir)!r}\n",
    )
    for d in ("ipython", "ipython/profile_default"):
        area.own(area.root / d)
    kernel = Kernel(area)
    try:
        config = kernel.ok("%config AgentshMagics").stdout
        assert "AgentshMagics.display=<Enum>" in config and "'summary'" in config, config
        target = area.outside / f"configured-{token()}"
        cell = kernel.run(f"%%agentsh\n!echo x > {target}")  # no %load_ext in this kernel
        assert not target.exists()
        assert denied_file(cell, target)["decision"] == "deny"
        text = cell.audit()["data"]["text/plain"]
        assert "1 DENIED" in text and "read-only" not in text  # summary: no allowed rows
        [log] = list(audit_dir.glob("*.jsonl"))
        assert str(target) in log.read_text()
    finally:
        kernel.shutdown()
        area.cleanup()
