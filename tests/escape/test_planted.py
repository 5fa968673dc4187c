"""Nothing planted inside the sandbox runs outside it later (issue 18).

The worst common setup: Jupyter started in the home directory, so the
workspace IS the home directory (HOME = workspace) and the policy lets the
sandbox write all of it; and the Python environment that runs the
supervisor (and would run the sandboxed kernel) lives under /tmp or inside
the workspace, where the built-in policy allows writes too. From inside,
programs/plant.py writes every protected class by every way of writing a
path (open, truncate, times, chmod, chown, delete, rename in and out, hard
and symbolic links, mkdir, renaming a directory above), as root and as uid
65534, in notify and in ptrace mode. Each case checks:

* the EFFECT: every attempt failed, and nothing changed on disk in the home
  directory or the environment;
* the RECORD: every attempt is a denied event with its ``protected:<name>``
  rule in the audit.

`test_planting_works_without_the_sandbox` runs the same attempts unsandboxed
and requires each to succeed: the cases above would pass vacuously
otherwise. System-wide entries (crontab spools, /etc) are left to the unit
tests: a control run would write the real machine's.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import agentsh_ipy
from agentsh_ipy.kernelspec import kernel_argv
from agentsh_ipy.run import sandboxed_kernel_argv
from tests.conftest import Area, Run, User, linux_only, read_audit, sandbox_env
from tests.escape.conftest import program_copy

pytestmark = linux_only

DONE = 42
VERSION = f"python{sys.version_info[0]}.{sys.version_info[1]}"
MARK = "PLANTED-BY-SANDBOX"
# the supervisor's own writes in the home directory: its cache home
SUPERVISOR_WRITES = (".cache",)


@dataclass
class World:
    """A home directory that is the workspace, an environment that runs the
    supervisor, and what plant.py will try (label, how, path, rule)."""

    area: Area
    user: User
    env_at: str
    home: Path
    env: Path
    attempts: list[tuple[str, str, str, str]] = field(default_factory=list)
    _tmp: Path | None = None

    @property
    def site(self) -> Path:
        return self.env / "lib" / VERSION / "site-packages"

    @property
    def python(self) -> Path:
        return self.env / "bin" / "python"

    @property
    def scratch(self) -> Path:
        return self.home / "scratch"

    def environ(self) -> dict[str, str]:
        """The test's environment, with HOME the workspace and nothing that
        moves Jupyter's, IPython's or XDG's directories elsewhere."""
        env = {
            k: v
            for k, v in sandbox_env(self.area).items()
            if not k.startswith(("XDG_", "JUPYTER_", "PYTHON", "VIRTUAL_ENV"))
            and k not in ("IPYTHONDIR", "PIP_USER")
        }
        env["HOME"] = str(self.home)
        return env

    def plant(self, cmd_prefix: list[str], timeout: float = 120) -> Run:
        attempts = self.area.root / "attempts.json"
        attempts.write_text(json.dumps([a[:3] for a in self.attempts]))
        attempts.chmod(0o644)
        plant = program_copy(self.area, "plant.py")
        argv = [*cmd_prefix, str(self.python), "-I", "-S", "-B", str(plant)]
        argv += [str(attempts), str(self.scratch)]
        start = time.monotonic()
        p = subprocess.run(
            self.user.cmd(argv),
            cwd=self.home,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
        events = read_audit(self.area.audit)
        return Run(p.returncode, p.stdout, p.stderr, events, time.monotonic() - start)

    def sandboxed(self, mode: str, policy: Path | None = None) -> Run:
        """plant.py under `agentsh-ipy exec` run by the environment's own
        interpreter, as Jupyter would start the sandboxed kernel from it."""
        # -B: the supervisor's own bytecode is no change the sandbox made
        cli = [str(self.python), "-P", "-B", "-m", "agentsh_ipy.cli", "exec"]
        cli += ["--workspace", str(self.home), "--audit", str(self.area.audit), "--mode", mode]
        if policy is not None:
            cli += ["--policy", str(policy)]
        return self.plant([*cli, "--"])

    def snapshot(self) -> dict[str, tuple[int, int, bytes]]:
        """Every entry of the home directory and the environment: type and
        mode, owner, content or link target."""
        out: dict[str, tuple[int, int, bytes]] = {}
        skip = {str(self.home / d) for d in (*SUPERVISOR_WRITES, "scratch")}
        for top in {self.home, self.env}:
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
                for name in [*dirnames, *filenames, "."]:
                    p = os.path.normpath(os.path.join(dirpath, name))
                    st = os.lstat(p)
                    body = b""
                    if stat.S_ISREG(st.st_mode):
                        body = Path(p).read_bytes()
                    elif stat.S_ISLNK(st.st_mode):
                        body = os.fsencode(os.readlink(p))
                    out[p] = (st.st_mode, st.st_uid, body)
        return out

    def cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _environment(prefix: Path) -> None:
    """A venv whose site-packages holds a copy of agentsh_ipy (the code the
    supervisor runs) and finds the other dependencies through a .pth line:
    a few milliseconds, where pip would take seconds."""
    venv.EnvBuilder(symlinks=True, with_pip=False).create(prefix)
    sp = prefix / "lib" / VERSION / "site-packages"
    shutil.copytree(
        Path(agentsh_ipy.__file__).parent,
        sp / "agentsh_ipy",
        ignore=shutil.ignore_patterns("__pycache__", "_kernelspec"),
    )
    (sp / "dependencies.pth").write_text(site.getsitepackages()[0] + "\n")


def _give(user: User, top: Path) -> None:
    if user.uid == os.geteuid():
        return
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), user.uid, user.uid)
    os.chown(top, user.uid, user.uid)


def make_world(area: Area, user: User, env_at: str) -> World:
    home = area.ws
    tmp = None
    if env_at == "tmp":
        tmp = Path(tempfile.mkdtemp(prefix="agentsh-planted-", dir="/tmp"))
        tmp.chmod(0o755)
        env = tmp / "env"
    else:
        env = home / ".venv"
    _environment(env)
    w = World(area, user, env_at, home, env, _tmp=tmp)
    h, s = home, w.site

    def file(path: Path, text: str = "# the user's own\n") -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    def folder(path: Path) -> str:
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    folder(w.scratch)
    bashrc = file(h / ".bashrc")
    profile = file(h / ".profile")
    startup = folder(h / ".ipython" / "profile_default" / "startup")
    jupyter = folder(h / ".jupyter")
    profile_dir = os.path.dirname(startup)
    kernel_json = file(h / ".local/share/jupyter/kernels/agentsh/kernel.json", "{}\n")
    user_site = folder(h / ".local" / "lib" / VERSION / "site-packages")
    gitconfig = file(h / ".gitconfig")
    hooks = folder(h / "proj" / ".git" / "hooks")
    git_config = file(h / "proj" / ".git" / "config")
    folder(h / "proj" / ".vscode")
    autostart = folder(h / ".config" / "autostart")
    local_bin = folder(h / ".local" / "bin")
    old_audit = file(h / ".local/state/agentsh-ipy/audit/earlier-session.jsonl", "{}\n")
    trash = folder(h / ".agentsh-trash")
    package = s / "agentsh_ipy"

    def j(*parts: str | Path) -> str:
        return os.path.join(*map(str, parts))

    w.attempts = [
        # one file by every way of writing it
        ("bashrc.append", "write", bashrc, "shell-startup"),
        ("bashrc.truncate", "truncate", bashrc, "shell-startup"),
        ("bashrc.utime", "utime", bashrc, "shell-startup"),
        ("bashrc.chmod", "chmod", bashrc, "shell-startup"),
        ("bashrc.chown", "chown", bashrc, "shell-startup"),
        ("bashrc.delete", "delete", bashrc, "shell-startup"),
        ("profile.rename-out", "rename-out", profile, "shell-startup"),
        ("bash_profile.rename-in", "rename-in", j(h, ".bash_profile"), "shell-startup"),
        ("zshrc.symlink", "symlink", j(h, ".zshrc"), "shell-startup"),
        ("zprofile.link", "link", j(h, ".zprofile"), "shell-startup"),
        # IPython and Jupyter
        ("ipython.startup", "write", j(startup, "00-x.py"), "ipython-profile"),
        ("ipython.config", "write", j(profile_dir, "ipython_config.py"), "ipython-profile"),
        ("ipython.new-profile", "mkdir", j(h, ".ipython/profile_x"), "ipython-profile"),
        ("ipython.rename-dir", "rename-dir", j(h, ".ipython"), "*"),
        (
            "jupyter.server-config",
            "write",
            j(jupyter, "jupyter_server_config.py"),
            "jupyter-config",
        ),
        ("jupyter.kernelspec", "write", kernel_json, "jupyter-data"),
        ("jupyter.new-kernel", "mkdir", j(h, ".local/share/jupyter/kernels/x"), "jupyter-data"),
        # Python's startup, the environment, agentsh-ipy itself
        ("python.usercustomize", "write", j(user_site, "usercustomize.py"), "python-startup"),
        ("python.sitecustomize", "write", j(s, "sitecustomize.py"), "python-startup"),
        ("python.pth", "write", j(s, "x.pth"), "python-env"),
        ("python.new-package", "mkdir", j(s, "requests"), "python-env"),
        ("python.script", "write", j(w.env, "bin", "pip"), "python-env"),
        ("python.pyvenv-cfg", "write", j(w.env, "pyvenv.cfg"), "python-env"),
        # (a directory agentsh-ipy's package lies in, first)
        ("python.rename-lib", "rename-dir", j(w.env, "lib"), "agentsh-ipy"),
        ("agentsh.code", "write", j(package, "cli.py"), "agentsh-ipy"),
        ("agentsh.new-module", "rename-in", j(package, "planted.py"), "agentsh-ipy"),
        ("agentsh.rename-package", "rename-dir", str(package), "agentsh-ipy"),
        # git, editors, autostart, units, PATH
        ("git.gitconfig", "write", gitconfig, "git"),
        ("git.hook", "write", j(hooks, "pre-commit"), "git"),
        ("git.config", "write", git_config, "git"),
        ("git.rename-dir", "rename-dir", j(h, "proj", ".git"), "git"),
        ("git.gitmodules", "write", j(h, "proj", ".gitmodules"), "git"),
        ("editor.tasks", "write", j(h, "proj", ".vscode", "tasks.json"), "editors"),
        ("autostart.desktop", "write", j(autostart, "x.desktop"), "autostart"),
        ("autostart.rename-config", "rename-dir", j(h, ".config"), "*"),
        ("units.mkdir", "mkdir", j(h, ".config", "systemd"), "user-units"),
        ("path.local-bin", "write", j(local_bin, "ls"), "user-path"),
        ("path.home-bin", "mkdir", j(h, "bin"), "user-path"),
        # the sandbox's own state
        ("state.earlier-audit", "write", old_audit, "agentsh-state"),
        ("state.delete-audit", "delete", old_audit, "agentsh-state"),
        ("state.trash", "mkdir", j(trash, "forged"), "agentsh-state"),
    ]
    _give(user, home)
    _give(user, env if tmp is None else tmp)
    return w


@pytest.fixture(params=["tmp", "workspace"])
def world(request: pytest.FixtureRequest, area: Area, user: User) -> Iterator[World]:
    w = make_world(area, user, request.param)
    try:
        yield w
    finally:
        w.cleanup()


def _results(run: Run) -> dict[str, str]:
    out = {}
    for line in run.stdout.splitlines():
        label, _, rest = line.partition(": ")
        if rest:
            out[label] = rest.split()[0]
    return out


def _denied(events: list[dict[str, Any]], path: str, rule: str) -> bool:
    for e in events:
        if e.get("type") != "file" or e.get("decision") != "deny":
            continue
        if path not in (e.get("path"), e.get("dest"), e.get("resolved")):
            continue
        if e.get("rule") == f"protected:{rule}" or (
            rule == "*" and str(e.get("rule")).startswith("protected:")
        ):
            return True
    return False


@pytest.mark.unsandboxed
@pytest.mark.slow
def test_planting_works_without_the_sandbox(world: World) -> None:
    before = world.snapshot()
    r = world.plant([])
    assert r.returncode == DONE, r.stderr
    got = _results(r)
    failed = {a[0]: got.get(a[0]) for a in world.attempts if got.get(a[0]) != "ok"}
    assert not failed, f"these writes fail even without the sandbox: {failed}\n{r.stdout}"
    assert world.snapshot() != before


@pytest.mark.slow
def test_nothing_planted_runs_later(world: World, mode: str) -> None:
    if mode == "ptrace" and platform.machine() != "x86_64":
        pytest.skip("ptrace mode needs x86_64")
    before = world.snapshot()
    r = world.sandboxed(mode)
    assert r.returncode == DONE, f"{r.stdout}\n{r.stderr}"
    # the effect: every attempt refused, nothing changed
    got = _results(r)
    for label, *_ in world.attempts:
        assert got.get(label, "ok") != "ok", f"{label}: {got.get(label)}\n{r.stdout}"
    after = world.snapshot()
    changed = sorted(p for p in {*before, *after} if before.get(p) != after.get(p))
    assert not changed, f"changed on disk: {changed}"
    assert not list(world.home.rglob("*.away")), "a directory was renamed away"
    # the record: each attempt denied as its protected entry
    missing = [
        (label, how, path, rule)
        for label, how, path, rule in world.attempts
        if not _denied(r.events, path, rule)
    ]
    seen = {e.get("path"): e.get("rule") for e in r.events if e.get("type") == "file"}
    assert not missing, f"not audited as protected: {missing}\n{seen}"
    [start] = [e for e in r.events if e["type"] == "sandbox" and e.get("op") == "start"]
    assert start["mode"] == mode
    end = [e for e in r.events if e["type"] == "sandbox" and e.get("op") == "end"]
    assert end and end[-1]["exit_code"] == DONE


OPEN_PYTHON_ENV = """
unprotect:
  - name: python-env
    reason: "cells pip install into the project's .venv on purpose"
"""


@pytest.mark.slow
@pytest.mark.needs_notify
def test_unprotect_opens_a_project_venv_not_the_sandbox_s_own(area: Area, user: User) -> None:
    """`unprotect: python-env` lets a cell install into a project's own
    venv; the environment the supervisor runs from stays protected
    (agentsh-env), and the start names what the policy opened."""
    from agentsh_ipy.policy import default_policy_text

    w = make_world(area, user, "tmp")
    try:
        project = w.home / "proj" / ".venv" / "lib" / VERSION / "site-packages"
        project.mkdir(parents=True)
        (w.home / "proj" / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
        _give(user, w.home)
        w.attempts = [
            ("project.module", "write", str(project / "pkg.py"), ""),
            ("project.pth", "write", str(project / "pkg.pth"), ""),
            ("own.pth", "write", str(w.site / "x.pth"), "agentsh-env"),
            ("own.script", "write", str(w.env / "bin" / "pip"), "agentsh-env"),
            ("own.sitecustomize", "write", str(w.site / "sitecustomize.py"), "python-startup"),
        ]
        policy = area.write("open-venv.yaml", default_policy_text() + OPEN_PYTHON_ENV)
        r = w.sandboxed("notify", policy)
        assert r.returncode == DONE, f"{r.stdout}\n{r.stderr}"
        got = _results(r)
        assert got["project.module"] == "ok" and got["project.pth"] == "ok", r.stdout
        assert (project / "pkg.py").read_text().endswith("# PLANTED-BY-SANDBOX\n")
        for label, _, path, rule in w.attempts[2:]:
            assert got[label] != "ok", r.stdout
            assert not Path(path).exists() or MARK not in Path(path).read_text(), label
            assert _denied(r.events, path, rule), (label, rule)
        [opened] = [e for e in r.events if e["type"] == "sandbox" and e.get("op") == "unprotect"]
        assert opened["rule"] == "unprotect:python-env" and opened["decision"] == "audit"
        assert opened["message"] == "cells pip install into the project's .venv on purpose"
        assert "/**/site-packages/**" in opened["paths"]
    finally:
        w.cleanup()


def test_a_package_planted_in_the_notebook_dir_is_not_the_kernel_s(tmp_path: Path) -> None:
    """Jupyter starts the sandboxed kernel in the notebook's directory, the
    workspace. With ``python -m`` that directory would come first on
    sys.path, and an ``agentsh_ipy/`` a cell left there would run as the
    supervisor, unconfined: the kernelspec and `agentsh-ipy run` use -P."""
    planted = tmp_path / "agentsh_ipy"
    (planted / "kernel").mkdir(parents=True)
    (planted / "__init__.py").write_text(f"print('{MARK}')\n")
    (planted / "kernel" / "__init__.py").write_text(f"print('{MARK}')\n")
    (planted / "kernel" / "__main__.py").write_text("")
    shipped = json.loads((Path(__file__).parents[2] / "kernel/agentsh/kernel.json").read_text())
    for argv in (kernel_argv(), sandboxed_kernel_argv(), [sys.executable, *shipped["argv"][1:]]):
        assert argv[1:4] == ["-P", "-m", "agentsh_ipy.kernel"], argv
        p = subprocess.run(
            [*argv[:4], "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert p.returncode == 0 and MARK not in p.stdout + p.stderr, p.stdout + p.stderr
    # the control: without -P the planted package is what runs
    p = subprocess.run(
        [sys.executable, "-m", "agentsh_ipy.kernel", "--help"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert MARK in p.stdout
