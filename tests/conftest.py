"""Shared fixtures: run the installed CLI as root and as an unprivileged user.

Every enforcement test takes the ``user`` fixture, so it runs twice: once as
the user running the suite, once as uid 65534 (dropped with setpriv) when the
suite runs as root. A non-root run (uid 1000 in tests/container/run.sh's
container) is already unprivileged: its one variant is that user, "self".
Tests needing what such a host may refuse (notify mode, user namespaces)
skip there naming it (pytest_runtest_setup, tests/_host.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NOBODY = 65534
IS_ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="enforcement is Linux-only"
)


@dataclass
class User:
    name: str  # "root" or "nobody" (or the invoking user when not root)
    uid: int
    prefix: list[str] = field(default_factory=list)

    def cmd(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]


def _setpriv() -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


_nobody_checked: list[str] = []


def _check_nobody_can_run() -> None:
    """Fail (not skip) when uid 65534 cannot run this interpreter and package:
    the unprivileged half of the suite is required evidence."""
    if _nobody_checked:
        return
    probe = subprocess.run(
        [*_setpriv(), sys.executable, "-c", "import agentsh_ipy.cli, ptrace, yaml"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.fail(
            f"uid {NOBODY} cannot run {sys.executable} with agentsh_ipy installed "
            f"({probe.stderr.strip()[-300:]}); run the suite from a virtual environment "
            "that other users can read, as .ci/run does (/opt/agentsh-ipy-venv)"
        )
    _nobody_checked.append("ok")


# Host files every test must leave as it found them: a sandbox that failed
# open (or a test that aimed at the wrong path) shows here, named by test.
# /dev/null was once found 0755 after a run.
_HOST_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
               "/dev/ptmx", "/tmp", "/etc/passwd", "/etc/hostname")  # fmt: skip


def _host_state() -> dict[str, tuple[int, int, int]]:
    out = {}
    for path in _HOST_FILES:
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            out[path] = (st.st_mode, st.st_uid, st.st_gid)
    return out


@pytest.fixture(autouse=True)
def host_files_unchanged() -> Iterator[None]:
    before = _host_state()
    yield
    after = _host_state()
    changed = [p for p in before if after.get(p) != before[p]]
    for path in changed:  # put them back, so one failure does not spread
        with contextlib.suppress(OSError):
            mode, uid, gid = before[path]
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, stat.S_IMODE(mode))
    if changed:
        pytest.fail(
            "the test changed host files: "
            + ", ".join(f"{p} {oct(before[p][0])} -> {oct(after.get(p, (0,))[0])}" for p in changed)
        )


# As root both users; otherwise (uid 1000 under tests/container/launch.py,
# say) the one user this process can be.
USER_PARAMS = ["root", "nobody"] if IS_ROOT else ["self"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_notify: runs the sandbox in notify mode (skips where it refuses)"
    )
    config.addinivalue_line(
        "markers", "needs_userns: makes a user namespace (skips where they are refused)"
    )
    config.addinivalue_line(
        "markers",
        "needs_full_notify: notify mode with pidfd_getfd and unshare(CLONE_FS), as the "
        "magic's daemon and the proxy's fd copy need (skips where stand-ins are in use)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, naming the missing facility, a test that needs what this host
    does not give (tests/_host.py): never on an ordinary root run."""
    from tests import _host

    params = getattr(getattr(item, "callspec", None), "params", {})
    wants_notify = str(params.get("mode", "")).startswith("notify")  # notify, notify-blocked
    if (wants_notify or item.get_closest_marker("needs_notify")) and _host.notify_refusal():
        pytest.skip(_host.notify_refusal())
    if item.get_closest_marker("needs_userns") and _host.userns_refusal():
        pytest.skip(_host.userns_refusal())
    if item.get_closest_marker("needs_full_notify") and _host.stand_ins():
        pytest.skip(
            f"notify mode uses stand-ins here ({_host.stand_ins()}); this test needs its full "
            "mechanism, which the magic's daemon and the proxy's fd copy still do "
            "(docs/security.md, Containers)"
        )
    if params.get("mode") == "notify-blocked" and _host.outer_filter():
        pytest.skip("an outer filter (a container's) refuses those calls already: the notify "
                    "variant is this one")  # fmt: skip


@pytest.fixture(params=USER_PARAMS)
def user(request: pytest.FixtureRequest) -> User:
    if request.param == "root":
        if not IS_ROOT:
            pytest.skip(
                "the suite is not running as root; the unprivileged variant covers this user"
            )
        return User("root", 0)
    if not IS_ROOT:
        return User("self", os.geteuid())
    _check_nobody_can_run()
    return User("nobody", NOBODY, _setpriv())


class Area:
    """A scratch tree outside every path the default policy lets a sandbox
    write (not under /tmp, /var/tmp or /dev/shm), owned by the test user:
    the OS would allow the writes, so only the sandbox can stop them."""

    def __init__(self, user: User) -> None:
        parent = "/var/lib" if IS_ROOT else os.path.expanduser("~/.cache")
        os.makedirs(parent, exist_ok=True)
        if os.path.realpath(parent).startswith(("/tmp/", "/var/tmp/", "/dev/shm/")):
            pytest.fail(f"the scratch areas would be under {parent}, which the default policy "
                        "lets a sandbox write: run the suite with HOME elsewhere")  # fmt: skip
        self.root = Path(tempfile.mkdtemp(prefix="agentsh-test-", dir=parent))
        self.root.chmod(0o755)
        self.user = user
        self.ws = self.mkdir("ws")
        self.outside = self.mkdir("outside")
        self.home = self.mkdir("home")
        self.audit = self.root / "audit" / "audit.jsonl"
        self.mkdir("audit")

    def mkdir(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=True)
        self.own(p)
        return p

    def own(self, p: Path) -> None:
        if IS_ROOT and self.user.uid != 0:
            os.chown(p, self.user.uid, self.user.uid)

    def write(self, rel: str, text: str, mode: int = 0o644) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
        self.own(p)
        return p

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def area(user: User) -> Iterator[Area]:
    a = Area(user)
    yield a
    a.cleanup()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]
    seconds: float

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] in types]

    def denials(self, *types: str) -> list[dict[str, Any]]:
        """Denied events, of these types (default: the operations, not the
        session's own notes such as hidden environment variables)."""
        wanted = types or ("file", "exec", "net", "unix", "signal", "syscall_blocked")
        return [e for e in self.events if e.get("decision") == "deny" and e["type"] in wanted]


def sandbox_env(area: Area) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HOME=str(area.home), LC_ALL="C.UTF-8", PATH="/usr/local/bin:/usr/bin:/bin")
    env.pop("TMPDIR", None)
    return env


def read_audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def run_cli(
    area: Area,
    args: Sequence[str],
    *,
    timeout: float = 120,
    input: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] = (),
) -> Run:
    """`agentsh-ipy ARGS` as the area's user, with no controlling terminal
    (``launcher``: a command line that runs it, e.g. blocked_launcher's)."""
    argv = area.user.cmd([*launcher, sys.executable, "-m", "agentsh_ipy.cli", *args])
    start = time.monotonic()
    p = subprocess.run(
        argv,
        cwd=cwd or area.ws,
        env=env or sandbox_env(area),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # no controlling terminal: approvals cannot be asked
    )
    return Run(p.returncode, p.stdout, p.stderr, read_audit(area.audit), time.monotonic() - start)


# Notify mode on a host refusing what Docker's default seccomp profile
# refuses a container without CAP_SYS_ADMIN/CAP_SYS_PTRACE (issue 19): a mode
# the escape tests take besides "notify" and "ptrace".
BLOCKED_MODE = "notify-blocked"
BLOCKED_CALLS = "pidfd_getfd,unshare_fs"
BLOCKED_MECHANISM = {"opens": "explicit-umask", "sockets": "ptrace-held"}


def blocked_launcher(area: Area, calls: str = BLOCKED_CALLS) -> list[str]:
    """The command prefix that runs what follows with ``calls`` refused
    (EPERM) by tests/integration/run_blocked.py, copied where the area's
    user can read it."""
    launcher = area.root / "run_blocked.py"
    if not launcher.exists():
        shutil.copy(Path(__file__).parent / "integration" / "run_blocked.py", launcher)
        launcher.chmod(0o644)
    return [sys.executable, str(launcher), calls, "--"]


def sandbox(
    area: Area,
    cmd: Sequence[str],
    *,
    policy: Path | None = None,
    extra: Sequence[str] = (),
    **kw: Any,
) -> Run:
    blocked = "--mode" in extra and extra[extra.index("--mode") + 1] == BLOCKED_MODE
    if blocked:
        extra = [x if x != BLOCKED_MODE else "notify" for x in extra]
        kw["launcher"] = blocked_launcher(area)
    args = ["exec", "--workspace", str(area.ws), "--audit", str(area.audit), *extra]
    if policy is not None:
        args += ["--policy", str(policy)]
    run = run_cli(area, [*args, "--", *cmd], **kw)
    if blocked:  # the stand-ins for what the launcher refused, named
        start = [e for e in run.events if e.get("op") == "start"]
        assert not start or start[-1]["mechanism"] == BLOCKED_MECHANISM, start
    return run


TEST_POLICY = """\
version: 1
name: test
file_rules:
  - name: workspace
    paths: ["${WORKSPACE}", "${WORKSPACE}/**"]
    operations: ["*"]
    decision: allow
  - name: devices
    paths: ["/dev/null", "/dev/tty", "/dev/pts/**"]
    operations: [read, write, create]
    decision: allow
  - name: read-only
    paths: ["/", "/**"]
    operations: [read]
    decision: allow
"""


def write_policy(area: Area, extra: str = "", name: str = "policy.yaml") -> Path:
    return area.write(name, TEST_POLICY + extra)
