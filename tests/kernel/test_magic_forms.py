"""Every routed form of starting a program, in a real ipykernel, as root and
as uid 65534: under ``%%agentsh`` a write outside the workspace and a read of
~/.ssh are denied (nothing written, the secret not shown, a deny for each
path in the cell's audit), and an allowed command's output, result and
return code equal those of the same cell run without ``%%agentsh`` in the
same kernel. The plain run of the denied cell is the companion that shows
the form really writes and reads (so the sandboxed run could have failed).

One kernel per user for the whole module; each cell has its own paths.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._harness import SECRET, Cell, Kernel, kernel_fixture, token

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]


def _thread(sh: str) -> str:
    return (
        "import subprocess, sys, threading\n"
        "res = []\n"
        "def work():\n"
        f"    res.append(subprocess.run(['sh', '-c', {sh!r}], capture_output=True, text=True))\n"
        "t = threading.Thread(target=work)\n"
        "t.start(); t.join()\n"
        "print(res[0].stdout, end='')\n"
        "print(res[0].stderr, end='', file=sys.stderr)\n"
        "res[0].returncode"
    )


# Each form turns a shell script into a cell (without the %%agentsh line)
# that runs it and ends with its return code as the cell's result where the
# form has one. The script never contains `{` or `$`, which !cmd expands.
FORMS: dict[str, Callable[[str], str]] = {
    "bang": lambda sh: f"!{sh}\n_exit_code",
    "bangbang": lambda sh: f"!!{sh}",
    "assign": lambda sh: f"x = !{sh}\nx",
    "sx": lambda sh: f"%sx {sh}",
    "system": lambda sh: f"%system {sh}",
    "bash": lambda sh: f"%%bash\n{sh}\n",
    "sh": lambda sh: f"%%sh\n{sh}\n",
    "script-sh": lambda sh: f"%%script sh\n{sh}\n",
    "subprocess.run": lambda sh: (
        "import subprocess, sys\n"
        f"r = subprocess.run(['sh', '-c', {sh!r}], capture_output=True, text=True)\n"
        "print(r.stdout, end='')\n"
        "print(r.stderr, end='', file=sys.stderr)\n"
        "r.returncode"
    ),
    "subprocess.call": lambda sh: f"import subprocess\nsubprocess.call({sh!r}, shell=True)",
    "os.system": lambda sh: f"import os\nos.waitstatus_to_exitcode(os.system({sh!r}))",
    "os.popen": lambda sh: f"import os\nf = os.popen({sh!r})\nprint(f.read(), end='')\nf.close()",
    "os.spawnlp": lambda sh: f"import os\nos.spawnlp(os.P_WAIT, 'sh', 'sh', '-c', {sh!r})",
    "os.posix_spawnp": lambda sh: (
        "import os\n"
        f"pid = os.posix_spawnp('sh', ['sh', '-c', {sh!r}], os.environ)\n"
        "os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])"
    ),
    "asyncio": lambda sh: (
        "import asyncio, sys\n"
        f"p = await asyncio.create_subprocess_exec('sh', '-c', {sh!r},\n"
        "    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)\n"
        "out, err = await p.communicate()\n"
        "print(out.decode(), end='')\n"
        "print(err.decode(), end='', file=sys.stderr)\n"
        "p.returncode"
    ),
    # The same through a loop of its own on a thread the cell starts: the
    # routing of asyncio's launches apart from top-level await in the cell.
    "asyncio-thread": lambda sh: (
        "import asyncio, sys, threading\n"
        "async def go():\n"
        f"    p = await asyncio.create_subprocess_exec('sh', '-c', {sh!r},\n"
        "        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)\n"
        "    out, err = await p.communicate()\n"
        "    return p.returncode, out, err\n"
        "res = []\n"
        "t = threading.Thread(target=lambda: res.append(asyncio.run(go())))\n"
        "t.start(); t.join()\n"
        "print(res[0][1].decode(), end='')\n"
        "print(res[0][2].decode(), end='', file=sys.stderr)\n"
        "res[0][0]"
    ),
    "thread": _thread,
}


@pytest.fixture(scope="module", params=["root", "nobody"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    for k in kernel_fixture(request):
        k.ok("%load_ext agentsh_ipy")
        yield k


def run_settled(kernel: Kernel, code: str) -> Cell:
    """A cell, with every byte its children wrote, sandboxed or not. A
    child writing to the kernel's own fd 1/2 (os.system, os.posix_spawnp)
    reaches the frontend through ipykernel's fd capture, which may deliver
    it after the cell ended, into the next cell: empty cells are run until
    one gets nothing, and what they got is this cell's."""
    cell = kernel.run(code)
    for _ in range(20):
        time.sleep(0.1)
        late = [o for o in kernel.run("pass").outputs if o["output_type"] == "stream"]
        if not late:
            return cell
        cell.outputs.extend(late)
    raise AssertionError(f"output kept coming after the cell: {cell.outputs}")


def file_events(cell: Cell, path: Path) -> list[dict[str, Any]]:
    return [e for e in cell.events() if e["type"] == "file" and e.get("path") == str(path)]


@pytest.mark.parametrize("form", FORMS)
def test_denied_write_and_read(kernel: Kernel, form: str) -> None:
    area = kernel.area
    tag = token()
    secret_path = area.home / ".ssh" / "id_rsa"

    def script(target: Path) -> str:
        return f"echo x > {target}; cat ~/.ssh/id_rsa; echo done-{tag}"

    target = area.outside / f"{form}-{tag}"
    cell = run_settled(kernel, "%%agentsh\n" + FORMS[form](script(target)))
    shown = str(cell.outputs)

    assert f"done-{tag}" in shown, f"the cell did not run its script: {cell.outputs}"
    assert not target.exists(), f"{form}: the write outside the workspace landed"
    assert SECRET not in shown, f"{form}: the secret was shown"
    [write] = [e for e in file_events(cell, target) if e["decision"] == "deny"]
    assert write["rule"] == "default:file"
    assert write["cell"] == cell.execution_count
    reads = [e for e in file_events(cell, secret_path) if e["decision"] == "deny"]
    assert reads and {e["rule"] for e in reads} == {"credentials"}
    assert cell.audit()["data"]["application/vnd.agentsh.audit+json"]["cell"] == (
        cell.execution_count
    )

    # The companion: the same form without the sandbox does write and read.
    # (What it read goes to a file: a child's output reaches the cell through
    # ipykernel's fd capture, which may deliver it after the cell ended.)
    plain_target = area.outside / f"{form}-{tag}-plain"
    read = area.outside / f"{form}-{tag}-read"
    plain = run_settled(
        kernel,
        FORMS[form](
            script(plain_target).replace("cat ~/.ssh/id_rsa", f"cat ~/.ssh/id_rsa > {read}")
        ),
    )
    assert plain_target.read_text() == "x\n"
    assert SECRET in read.read_text()
    assert not plain.audits(), "a cell without %%agentsh got an audit"


ALLOWED = "echo out-1; echo err-1 >&2; echo data > inws-TAG.txt; cat inws-TAG.txt; exit 3"


@pytest.mark.parametrize("form", FORMS)
def test_allowed_command_behaves_as_without_the_sandbox(kernel: Kernel, form: str) -> None:
    tag = token()
    sh = ALLOWED.replace("TAG", tag)
    plain = run_settled(kernel, FORMS[form](sh))
    (kernel.area.ws / f"inws-{tag}.txt").unlink()
    sandboxed = run_settled(kernel, "%%agentsh\n" + FORMS[form](sh))

    assert sandboxed.without_audit() == plain.without_audit()
    assert "out-1" in str(plain.outputs)  # the comparison compares something
    events = sandboxed.events()
    written = kernel.area.ws / f"inws-{tag}.txt"
    assert written.read_text() == "data\n"
    assert [e["decision"] for e in file_events(sandboxed, written)][:1] == ["allow"]
    exits = [e for e in events if e["type"] == "process_exit" and e.get("exit_code") == 3]
    assert exits, "the audit does not record the script's exit code"
    # (bash asks nscd for the user when $SHELL is unset: refused by rule,
    # and glibc reads /etc instead, so the output is the same)
    denied = [e for e in events if e.get("decision") == "deny"]
    assert not [e for e in denied if e.get("rule") != "name-service-cache"], denied


MISSING = "agentsh-no-such-command"
NOT_FOUND = {
    "bang": f"!{MISSING}\n_exit_code",
    "subprocess.run": f"import subprocess\nsubprocess.run([{MISSING!r}])",
    "subprocess.run-shell": (
        f"import subprocess\nsubprocess.run({MISSING!r}, shell=True).returncode"
    ),
    "os.system": f"import os\nos.waitstatus_to_exitcode(os.system({MISSING!r}))",
    "os.posix_spawnp": f"import os\nos.posix_spawnp({MISSING!r}, [{MISSING!r}], os.environ)",
}


@pytest.mark.parametrize("form", NOT_FOUND)
def test_a_missing_program_fails_as_without_the_sandbox(kernel: Kernel, form: str) -> None:
    plain = run_settled(kernel, NOT_FOUND[form])
    sandboxed = run_settled(kernel, "%%agentsh\n" + NOT_FOUND[form])
    assert sandboxed.without_audit() == plain.without_audit()
    assert MISSING in str(plain.outputs)
