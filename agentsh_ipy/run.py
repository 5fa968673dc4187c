"""``agentsh-ipy run NOTEBOOK``: execute a notebook headless in the sandboxed
kernel, with a per-cell audit summary.

The kernel is started from its command line (``python -m agentsh_ipy.kernel
-f {connection_file} [--policy P]``), not by kernelspec name, so a run works
right after ``pip install`` wherever the kernelspec went, whatever kernel
the notebook names. It runs in the notebook's directory, which is therefore
the sandbox's workspace. nbclient drives it as papermill and ``jupyter
nbconvert --execute`` do: no stdin, so ``approve`` decisions are denied.

Exit status: 0 when every cell ran; 1 when a cell failed (an error, a
timeout, a kernel that died mid-run; the run stops there unless
``allow_errors``; a cell tagged ``raises-exception`` may fail, as in
nbclient); 125 when the sandbox, and so the kernel, could not start (with
the kernel's own reason); 130 after Ctrl-C (it interrupts the running cell,
as Jupyter does, and ends the run; a second one stops the kernel at once);
2 for an unusable argument (a notebook that cannot be read).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .audit import AUDIT_MIME

EXIT_OK = 0
EXIT_CELL_FAILED = 1
EXIT_USAGE = 2
EXIT_SETUP = 125
EXIT_INTERRUPTED = 130
OUTPUT_SUFFIX = ".agentsh.ipynb"
NO_AUDIT = "(no audit)"
EXPECTED_ERROR = "expected error"
IOPUB_TIMEOUT = 60


def default_output(notebook: str | os.PathLike[str]) -> Path:
    """``dir/name.ipynb`` -> ``dir/name.agentsh.ipynb`` (as nbconvert's
    ``--execute`` writes ``name.nbconvert.ipynb``)."""
    p = Path(notebook)
    stem = p.name[: -len(".ipynb")] if p.name.endswith(".ipynb") else p.name
    return p.with_name(stem + OUTPUT_SUFFIX)


def sandboxed_kernel_argv(policy: str | None = None, audit: str | None = None) -> list[str]:
    # -P: not the notebook's directory first on sys.path (kernelspec.kernel_argv)
    argv = [sys.executable, "-P", "-m", "agentsh_ipy.kernel", "-f", "{connection_file}"]
    if policy is not None:
        argv += ["--policy", policy]
    if audit is not None:
        argv += ["--audit", audit]
    return argv


@dataclass
class CellResult:
    """One code cell of the run: its number among the code cells (1-based)."""

    number: int
    index: int
    # ok | error | expected error | aborted | timeout | dead kernel | not run
    status: str = "not run"
    seconds: float = 0.0
    summary: dict[str, Any] | None = None  # the audit's "summary" counts
    line: str = NO_AUDIT  # the audit's text/plain first line

    @property
    def denials(self) -> int:
        return int((self.summary or {}).get("denials", 0))


@dataclass
class Report:
    status: int
    cells: list[CellResult] = field(default_factory=list)
    output: Path | None = None
    error: str | None = None


def cell_audit(cell: Any) -> dict[str, Any] | None:
    """The data of the cell's last audit display (the kernel's own), if any."""
    found = None
    for out in cell.get("outputs", []):
        if out.get("output_type") == "display_data" and AUDIT_MIME in out.get("data", {}):
            found = out["data"]
    return found


def _audit_line(data: dict[str, Any] | None) -> str:
    if data is None:
        return NO_AUDIT
    text = data.get("text/plain", "")
    if isinstance(text, list):  # nbformat may keep multi-line strings as lists
        text = "".join(text)
    return str(text).splitlines()[0] if text else NO_AUDIT


def summary_table(cells: Sequence[CellResult]) -> str:
    """A fixed-width table, one row per code cell."""
    header = ("cell", "status", "time", "processes", "read", "written", "connections", "denials")
    rows = []
    for c in cells:
        s = c.summary
        counts = (
            [str(s.get(k, 0)) for k in ("processes", "files_read", "files_written", "connections")]
            if s is not None
            else ["-"] * 4
        )
        denials = "-" if s is None else (f"{c.denials} DENIED" if c.denials else "0")
        time_ = f"{c.seconds:.1f}s" if c.status != "not run" else ""
        rows.append((str(c.number), c.status, time_, *counts, denials))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:].strip()


def run_notebook(
    notebook: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    policy: str | None = None,
    audit: str | None = None,
    allow_errors: bool = False,
    timeout: float | None = None,
    startup_timeout: float = 60,
    kernel_argv: Sequence[str] | None = None,
    progress: IO[str] | None = None,
) -> Report:
    """Execute ``notebook`` in the sandboxed kernel (``kernel_argv`` replaces
    its command line, for tests), write it with its outputs to ``output``
    (default: :func:`default_output`), and say how it went on ``progress``
    (default: stderr). ``timeout`` is per cell, in seconds (default: none).
    A policy must have been validated by the caller."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import ensure_async
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    err = progress or sys.stderr
    src = Path(notebook)
    try:
        nb = nbformat.read(src, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as e:
        return Report(EXIT_USAGE, error=f"cannot read the notebook {src}: {e}")
    out = Path(output) if output is not None else default_output(src)
    workdir = str(src.resolve().parent)
    argv = list(kernel_argv or sandboxed_kernel_argv(policy, audit))

    class Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(
                argv=argv,
                display_name="Python 3 (agentsh sandbox)",
                language="python",
                interrupt_mode="signal",
                resource_dir=workdir,
            )

    class Client(NotebookClient):
        def create_kernel_manager(self) -> AsyncKernelManager:
            self.km = AsyncKernelManager(
                kernel_name="agentsh-run", kernel_spec_manager=Specs(), config=self.config
            )
            return self.km

    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    results = {i: CellResult(n, i) for n, i in enumerate(code, 1)}
    state: dict[str, Any] = {
        "ready": False,
        "start": 0.0,
        "current": None,
        "interrupted": 0,
        "tasks": [],
    }

    def on_sigint() -> None:
        # Ctrl-C: interrupt the running cell as Jupyter would, and run no
        # other; a second one shuts the kernel down at once.
        state["interrupted"] += 1
        km = client.km
        if km is not None:
            first = state["interrupted"] == 1
            # An AsyncKernelManager's methods are coroutines (nbclient types
            # them as the blocking manager's).
            call = km.interrupt_kernel() if first else km.shutdown_kernel(now=True)
            state["tasks"].append(asyncio.ensure_future(ensure_async(call)))

    def on_ready(**_: Any) -> None:
        state["ready"] = True
        # Replaces nbclient's own handler, which shuts the kernel down under
        # the running cell and then cleans it up a second time.
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_sigint)

    def on_start(**_: Any) -> None:
        if state["interrupted"]:
            raise _Interrupted

    def on_execute(cell: Any, cell_index: int, **_: Any) -> None:
        state["start"] = time.monotonic()
        state["current"] = cell_index

    def on_executed(cell: Any, cell_index: int, execute_reply: dict[str, Any], **_: Any) -> None:
        r = results.get(cell_index)
        if r is None:
            return
        r.seconds = time.monotonic() - state["start"]
        r.status = str(execute_reply.get("content", {}).get("status", "error"))
        if r.status == "error" and state["interrupted"]:
            r.status = "interrupted"
        elif r.status == "error" and timeout is not None and r.seconds >= timeout:
            r.status = "timeout"  # interrupted by nbclient (interrupt_on_timeout)
        elif r.status == "error" and "raises-exception" in cell.metadata.get("tags", []):
            r.status = EXPECTED_ERROR  # nbclient's tag for a cell meant to raise
        data = cell_audit(cell)
        r.summary = None if data is None else dict(data[AUDIT_MIME].get("summary") or {})
        r.line = _audit_line(data)
        _progress(err, len(code), r)

    client = Client(
        nb,
        timeout=None if timeout is None else max(1, math.ceil(timeout)),
        startup_timeout=max(1, math.ceil(startup_timeout)),
        interrupt_on_timeout=True,
        # How long to wait, after a cell's reply, for the rest of its output
        # (nbclient's default is 4 s, then it moves on without it). The
        # supervisor publishes the cell's audit after the reply; a busy
        # cell's audit can take longer than that on a loaded machine.
        iopub_timeout=IOPUB_TIMEOUT,
        allow_errors=allow_errors,
        resources={"metadata": {"path": workdir}},
        on_notebook_start=on_ready,
        on_cell_start=on_start,
        on_cell_execute=on_execute,
        on_cell_executed=on_executed,
        log=_quiet_log(),
    )
    print(f"agentsh-ipy: running {src} ({len(code)} code cells) in the sandboxed kernel", file=err)
    status = EXIT_OK
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="agentsh-run-") as tmp:
        kernel_log = Path(tmp) / "kernel.log"
        with open(kernel_log, "w") as log:
            try:
                client.execute(cwd=workdir, stdout=log, stderr=log)
            except (CellExecutionError, _Interrupted):
                status = EXIT_CELL_FAILED
            except (DeadKernelError, RuntimeError, TimeoutError) as e:
                if not state["ready"]:
                    # nbclient registered a cleanup at exit for a kernel it
                    # has already cleaned up after the failed start.
                    atexit.unregister(client._cleanup_kernel)
                    reason = _tail(kernel_log) or f"{type(e).__name__}: {e}"
                    return Report(
                        EXIT_SETUP,
                        error="the sandboxed kernel could not start; nothing was run.\n" + reason,
                    )
                status = EXIT_CELL_FAILED
                current = results.get(state["current"])
                if current is not None and current.status == "not run":
                    timed_out = isinstance(e, CellTimeoutError)
                    current.status = "timeout" if timed_out else "dead kernel"
                    if state["interrupted"]:
                        current.status = "interrupted"
                    current.seconds = time.monotonic() - state["start"]
                    _progress(err, len(code), current)
                error = f"{type(e).__name__}: {e}"
                reason = _tail(kernel_log, 1500)
                if reason and not isinstance(e, CellTimeoutError):
                    error += "\nthe kernel's last words:\n" + reason
    cells = [results[i] for i in code]
    if any(c.status in ("timeout", "dead kernel") for c in cells) or (
        not allow_errors and any(c.status not in ("ok", "not run", EXPECTED_ERROR) for c in cells)
    ):
        status = EXIT_CELL_FAILED
    if state["interrupted"]:
        status, error = EXIT_INTERRUPTED, "interrupted (Ctrl-C); the cells after it were not run"
    try:
        nbformat.write(nb, out)  # type: ignore[no-untyped-call]
    except OSError as e:
        return Report(EXIT_CELL_FAILED, cells, None, f"cannot write {out}: {e.strerror}")
    return Report(status, cells, out, error)


class _Interrupted(Exception):
    """Raised before the next cell after a Ctrl-C: the run ends there."""


def _quiet_log() -> logging.Logger:
    """nbclient's own log, silenced: the run reports failures itself, with
    the kernel's reason rather than a client-side traceback."""
    log = logging.getLogger("agentsh_ipy.run.nbclient")
    log.propagate = False
    log.setLevel(logging.CRITICAL + 1)
    return log


def _progress(err: IO[str], total: int, r: CellResult) -> None:
    print(f"[{r.number}/{total}] {r.status} {r.seconds:.1f}s  {r.line}", file=err, flush=True)
