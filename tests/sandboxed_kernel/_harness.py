"""The sandboxed kernel ("Python 3 (agentsh sandbox)") as the test's user.

The kernel runs as root or as uid 65534, exactly as Jupyter starts it: a
kernelspec in the area's JUPYTER_DATA_DIR/kernels/ whose argv is
``python -m agentsh_ipy.kernel -f {connection_file} --policy P --audit A``,
started by jupyter_client's KernelManager in a driver script
(kernel_driver.py) that is copied into the scratch area and run through
``user.cmd`` (CI clones the checkout under /root, where uid 65534 cannot
read it). The driver reports what the kernel sent as JSON; every assertion
is made in the pytest process.

The kernel's policy is the built-in one with three test rules in front:

* ``ask-first``: every operation under ``OUTSIDE/ask`` is ``approve``;
* ``closed-port``: connections to loopback port ``area.port`` are denied
  (the test runs a listener on that port, so the port itself is open);
* ``open-port``: 127.0.0.1 port ``area.open_port``, a service of this host
  the policy names, is reachable (every other one is closed);
* everything else as shipped: ``~/.ssh`` denied (``credentials``), the
  workspace (the kernel's cwd, ``area.ws``) writable, the rest read-only,
  this host's services closed (rule ``host-local``).

The policy file and the audit log both live INSIDE the workspace, where the
sandbox could otherwise write: only the kernel's own protection keeps them
unwritable.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentsh_ipy.policy import default_policy_text
from tests.conftest import Area, User
from tests.kernel._harness import (
    AUDIT_MIME,
    SECRET,
    Cell,
    Kernel,
    KernelError,
    alive,
    kernel_env,
    make_user,
)

__all__ = [
    "AUDIT_MIME",
    "KERNEL_NAME",
    "SECRET",
    "KernelError",
    "SandboxedKernel",
    "SkCell",
    "alive",
    "area_processes",
    "make_user",
    "sandboxed_area",
]

HERE = Path(__file__).resolve().parent
KERNEL_NAME = "agentsh-test"
KERNEL_MODULE = "agentsh_ipy.kernel"
# What IPython makes in a profile directory the first time it runs.
PROFILE_DIRS = ("db", "log", "pid", "security", "startup")


def require_kernel_module() -> None:
    """Fail (not skip) while the sandboxed kernel does not exist: these
    tests are the evidence issue 5 asks for."""
    if importlib.util.find_spec(KERNEL_MODULE) is None:
        pytest.fail(
            f"{KERNEL_MODULE} does not exist: the sandboxed kernel (issue 5) is not "
            "implemented, so `python -m agentsh_ipy.kernel -f CONNECTION_FILE` cannot start"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def policy_text(area: Area, port: int, open_port: int) -> str:
    """The built-in policy with the test rules (see the module docstring) first."""
    text = default_policy_text()
    ask = area.outside / "ask"
    file_rule = (
        "  - name: ask-first\n"
        f'    paths: ["{ask}", "{ask}/**"]\n'
        '    operations: ["*"]\n'
        "    decision: approve\n"
    )
    net_rule = (
        "  - name: closed-port\n"
        '    cidrs: ["127.0.0.0/8", "::1/128"]\n'
        f"    ports: [{port}]\n"
        "    decision: deny\n"
        "  - name: open-port\n"
        '    cidrs: ["127.0.0.1/32"]\n'
        f"    ports: [{open_port}]\n"
        "    decision: allow\n"
    )
    for anchor, rule in (("\nfile_rules:\n", file_rule), ("\nnetwork_rules:\n", net_rule)):
        assert text.count(anchor) == 1, f"the built-in policy changed shape: {anchor!r}"
        text = text.replace(anchor, anchor + rule)
    assert "\napproval_timeout: 60\n" in text
    return text.replace("\napproval_timeout: 60\n", "\napproval_timeout: 30\n")


class SkArea(Area):
    """kernel_area's tree (the secret in ~/.ssh, the Jupyter and IPython
    directories) plus ``port`` (a free loopback port the policy denies),
    ``open_port`` (a free loopback port the policy names, allowed),
    ``ask`` (where every operation needs approval), ``policy``
    (ws/policy.yaml) and ``audit`` (ws/audit.jsonl)."""

    def __init__(self, user: User) -> None:
        super().__init__(user)
        # The IPython profile exists, as for anyone who has used IPython
        # before (the sandbox may not create it); a test of its own starts a
        # kernel for a user who never has.
        profile = [f"ipython/profile_default/{d}" for d in PROFILE_DIRS]
        dirs = ("runtime", "ipython", "ipython/profile_default", *profile, "jupyter-data",
                "jupyter-config", "home/.ssh")  # fmt: skip
        for name in dirs:
            self.mkdir(name)
        (self.root / "runtime").chmod(0o700)
        self.write("home/.ssh/id_rsa", SECRET + "\n", mode=0o600)
        self.ask = self.mkdir("outside/ask")
        self.port = free_port()
        self.open_port = free_port()
        self.policy = self.write("ws/policy.yaml", policy_text(self, self.port, self.open_port))
        self.audit = self.ws / "audit.jsonl"


def sandboxed_area(user: User) -> SkArea:
    return SkArea(user)


def write_kernelspec(
    area: Area,
    *,
    name: str = KERNEL_NAME,
    policy: Path | None = None,
    audit: Path | None = None,
    extra: tuple[str, ...] = (),
    data_dir: Path | None = None,
) -> Path:
    """A kernelspec for the sandboxed kernel, found through JUPYTER_DATA_DIR;
    with ``--display full`` unless ``extra`` names a display: the tests look
    through every event of a cell's audit."""
    argv = [sys.executable, "-m", KERNEL_MODULE, "-f", "{connection_file}"]
    if "--display" not in extra:
        argv += ["--display", "full"]
    if policy is not None:
        argv += ["--policy", str(policy)]
    if audit is not None:
        argv += ["--audit", str(audit)]
    argv += list(extra)
    spec = {
        "argv": argv,
        "display_name": "Python 3 (agentsh sandbox, test)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }
    base = data_dir or (area.root / "jupyter-data")
    kdir = base / "kernels" / name
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    for d in (base, base / "kernels", kdir):
        d.chmod(0o755)
        area.own(d)
    (kdir / "kernel.json").chmod(0o644)
    return kdir


def sk_env(area: Area, **extra: str) -> dict[str, str]:
    """kernel_env plus a marker every process of this kernel inherits, by
    which the process-table checks find what is left (never by name)."""
    return kernel_env(area, AGENTSH_TEST_AREA=str(area.root), **extra)


def copy_driver(area: Area, name: str = "kernel_driver.py") -> Path:
    dst = area.root / name
    if not dst.exists():
        dst.write_bytes((HERE / name).read_bytes())
        dst.chmod(0o644)
    return dst


@dataclass
class SkCell(Cell):
    """A Cell with the request's id and what came on the stdin channel."""

    msg_id: str = ""
    prompts: list[dict[str, Any]] = field(default_factory=list)
    stdin_other: list[str] = field(default_factory=list)
    iopub_types: list[str] = field(default_factory=list)
    timed_out: bool = False

    def events_of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events()
            if e["type"] == type_ and all(e.get(k) == v for k, v in match.items())
        ]

    def text(self) -> str:
        """Everything the cell showed, as one string (to look for a secret)."""
        return json.dumps(self.outputs)


class SandboxedKernel(Kernel):
    """One sandboxed kernel, run as ``area.user`` in ``area.ws``.

    ``pid`` is the process Jupyter started (the supervisor)."""

    area: SkArea

    def __init__(
        self,
        area: SkArea,
        *,
        name: str = KERNEL_NAME,
        env: dict[str, str] | None = None,
        must_start: bool = True,
    ) -> None:
        require_kernel_module()
        self.area = area
        driver = copy_driver(area)
        self.proc = subprocess.Popen(
            area.user.cmd([sys.executable, str(driver), str(area.ws), name]),
            cwd=area.ws,
            env=env or sk_env(area),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(area.root / "driver.log", "w"),  # noqa: SIM115 (closed with the process)
            text=True,
            start_new_session=True,
        )
        hello = self._read(150)
        self.ready = bool(hello["ready"])
        self.error = hello["error"]
        self.pid = hello["kernel"]
        self.connection_file = hello["connection_file"]
        if must_start and not self.ready:
            self.shutdown()
            raise KernelError(
                f"the sandboxed kernel did not start ({self.error});"
                f" the driver's log (the kernel's stderr):\n{self.log()[-4000:]}"
            )

    def run(  # type: ignore[override]
        self,
        code: str,
        *,
        timeout: float = 60,
        allow_stdin: bool = False,
        answers: list[str] | None = None,
        answer_delay: float = 0,
        cell_id: str | None = None,
        interrupt_after: float | None = None,
        check: bool = True,
    ) -> SkCell:
        """Run a cell. With ``check`` False a cell that gets no reply (or
        does not end) is returned too, with ``timed_out`` set and the reply
        empty, for the test to say what that means."""
        r = self.request(
            timeout + 20,
            op="execute",
            code=code,
            cell_id=cell_id,
            interrupt_after=interrupt_after,
            timeout=timeout,
            allow_stdin=allow_stdin,
            answers=answers or [],
            answer_delay=answer_delay,
        )
        if check and (r["timed_out"] or r["reply"] is None):
            raise KernelError(
                f"cell did not finish within {timeout}s:\n{code}\noutputs: {r['outputs']}"
                f"\nkernel log:\n{self.log()[-3000:]}"
            )
        return SkCell(
            code,
            r["reply"] or {},
            r["outputs"],
            [p["prompt"] for p in r["input_requests"]],
            msg_id=r["msg_id"],
            prompts=r["input_requests"],
            stdin_other=r["stdin_other"],
            iopub_types=r["iopub_types"],
            timed_out=r["timed_out"] or r["reply"] is None,
        )

    def ok(self, code: str, **kw: Any) -> SkCell:
        cell = self.run(code, **kw)
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert cell.reply["status"] == "ok" and not errors, f"cell failed:\n{code}\n" + "\n".join(
            "\n".join(e["traceback"]) for e in errors
        )
        return cell

    def tree(self) -> list[list[Any]]:
        """[pid, starttime, argv] of the supervisor and all its descendants."""
        r = self.request(30, op="processes")
        out = list(r["descendants"])
        if r["kernel"] is not None and r["alive"]:
            with open(f"/proc/{r['kernel']}/stat") as f:
                start = int(f.read().rsplit(")", 1)[1].split()[19])
            out.insert(0, [r["kernel"], start, ["<supervisor>"]])
        return out

    def restart(self) -> dict[str, Any]:
        r = self.request(180, op="restart")
        if r["ready"]:
            self.pid = r["kernel"]
        return r

    def jsonl(self) -> list[dict[str, Any]]:
        """The audit log, every line parsed (a line that is not JSON fails)."""
        path = self.area.audit
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        """Shut down (politely, then by killing the driver's group)."""
        self.shutdown()

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise KernelError(
                f"the kernel driver said nothing within {timeout}s (exit {self.proc.poll()});"
                f" its log:\n{self.log()[-4000:]}"
            )
        return json.loads(line)  # type: ignore[no-any-return]


def kernel_fixture(request: pytest.FixtureRequest) -> Iterator[SandboxedKernel]:
    """Body of a module-scoped, user-parametrized sandboxed kernel fixture."""
    user = make_user(request.param)
    area = sandboxed_area(user)
    write_kernelspec(area, policy=area.policy, audit=area.audit)
    kernel: SandboxedKernel | None = None
    try:
        kernel = SandboxedKernel(area)
        yield kernel
    finally:
        if kernel is not None:
            kernel.shutdown()
        area.cleanup()


# -- the process table ------------------------------------------------------------


@dataclass
class Proc:
    pid: int
    start: int
    uid: int
    argv: list[str]
    seccomp: bool  # under a seccomp filter: a sandboxed process


def _proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    uid = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("Uid:"))
    return Proc(pid, int(fields[19]), uid, argv, "\nSeccomp:\t2" in status)


def _marked(pid: int, marker: bytes, root: str) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as f:
        if marker in f.read().split(b"\0"):
            return True
    with contextlib.suppress(OSError):
        cwd = os.readlink(f"/proc/{pid}/cwd")
        if cwd == root or cwd.startswith(root + "/"):
            return True
    return False


def area_processes(area: Area, exclude: Iterable[int] = ()) -> list[Proc]:
    """Live processes of this area's kernel: those that inherited its marker
    variable or run in a directory of the area. Found by pid in /proc; the
    driver (which has both) is excluded by pid."""
    marker = f"AGENTSH_TEST_AREA={area.root}".encode()
    skip = {*exclude, os.getpid()}
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in skip:
            continue
        if _marked(int(name), marker, str(area.root)):
            p = _proc(int(name))
            if p is not None:
                found.append(p)
    return found


def still_alive(tree: list[list[Any]]) -> list[list[Any]]:
    return [entry for entry in tree if alive(entry[0], entry[1])]


def wait_gone(
    area: Area, tree: list[list[Any]], exclude: Iterable[int] = (), timeout: float = 15
) -> str:
    """Wait until none of ``tree`` lives and no process of the area is left;
    returns a description of what is left ("" when nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        left = still_alive(tree)
        others = area_processes(area, exclude)
        if not left and not others:
            return ""
        if time.monotonic() > deadline:
            return "\n".join(
                [f"from the kernel's tree: pid {p} {argv}" for p, _, argv in left]
                + [
                    f"of the area: pid {p.pid} uid {p.uid} seccomp={p.seccomp} {p.argv}"
                    for p in others
                ]
            )
        time.sleep(0.1)
