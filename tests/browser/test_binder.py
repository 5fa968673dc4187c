"""Binder launches (issue 19 item 6): binder/ installed as repo2docker
installs it, then the quickstart in JupyterLab with both kernels, as an
unprivileged user.

There is no container engine here (none in CI, no image registry), so the
test does what repo2docker's Python buildpack does with this repository, in
its order (repo2docker/buildpacks/base.py and python/__init__.py):

1. the repository is copied into the user's home, which
   is the repository's directory (REPO_DIR = HOME = /home/jovyan), owned by
   the user;
2. as the user, from that directory: ``pip install -r
   binder/requirements.txt`` into the environment Jupyter runs from (its
   ``.`` is a local path: repo2docker runs it after the copy, from the
   repository's root, where ``.`` is the repository);
3. as the user: ``./binder/postBuild``, that environment's bin first on PATH;
4. JupyterLab starts from that environment, as the user, in the home.

The user is uid 65534 with the copy as HOME (Binder's is uid 1000 ``jovyan``;
what matters is an unprivileged uid that owns the home and the environment).
For an offline run of a few seconds, what repo2docker's base image gives
comes from the test's own environment instead: the fresh venv reaches its
packages (JupyterLab, notebook, ipykernel, pip) through a .pth file, where
repo2docker's notebook environment has them from conda-forge, and Jupyter
reads its server extensions' configuration and JupyterLab's assets there
(JUPYTER_CONFIG_PATH, JUPYTERLAB_DIR); pip runs with ``--no-index`` (every
dependency is in that base) and ``--no-build-isolation`` (the build backend
of [build-system] comes from the test's environment, not from the index).

Then in Debian's Chromium, at 1280x800: notebooks/quickstart.ipynb opens as
the Binder link opens it (``labpath``), runs whole in the kernel it names
(python3: ``%load_ext agentsh_ipy`` and ``%%agentsh``), then again in
"Python 3 (agentsh sandbox)" after a kernel change. Each time: every cell
ran without error; the host check says the sandbox can run; the shell cell
wrote its file in the workspace and was denied /etc, the private key and
~/.bashrc (nothing written, the secret nowhere in the page); the audit table
is rendered under that cell with the denials and their rules; the JSON Lines
audit log in the home has the denials of that kernel's session. Screenshots:
artifacts/screenshots/binder-quickstart-<kernel>.png.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from packaging.requirements import Requirement

from tests.browser.test_jupyterlab_outputs import (
    ALL_RAN,
    KERNEL_READY,
    RUN_ALL,
    Lab,
    _loopback_only,
    _settings,
    shut_lab,
    start_lab,
)
from tests.conftest import REPO, read_audit
from tests.sandboxed_kernel._harness import (
    AUDIT_MIME,
    SECRET,
    SkArea,
    make_user,
    require_kernel_module,
    sandboxed_area,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

SCREENSHOTS = REPO / "artifacts" / "screenshots"
NOTEBOOK = "notebooks/quickstart.ipynb"  # the Binder badge's labpath (README)
WIDTH, HEIGHT = 1280, 800
SHELL_CELL = "code-04"  # the %%agentsh cell a model might write
STATUS_CELL = "code-06"  # %agentsh status
AUDIT_CELL = "code-07"  # %agentsh audit

# Per code cell: its id, its outputs as the notebook model holds them, and
# the text of each audit display JupyterLab rendered under it (its <p>
# summary line and its table rows, cell by cell).
CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code').map(c => ({
    id: c.model.id,
    outputs: c.model.outputs.toJSON(),
    audits: Array.from(c.node.querySelectorAll('.jp-OutputArea-output'))
      .filter(o => { const p = o.querySelector('p');
                     return p && p.textContent.startsWith('agentsh:'); })
      .map(o => ({
        summary: o.querySelector('p').textContent,
        rows: Array.from(o.querySelectorAll('tr')).map(
          tr => Array.from(tr.querySelectorAll('td, th')).map(td => td.textContent)),
      })),
  }))"""
CHANGE_KERNEL = """name => window.jupyterapp.shell.currentWidget.sessionContext
  .changeKernel({name: name}).then(() => true)"""
KERNEL_NAME = """() => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  return k ? k.name : null;
}"""
CLEAR = "() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')"
PAGE_TEXT = "() => document.body.innerText"
SCROLL_TO = """id => window.jupyterapp.shell.currentWidget.content.widgets
  .find(c => c.model.id === id).node.scrollIntoView({block: 'start'})"""


class Build:
    """What the binder build left: the notebook environment."""

    def __init__(self, env: Path) -> None:
        self.env = env
        self.python = env / "bin" / "python"


def _missing_build_backend() -> list[str]:
    """[build-system] requires that this environment does not satisfy (pip
    runs with --no-build-isolation and --no-index: it cannot fetch them)."""
    with open(REPO / "pyproject.toml", "rb") as f:
        requires = tomllib.load(f)["build-system"]["requires"]
    missing = []
    for spec in requires:
        req = Requirement(spec)
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(spec)
            continue
        if version not in req.specifier:
            missing.append(f"{spec} (have {version})")
    return missing


# What a clone would not have (.gitignore's, and the git directory).
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", "*.so", "*.egg-info", "build", "dist", ".venv",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", "artifacts",
)  # fmt: skip


def _copy_repository(dest: Path) -> None:
    """The checkout as repo2docker copies a clone: the work tree, new files
    included (tests/container/run.sh runs the tests from a copy without .git)."""
    shutil.copytree(REPO, dest, ignore=NOT_IN_A_CLONE, dirs_exist_ok=True)


def _build(area: SkArea) -> Build:
    """Steps 1-3 of the module docstring, as the area's user."""
    missing = _missing_build_backend()
    if missing:
        pytest.fail(
            f"the build backend {missing} (pyproject.toml [build-system]) is not installed in"
            " the test environment: add it to the test extras, this test builds offline"
        )
    home = area.ws  # the repository's directory and the home, as on Binder
    for leftover in ("policy.yaml",):  # SkArea's, not the repository's
        (home / leftover).unlink(missing_ok=True)
    _copy_repository(home)
    area.mkdir("ws/.ssh").chmod(0o700)  # a key the quickstart's cell tries to read
    area.write("ws/.ssh/id_rsa", SECRET + "\n", mode=0o600)
    env = area.mkdir("env")  # the user owns the environment, as jovyan owns conda's
    for d in [home, *home.rglob("*")]:
        area.own(d)
    purelib = env / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    base = sysconfig.get_path("purelib")
    script = f"""set -eu
cd "$HOME"
"{sys.executable}" -m venv --without-pip "$NB_PYTHON_PREFIX"
# repo2docker's base environment (JupyterLab, notebook, ipykernel, pip)
echo "{base}" > "{purelib}/binder-base-environment.pth"
"$NB_PYTHON_PREFIX/bin/python" -m pip install --no-cache-dir --no-index --no-build-isolation \\
    --disable-pip-version-check -r binder/requirements.txt
chmod +x binder/postBuild
./binder/postBuild
"""
    proc = subprocess.run(
        area.user.cmd(["bash", "-c", script]),
        cwd=home,
        env={
            "HOME": str(home),
            "USER": area.user.name,
            "NB_PYTHON_PREFIX": str(env),
            "PATH": f"{env}/bin:/usr/local/bin:/usr/bin:/bin",
            "LC_ALL": "C.UTF-8",
            "PIP_NO_INPUT": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the binder build failed ({proc.returncode}):\n{log[-4000:]}"
    return Build(env)


def _lab_env(area: SkArea, build: Build) -> dict[str, str]:
    """What JupyterLab runs with on Binder (HOME, PATH with the environment
    first, a login shell), plus the test's runtime and settings directories
    and the marker by which shut_lab finds what is left."""
    return {
        "HOME": str(area.ws),
        "USER": area.user.name,
        "SHELL": "/bin/bash",
        "PATH": f"{build.env}/bin:/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "JUPYTER_RUNTIME_DIR": str(area.root / "runtime"),
        "JUPYTER_CONFIG_DIR": str(area.root / "jupyter-config"),
        "JUPYTERLAB_DIR": os.path.join(sys.prefix, "share", "jupyter", "lab"),
        # The base environment's server extensions (terminals, notebook_shim, ...)
        "JUPYTER_CONFIG_PATH": os.path.join(sys.prefix, "etc", "jupyter"),
        "AGENTSH_TEST_AREA": str(area.root),
    }


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Build]]:
    require_kernel_module()
    area = sandboxed_area(make_user("nobody"))
    t0 = time.monotonic()
    build = _build(area)
    print(f"binder build: {time.monotonic() - t0:.1f}s")
    _settings(area)
    server = start_lab(area, python=str(build.python), env=_lab_env(area, build))
    lab = Lab(server, area)
    try:
        yield lab, build
    finally:
        shut_lab(lab, tmp_path_factory)


def test_binder_build_installs_both_kernels(binder: tuple[Lab, Build]) -> None:
    lab, build = binder
    specs = lab.get("/api/kernelspecs")["kernelspecs"]
    assert {"python3", "agentsh"} <= set(specs), sorted(specs)
    sandboxed = specs["agentsh"]["spec"]
    assert sandboxed["display_name"] == "Python 3 (agentsh sandbox)"
    # postBuild's kernelspec: this environment's interpreter, by absolute path
    assert sandboxed["argv"][:4] == [str(build.python), "-P", "-m", "agentsh_ipy.kernel"]
    assert (build.env / "bin" / "agentsh-ipy").exists()


def _text(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for o in outputs:
        if o["output_type"] == "stream":
            parts.append(o["text"])
        elif o["output_type"] == "error":
            parts.append(f"{o['ename']}: {o['evalue']}")
        elif AUDIT_MIME not in o.get("data", {}):
            parts.append(str(o.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def _run(page: Page, kernel: str) -> dict[str, dict[str, Any]]:
    page.evaluate(RUN_ALL)
    page.wait_for_function(ALL_RAN, timeout=240_000, polling=250)
    page.wait_for_timeout(500)  # one layout of the last outputs
    assert page.evaluate(KERNEL_NAME) == kernel
    cells: list[dict[str, Any]] = page.evaluate(CELLS)
    return {c["id"]: c for c in cells}


def _check(lab: Lab, cells: dict[str, dict[str, Any]], kernel: str) -> None:
    ws = lab.area.ws
    for cid, c in cells.items():
        errors = [o for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, (kernel, cid, errors)
    assert SECRET not in json.dumps(cells), f"{kernel}: the secret reached the notebook"
    assert "agentsh: the sandbox can run here" in _text(cells["code-01"]["outputs"])

    shell = cells[SHELL_CELL]
    out = _text(shell["outputs"])
    assert "hello from the sandbox" in out, out
    assert (ws / "notebooks" / "hello.txt").read_text() == "hello from the sandbox\n"
    assert "/etc/agentsh-demo: Permission denied" in out, out
    assert "id_rsa: Permission denied" in out, out
    assert ".bashrc: Permission denied" in out, out
    assert not (ws / ".bashrc").exists()

    # The audit as rendered under the cell: one table, the denials first
    # with their rules.
    [audit] = shell["audits"]
    assert "DENIED" in audit["summary"], audit
    rows = [" ".join(r) for r in audit["rows"]]
    denied = [r for r in rows if "DENIED" in r]
    assert any("/etc/agentsh-demo" in r for r in denied), rows
    assert any(".ssh/id_rsa" in r and "credentials" in r for r in denied), rows
    assert any(".bashrc" in r and "protected:shell-startup" in r for r in denied), rows


def _logged_denials(home: Path) -> dict[str, set[str]]:
    """session -> the paths its kernel's JSON Lines audit records as denied."""
    found: dict[str, set[str]] = {}
    for log in (home / ".local" / "state" / "agentsh-ipy" / "audit").glob("*.jsonl"):
        for e in read_audit(log):
            if e["type"] == "file" and e.get("decision") == "deny":
                found.setdefault(e["session"], set()).add(e["path"])
    return found


def test_quickstart_in_both_kernels(binder: tuple[Lab, Build], browser: Browser) -> None:
    lab, _ = binder
    etc = Path("/etc/agentsh-demo")
    existed = etc.exists()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        context.route("**/*", lambda route: _loopback_only(route, blocked))
        page = context.new_page()
        t0 = time.monotonic()
        page.goto(lab.url(f"/lab/tree/{NOTEBOOK}?reset&token={lab.server.token}"))
        page.wait_for_function(KERNEL_READY, arg=NOTEBOOK, timeout=120_000, polling=200)
        times = {"python3 idle": time.monotonic() - t0}
        for kernel in ("python3", "agentsh"):
            (lab.area.ws / "notebooks" / "hello.txt").unlink(missing_ok=True)  # the cell writes it
            if kernel != "python3":
                page.evaluate(CLEAR)
                before = set(_logged_denials(lab.area.ws))
                assert page.evaluate(CHANGE_KERNEL, kernel)
                page.wait_for_function(KERNEL_READY, arg=NOTEBOOK, timeout=120_000, polling=200)
                times[f"{kernel} idle"] = time.monotonic() - t0
            else:
                before = set()
            cells = _run(page, kernel)
            times[f"{kernel} ran"] = time.monotonic() - t0
            # The shell cell at the top of the screen, its audit under it.
            page.evaluate(SCROLL_TO, SHELL_CELL)
            page.wait_for_timeout(300)
            page.screenshot(path=str(SCREENSHOTS / f"binder-quickstart-{kernel}.png"))
            _check(lab, cells, kernel)
            status = _text(cells[STATUS_CELL]["outputs"])
            assert "policy: default" in status, status
            if kernel == "agentsh":
                assert "this kernel runs inside the sandbox" in status, status
                # %agentsh audit: where the supervisor's events are
                assert "agentsh-ipy audit " in _text(cells[AUDIT_CELL]["outputs"])
            else:
                # %agentsh audit: the shell cell's audit again, every event kept
                [audit] = cells[AUDIT_CELL]["audits"]
                assert "DENIED" in audit["summary"], audit
            logged = {s: p for s, p in _logged_denials(lab.area.ws).items() if s not in before}
            [paths] = logged.values()  # this kernel's session, and only it
            assert "/etc/agentsh-demo" in paths and str(lab.area.ws / ".bashrc") in paths, paths
        print(f"times: {times}; requests aborted (not to 127.0.0.1): {blocked}")
        assert not page.evaluate(PAGE_TEXT).count(SECRET)
        if not existed:
            assert not etc.exists()
    finally:
        context.close()
