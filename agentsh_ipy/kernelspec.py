"""Installing the sandboxed kernel's kernelspec (``agentsh-ipy kernel install``).

``pip install`` already puts the default kernelspec, "agentsh", in
``<prefix>/share/jupyter/kernels/agentsh`` (kernel/agentsh in the source
tree). This installs another one: under another name, for the user or
another prefix, or with a policy of its own. Its argv names this
interpreter (``sys.executable``) and the policy by absolute path, so it
works from any working directory and whatever is first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KERNEL_NAME = "agentsh"
DISPLAY_NAME = "Python 3 (agentsh sandbox)"
KERNEL_MODULE = "agentsh_ipy.kernel"
LOGOS = ("logo-32x32.png", "logo-64x64.png")


def kernel_argv(policy: str | None = None, python: str | None = None) -> list[str]:
    """The command line Jupyter runs, ``{connection_file}`` left for it to fill.
    ``-P``: Jupyter starts it in the notebook's directory, the workspace, and
    ``-m`` would put that first on sys.path, so a package planted there
    (``agentsh_ipy/``) would run as the supervisor, unconfined."""
    argv = [python or sys.executable, "-P", "-m", KERNEL_MODULE, "-f", "{connection_file}"]
    if policy is not None:
        argv += ["--policy", policy]
    return argv


def kernel_json(
    *, policy: str | None = None, display_name: str = DISPLAY_NAME, python: str | None = None
) -> dict[str, Any]:
    return {
        "argv": kernel_argv(policy, python),
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def _logo_dir() -> Path | None:
    """Where the logos are: inside the installed package (the wheel
    force-includes kernel/agentsh there) or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_kernelspec", here.parent / "kernel" / "agentsh"):
        if all((candidate / logo).is_file() for logo in LOGOS):
            return candidate
    return None


class InstallError(Exception):
    """The kernelspec was not installed; the message says why, in words."""


@dataclass(frozen=True)
class Installed:
    name: str
    path: str
    argv: list[str]


def validate_policy(path: str) -> str:
    """The policy's absolute path, once it loads; raises the policy's own
    error (``file:line: reason`` per problem) when it does not."""
    from .supervisor import load_policy

    load_policy(path, os.getcwd())
    return os.path.abspath(path)


def install(
    *,
    user: bool = False,
    sys_prefix: bool = False,
    prefix: str | None = None,
    name: str = KERNEL_NAME,
    display_name: str | None = None,
    policy: str | None = None,
) -> Installed:
    """Install the kernelspec. Where: the user's Jupyter data directory
    (``user``), this environment (``sys_prefix``), ``prefix``, or else the
    system-wide directory, as ``jupyter kernelspec install`` does. The
    policy (if any) must be validated first: see :func:`validate_policy`."""
    from jupyter_client.kernelspec import KernelSpecManager

    if sum((user, sys_prefix, prefix is not None)) > 1:
        raise InstallError("choose one of --user, --sys-prefix and --prefix")
    if sys_prefix:
        prefix = sys.prefix
    spec = kernel_json(
        policy=policy, display_name=display_name or _default_display_name(name, policy)
    )
    with tempfile.TemporaryDirectory(prefix="agentsh-kernelspec-") as tmp:
        src = Path(tmp) / name
        src.mkdir()
        (src / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        logos = _logo_dir()
        if logos is not None:
            for logo in LOGOS:
                shutil.copy(logos / logo, src / logo)
        try:
            dest = KernelSpecManager().install_kernel_spec(
                str(src), kernel_name=name, user=user, prefix=prefix
            )
        except ValueError as e:  # an invalid kernel name
            raise InstallError(str(e)) from None
        except OSError as e:
            where = e.filename or "the kernelspec directory"
            hint = "" if user or prefix else " (try --user or --sys-prefix)"
            raise InstallError(f"cannot write {where}: {e.strerror}{hint}") from None
    return Installed(name=name.lower(), path=dest, argv=spec["argv"])


def _default_display_name(name: str, policy: str | None) -> str:
    if policy is None:
        return DISPLAY_NAME
    return f"{DISPLAY_NAME[:-1]}, {Path(policy).name})"


def is_agentsh_argv(argv: Sequence[str]) -> bool:
    return any(a == KERNEL_MODULE for a in argv)


def installed() -> list[tuple[str, str, dict[str, Any]]]:
    """The kernelspecs Jupyter finds that run the sandboxed kernel:
    (name, directory, kernel.json)."""
    from jupyter_client.kernelspec import KernelSpecManager

    found = []
    for name, path in sorted(KernelSpecManager().find_kernel_specs().items()):
        try:
            spec = json.loads((Path(path) / "kernel.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(spec, dict) and is_agentsh_argv(spec.get("argv") or []):
            found.append((name, path, spec))
    return found
