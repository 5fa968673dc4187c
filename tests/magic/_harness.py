"""Run tests/magic/driver.py (an in-process InteractiveShell with the
extension) as the test's user, from a copy in the scratch area so that
uid 65534 can read it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import agentsh_ipy
from tests.conftest import Area, sandbox_env

HERE = Path(__file__).resolve().parent
REPO = str(Path(agentsh_ipy.__file__).resolve().parent.parent)
AUDIT_MIME = "application/vnd.agentsh.audit+json"


def run_driver(area: Area, spec: dict[str, Any], *, name: str = "run", timeout: float = 300) -> Any:
    bin_dir = area.root / "driver"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for f in ("driver.py", "_fake.py"):
            shutil.copy(HERE / f, bin_dir / f)
            (bin_dir / f).chmod(0o644)
        bin_dir.chmod(0o755)
    spec = {"repo": REPO, **spec}
    spec_path = area.write(f"{name}.spec.json", json.dumps(spec))
    out_path = area.root / f"{name}.result.json"
    out_path.unlink(missing_ok=True)
    area.write(f"{name}.result.json", "")
    env = sandbox_env(area)
    env["PYTHONPATH"] = REPO  # the daemon and the wrapper import the code under test too
    env["IPYTHONDIR"] = str(area.home / ".ipython")
    driver = str(bin_dir / "driver.py")
    argv = area.user.cmd([sys.executable, driver, str(spec_path), str(out_path)])
    p = subprocess.run(
        argv,
        cwd=area.ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # no controlling terminal: nobody to ask
    )
    text = out_path.read_text() if out_path.exists() else ""
    if p.returncode != 0 or not text:
        raise AssertionError(
            f"driver failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
        )
    result = json.loads(text)
    result["raw_stdout"] = p.stdout
    result["raw_stderr"] = p.stderr
    return result


def audit_events(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of the audit display(s) in a cell's outputs."""
    return [e for o in cell["outputs"] if AUDIT_MIME in o for e in o[AUDIT_MIME]["events"]]


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
