"""A real ipykernel (or a headless notebook run) as the test's user.

The kernel runs as root or as uid 65534: a driver script (kernel_session.py,
run_notebook.py) is copied into the scratch area and run through
``user.cmd``; it starts the venv's ``python3`` kernelspec with its runtime
directory, home, IPython and Jupyter directories all inside the area (so
uid 65534 writes nothing outside it) and reports what the kernel sent as
JSON. Every assertion is made here, in the pytest process.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    IS_ROOT,
    NOBODY,
    REPO,
    Area,
    User,
    _check_nobody_can_run,
    _setpriv,
    sandbox_env,
)

HERE = Path(__file__).resolve().parent
AUDIT_MIME = "application/vnd.agentsh.audit+json"
SECRET = "agentsh-test-secret-" + uuid.uuid4().hex[:12]


def token() -> str:
    """A short random suffix that keeps one test's paths apart from another's."""
    return uuid.uuid4().hex[:8]


def make_user(name: str) -> User:
    """The ``user`` fixture's logic, for module-scoped fixtures."""
    if name == "root":
        if not IS_ROOT:
            pytest.skip(
                "the suite is not running as root; the unprivileged variant covers this user"
            )
        return User("root", 0)
    if not IS_ROOT:
        return User("self", os.geteuid())
    _check_nobody_can_run()
    return User("nobody", NOBODY, _setpriv())


def kernel_area(user: User, *, full_audit: bool = True) -> Area:
    """An Area with a secret in ~/.ssh and the Jupyter/IPython directories
    the kernel needs, all owned by the user. ``full_audit``: the profile's
    kernel config sets ``AgentshMagics.display = 'full'``, so that a cell's
    audit display keeps every event (the default keeps the denied ones), which
    the tests look through; without it the IPython directory is empty, as
    for a user's first kernel."""
    area = Area(user)
    for name in ("runtime", "ipython", "jupyter-data", "jupyter-config", "home/.ssh"):
        area.mkdir(name)
    (area.root / "runtime").chmod(0o700)
    area.write("home/.ssh/id_rsa", SECRET + "\n", mode=0o600)
    if full_audit:
        area.mkdir("ipython/profile_default")
        area.write(
            "ipython/profile_default/ipython_kernel_config.py",
            "c.AgentshMagics.display = 'full'\n",
        )
    return area


def kernel_env(area: Area, **extra: str) -> dict[str, str]:
    env = sandbox_env(area)
    # ipykernel does not capture fd-level output (os.system's) under pytest.
    env.pop("PYTEST_CURRENT_TEST", None)
    for name in ("XDG_STATE_HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    env.update(
        JUPYTER_RUNTIME_DIR=str(area.root / "runtime"),
        JUPYTER_DATA_DIR=str(area.root / "jupyter-data"),
        JUPYTER_CONFIG_DIR=str(area.root / "jupyter-config"),
        IPYTHONDIR=str(area.root / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        AGENTSH_TEST_OUTSIDE=str(area.outside),
        AGENTSH_TEST_WS=str(area.ws),
    )
    if _open_to_all(REPO):
        # The checkout under test, ahead of the installed copy (in CI they are
        # the same; on a dev machine the installed one may be older). Not one
        # uid 65534 cannot read (a clone under /root): Python skips it on
        # sys.path, but pip's scan of sys.path fails on it.
        env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _open_to_all(path: Path) -> bool:
    """Whether any user may list ``path`` (every directory above searchable)."""
    if not path.stat().st_mode & 0o004:
        return False
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def copy_driver(area: Area, name: str) -> Path:
    """A copy uid 65534 can read even when the checkout is under /root."""
    dst = area.root / name
    if not dst.exists():
        shutil.copy(HERE / name, dst)
        dst.chmod(0o644)
    return dst


@dataclass
class Cell:
    """What one execute_request produced."""

    code: str
    reply: dict[str, Any]
    outputs: list[dict[str, Any]]
    input_requests: list[str]

    @property
    def execution_count(self) -> int:
        return int(self.reply["execution_count"])

    def stream(self, name: str) -> str:
        return "".join(
            o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == name
        )

    @property
    def stdout(self) -> str:
        return self.stream("stdout")

    @property
    def stderr(self) -> str:
        return self.stream("stderr")

    def audits(self) -> list[dict[str, Any]]:
        return [
            o
            for o in self.outputs
            if o["output_type"] == "display_data" and AUDIT_MIME in o["data"]
        ]

    def audit(self) -> dict[str, Any]:
        """The one audit display of the cell, which must be its last display."""
        found = self.audits()
        assert len(found) == 1, f"expected one audit display, got {len(found)}: {self.outputs}"
        displays = [
            o for o in self.outputs if o["output_type"] in ("display_data", "execute_result")
        ]
        assert displays and displays[-1] is found[0], "the audit is not the cell's last display"
        return found[0]

    def events(self) -> list[dict[str, Any]]:
        return list(self.audit()["data"][AUDIT_MIME]["events"])

    def without_audit(self) -> dict[str, Any]:
        """The cell's visible behaviour, for comparing a sandboxed run with a
        plain one: streams joined per name, results, errors; no audit."""
        results = [
            o["data"].get("text/plain")
            for o in self.outputs
            if o["output_type"] == "execute_result"
        ]
        displays = [
            o["data"]
            for o in self.outputs
            if o["output_type"] == "display_data" and AUDIT_MIME not in o["data"]
        ]
        errors = [(o["ename"], o["evalue"]) for o in self.outputs if o["output_type"] == "error"]
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "results": results,
            "displays": displays,
            "errors": errors,
            "status": self.reply["status"],
        }


class KernelError(AssertionError):
    pass


class Kernel:
    """One ipykernel, run as ``area.user``, in ``area.ws``."""

    def __init__(self, area: Area, env: dict[str, str] | None = None) -> None:
        self.area = area
        driver = copy_driver(area, "kernel_session.py")
        self.proc = subprocess.Popen(
            area.user.cmd([sys.executable, str(driver), str(area.ws)]),
            cwd=area.ws,
            env=env or kernel_env(area),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(area.root / "driver.log", "w"),  # noqa: SIM115 (closed with the process)
            text=True,
            start_new_session=True,
        )
        hello = self._read(120)
        self.pid = int(hello["kernel"])

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise KernelError(
                f"the kernel driver said nothing within {timeout}s (exit {self.proc.poll()});"
                f" its log:\n{self.log()[-3000:]}"
            )
        return json.loads(line)  # type: ignore[no-any-return]

    def log(self) -> str:
        return (self.area.root / "driver.log").read_text(errors="replace")

    def request(self, wait: float, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read(wait)

    def run(
        self,
        code: str,
        *,
        timeout: float = 60,
        allow_stdin: bool = False,
        answers: list[str] | None = None,
        cell_id: str | None = None,
        interrupt_after: float | None = None,
    ) -> Cell:
        r = self.request(
            timeout + 20,
            op="execute",
            code=code,
            cell_id=cell_id,
            interrupt_after=interrupt_after,
            timeout=timeout,
            allow_stdin=allow_stdin,
            answers=answers or [],
        )
        if r["timed_out"] or r["reply"] is None:
            raise KernelError(
                f"cell did not finish within {timeout}s:\n{code}\noutputs: {r['outputs']}"
            )
        return Cell(code, r["reply"], r["outputs"], r["input_requests"])

    def ok(self, code: str, **kw: Any) -> Cell:
        """Run a cell that must not raise."""
        cell = self.run(code, **kw)
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert cell.reply["status"] == "ok" and not errors, f"cell failed:\n{code}\n" + "\n".join(
            "\n".join(e["traceback"]) for e in errors
        )
        return cell

    def processes(self) -> list[list[Any]]:
        return list(self.request(30, op="processes")["descendants"])

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(KernelError, BrokenPipeError, OSError):
                self.request(60, op="shutdown")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def kernel_fixture(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    """Body of a module-scoped, user-parametrized kernel fixture."""
    user = make_user(request.param)
    area = kernel_area(user)
    kernel = Kernel(area)
    try:
        yield kernel
    finally:
        kernel.shutdown()
        area.cleanup()


def alive(pid: int, starttime: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[19]) == starttime and fields[0] != "Z"


def run_notebook(area: Area, nb: Any, name: str = "nb", *, timeout: float = 300, **env: str) -> Any:
    """Execute ``nb`` (an nbformat notebook) with nbclient as ``area.user``,
    in ``area.ws``; returns the saved notebook, read back from disk."""
    import nbformat

    driver = copy_driver(area, "run_notebook.py")
    src = area.write(f"{name}.ipynb", nbformat.writes(nb))
    dst = area.root / f"{name}.out.ipynb"
    area.write(dst.name, "")  # created by the test, owned by the user
    p = subprocess.run(
        area.user.cmd([sys.executable, str(driver), str(src), str(dst), str(area.ws)]),
        cwd=area.ws,
        env=kernel_env(area, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )
    assert p.returncode == 0, f"run_notebook failed ({p.returncode}):\n{p.stderr[-3000:]}"
    report = json.loads(p.stdout.splitlines()[-1])
    assert report["error"] is None, f"{report['error']}\n{p.stderr[-3000:]}"
    return nbformat.read(dst, as_version=4)


def html_export(nb: Any) -> str:
    """nbconvert's HTML export (the default ``lab`` template)."""
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter().from_notebook_node(nb)
    return str(body)


def html_tokens(text: str) -> list[tuple[str, ...]]:
    """Markup as a token list (start/end tags with sorted attributes, text
    with entities decoded), so that equivalent serializations compare equal:
    nbconvert writes ``&#x27;`` back as ``'``."""
    from html.parser import HTMLParser

    tokens: list[tuple[str, ...]] = []

    class Tokens(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tokens.append(("start", tag, *sorted(f"{k}={v}" for k, v in attrs)))

        def handle_endtag(self, tag: str) -> None:
            tokens.append(("end", tag))

        def handle_data(self, data: str) -> None:
            if tokens and tokens[-1][0] == "data":
                tokens[-1] = ("data", tokens[-1][1] + data)
            else:
                tokens.append(("data", data))

    parser = Tokens(convert_charrefs=True)
    parser.feed(text)
    parser.close()
    return [t for t in tokens if t[0] != "data" or t[1].strip()]


def html_contains(page: str, fragment: str) -> bool:
    """Whether ``fragment``'s markup appears, whole and in order, in ``page``."""
    inner, outer = html_tokens(fragment), html_tokens(page)
    n = len(inner)
    return n > 0 and any(outer[i : i + n] == inner for i in range(len(outer) - n + 1))
