"""`agentsh-ipy run`: progress, the summary table, the executed notebook and
the exit statuses, driven through the CLI in-process with a stand-in kernel
(the plain ipykernel, or a kernel that refuses to start), so that these
tests say what `run` does whatever the sandboxed kernel does. The demo
notebooks (tests/notebooks/test_demo_notebooks.py) run it for real, with the
sandboxed kernel, as root and as uid 65534."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from agentsh_ipy import cli
from agentsh_ipy import run as rn
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PLAIN_KERNEL = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
AUDIT = {
    "text/plain": "agentsh: 1 process, 1 exec, 2 files read, 1 written, 0 connections, 1 DENIED\n"
    "  seq  type  op",
    "text/html": "<p>audit</p>",
    rn.AUDIT_MIME: {
        "version": 1,
        "cell": 1,
        "summary": {
            "processes": 1,
            "execs": 1,
            "files_read": 2,
            "files_written": 1,
            "connections": 0,
            "denials": 1,
        },
        "events": [],
    },
}
# A cell that displays an audit as the sandboxed kernel does after each cell.
SHOW_AUDIT = f"from IPython.display import display\ndisplay({AUDIT!r}, raw=True)"


def notebook(tmp_path: Path, *sources: str) -> Path:
    cells: list[Any] = [new_markdown_cell("# a test")]
    cells += [new_code_cell(s) for s in sources]
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: Sequence[str],
    kernel: Sequence[str] = PLAIN_KERNEL,
) -> tuple[int, str]:
    """`agentsh-ipy run ARGS` with ``kernel`` in place of the sandboxed one."""
    seen: list[tuple[str | None, str | None]] = []

    def argv(policy: str | None = None, audit: str | None = None) -> list[str]:
        seen.append((policy, audit))
        return list(kernel)

    monkeypatch.setattr(rn, "sandboxed_kernel_argv", argv)
    status = cli.main(["run", *args])
    assert len(seen) <= 1
    return status, capsys.readouterr().err


def outputs(path: Path) -> list[list[Any]]:
    nb = nbformat.read(path, as_version=4)
    return [c.outputs for c in nb.cells if c.cell_type == "code"]


@pytest.mark.slow
def test_a_run_that_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = notebook(
        tmp_path,
        "import os\nprint(os.getcwd())",
        SHOW_AUDIT,
        "",  # an empty cell is not run, and not counted
        "open('made-here.txt', 'w').write('x')",
    )
    status, err = run_cli(monkeypatch, capsys, [str(path)])
    assert status == 0, err
    lines = err.splitlines()
    assert lines[0] == f"agentsh-ipy: running {path} (3 code cells) in the sandboxed kernel"
    assert lines[1].startswith("[1/3] ok ") and lines[1].endswith("  (no audit)")
    assert lines[2].startswith("[2/3] ok ")
    assert lines[2].endswith("  " + AUDIT["text/plain"].splitlines()[0])  # type: ignore[attr-defined]
    assert lines[3].startswith("[3/3] ok ")
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == [
        "cell", "status", "time", "processes", "read", "written", "connections", "denials",
    ]  # fmt: skip
    assert table[1].split()[:2] == ["1", "ok"] and table[1].split()[3:] == ["-"] * 5
    assert table[2].split()[3:] == ["1", "2", "1", "0", "1", "DENIED"]
    out = tmp_path / "nb.agentsh.ipynb"  # the default output, beside the notebook
    assert table[-1] == f"agentsh-ipy: executed notebook written to {out}"
    # The kernel ran in the notebook's directory (the workspace); the
    # executed notebook has every output, the audit display included.
    cells = outputs(out)
    assert cells[0][0]["text"].strip() == str(tmp_path)
    assert cells[1][0]["data"][rn.AUDIT_MIME]["summary"]["denials"] == 1
    assert (tmp_path / "made-here.txt").exists()


@pytest.mark.slow
def test_a_failing_cell_stops_the_run_unless_errors_are_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = notebook(tmp_path, "print('one')", "1/0", "print('three')")
    out = tmp_path / "out.ipynb"
    status, err = run_cli(monkeypatch, capsys, [str(path), "-o", str(out)])
    assert status == 1, err
    assert "[2/3] error " in err and "[3/3]" not in err
    assert [ln.split()[:2] for ln in err.splitlines() if ln[:1].isdigit()] == [
        ["1", "ok"], ["2", "error"], ["3", "not"],
    ]  # fmt: skip
    cells = outputs(out)  # written all the same, with the error and what ran before
    assert cells[1][0]["ename"] == "ZeroDivisionError" and cells[2] == []

    status, err = run_cli(monkeypatch, capsys, [str(path), "-o", str(out), "--allow-errors"])
    assert status == 0, err
    assert "[3/3] ok " in err
    assert outputs(out)[2][0]["text"] == "three\n"

    # A cell tagged raises-exception is meant to fail (nbclient's convention).
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].metadata["tags"] = ["raises-exception"]
    nbformat.write(nb, path)
    status, err = run_cli(monkeypatch, capsys, [str(path), "-o", str(out)])
    assert status == 0, err
    assert "[2/3] expected error " in err and "[3/3] ok " in err


@pytest.mark.slow
def test_a_cell_past_its_timeout_is_interrupted_and_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = notebook(tmp_path, "import time\ntime.sleep(60)", "print('after')")
    out = tmp_path / "out.ipynb"
    args = [str(path), "-o", str(out), "--timeout", "2", "--allow-errors"]
    status, err = run_cli(monkeypatch, capsys, args)
    assert status == 1, err
    assert "[1/2] timeout " in err
    assert "[2/2] ok " in err  # interrupted, not killed: the kernel goes on
    assert outputs(out)[0][-1]["ename"] == "KeyboardInterrupt"


def test_a_kernel_that_cannot_start_is_125_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = notebook(tmp_path, "print('never')")
    refuse = [
        sys.executable,
        "-c",
        "import sys; print('agentsh kernel: the sandbox is unavailable here: no seccomp;"
        " the kernel was not started', file=sys.stderr); sys.exit(125)",
    ]
    status, err = run_cli(monkeypatch, capsys, [str(path)], kernel=refuse)
    assert status == 125, err
    assert "the sandboxed kernel could not start; nothing was run" in err
    assert "agentsh-ipy: agentsh kernel: the sandbox is unavailable here: no seccomp" in err
    assert not (tmp_path / "nb.agentsh.ipynb").exists()
    assert "Traceback" not in err


def test_a_broken_policy_is_125_before_any_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = notebook(tmp_path, "print('never')")
    policy = tmp_path / "bad.yaml"
    policy.write_text("version: 1\nlimits: {max_processes: lots}\n")
    status, err = run_cli(monkeypatch, capsys, [str(path), "--policy", str(policy)])
    assert status == 125
    assert f"agentsh-ipy: policy error: {policy}:2:" in err
    assert "running" not in err


def test_the_kernel_command_line(tmp_path: Path) -> None:
    assert rn.sandboxed_kernel_argv("/p.yaml", "/a.jsonl") == [
        sys.executable, "-P", "-m", "agentsh_ipy.kernel", "-f", "{connection_file}",
        "--policy", "/p.yaml", "--audit", "/a.jsonl",
    ]  # fmt: skip
    assert rn.default_output("dir/x.ipynb") == Path("dir/x.agentsh.ipynb")
    assert cli.main(["run", str(tmp_path / "missing.ipynb")]) == 2


def test_the_sandboxed_kernel_that_cannot_start_is_125(tmp_path: Path) -> None:
    """The real kernel, refusing to start (its audit log cannot be opened):
    the run reports the kernel's reason and runs nothing."""
    path = notebook(tmp_path, "open('ran.txt', 'w')")
    p = subprocess.run(
        [sys.executable, "-m", "agentsh_ipy.cli", "run", str(path), "--audit", "/proc/nope/a"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 125, p.stderr
    assert "the sandboxed kernel could not start; nothing was run" in p.stderr
    assert "cannot open the audit log /proc/nope/a" in p.stderr
    assert not (tmp_path / "ran.txt").exists()
    assert not (tmp_path / "nb.agentsh.ipynb").exists()


@pytest.mark.slow
def test_ctrl_c_interrupts_the_cell_and_ends_the_run(tmp_path: Path) -> None:
    """The real sandboxed kernel: Ctrl-C interrupts the running cell (as
    Jupyter does), runs no other, writes what ran, exits 130 and leaves no
    process behind (a program the cell started included)."""
    marker = f"agentsh-run-ctrl-c-{tmp_path.name}"
    path = notebook(
        tmp_path,
        "print('one')",
        f"import subprocess, time\nsubprocess.Popen(['sleep', '120', '{marker}'])\ntime.sleep(120)",
        "print('three')",
    )
    p = subprocess.Popen(
        [sys.executable, "-m", "agentsh_ipy.cli", "run", str(path)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stderr is not None
    deadline = time.monotonic() + 60
    err = ""
    while "[1/3] ok" not in err and time.monotonic() < deadline:
        if select.select([p.stderr], [], [], 1)[0]:
            err += p.stderr.readline()
    assert "[1/3] ok" in err, err
    time.sleep(2)  # cell 2 is sleeping, its program started
    p.send_signal(signal.SIGINT)
    _, rest = p.communicate(timeout=60)
    err += rest
    assert p.returncode == 130, err
    assert "[2/3] interrupted " in err and "[3/3]" not in err
    assert "interrupted (Ctrl-C); the cells after it were not run" in err
    cells = outputs(tmp_path / "nb.agentsh.ipynb")
    errors = [o["ename"] for o in cells[1] if o["output_type"] == "error"]
    assert errors == ["KeyboardInterrupt"] and cells[2] == [], cells
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert left == "", f"left running: {left}"
