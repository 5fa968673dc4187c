"""Session.launched: set once the command runs, or once its launch failed,
never left unset (the sandboxed kernel starts its proxy on it, and a
caller waiting on it must not hang)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import linux_only

pytestmark = linux_only

SCRIPT = """\
import json, sys, threading, time
from agentsh_ipy import audit as aud, supervisor as sup
ws, cmd = sys.argv[1], sys.argv[2:]
use = sup.host_choice()  # the mode and mechanism `auto` picks here (a container's differ)
session = sup.Session(sup.load_policy(None, ws), aud.AuditLog(None, "t", time.time),
                      mode=use["mode"], mechanism=use["mechanism"])
out = {}
t = threading.Thread(target=lambda: out.update(status=session.run(cmd, cwd=ws).status))
t.start()
out["launched"] = session.launched.wait(30)
out["running_then"] = t.is_alive()
t.join(60)
out["set_after"] = session.launched.is_set()
print(json.dumps(out))
"""


def _run(tmp_path: Path, cmd: list[str]) -> dict[str, object]:
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), *cmd],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout)
    return out


def test_set_while_the_command_runs(tmp_path: Path) -> None:
    out = _run(tmp_path, ["sleep", "2"])
    assert out == {"launched": True, "running_then": True, "set_after": True, "status": 0}


def test_set_when_the_launch_fails(tmp_path: Path) -> None:
    out = _run(tmp_path, [str(tmp_path / "no-such-program")])
    assert out["launched"] is True and out["set_after"] is True
    assert out["status"] == 127
