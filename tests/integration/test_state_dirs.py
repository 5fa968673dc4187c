"""A home on a read-only file system (a container run with --read-only and a
tmpfs on the temp dir) does not stop the sandbox: its audit log, the
trash's key and the sandbox's caches go to a private directory under the
temp dir, and when that is not writable either, the command does not run
and the error says where it looked (issue 19 item 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Area, User, linux_only, sandbox_env

pytestmark = linux_only

# In a mount namespace of its own (a user namespace too, so uid 65534 can):
# the home, and the temp dir when asked, become read-only bind mounts.
READ_ONLY = 'for d in $RO; do mount --bind -o ro "$d" "$d" || exit 97; done; exec "$@"'


def _exec(
    area: Area, user: User, read_only: list[Path], tmp: Path
) -> subprocess.CompletedProcess[str]:
    env = sandbox_env(area)
    env.update(TMPDIR=str(tmp), RO=" ".join(map(str, read_only)))
    env.pop("XDG_STATE_HOME", None)
    env.pop("XDG_CACHE_HOME", None)
    argv = user.cmd([
        "unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READ_ONLY, "sh",
        sys.executable, "-m", "agentsh_ipy.cli", "exec", "--workspace", str(area.ws), "--",
        "sh", "-c", "echo written > out.txt && cat out.txt",
    ])  # fmt: skip
    return subprocess.run(
        argv, cwd=area.ws, env=env, capture_output=True, text=True, timeout=120,
        start_new_session=True,
    )  # fmt: skip


@pytest.mark.needs_userns
def test_a_read_only_home_puts_the_state_under_the_temp_dir(area: Area, user: User) -> None:
    tmp = area.mkdir("tmp")
    p = _exec(area, user, [area.home], tmp)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "written\n"
    assert (area.ws / "out.txt").read_text() == "written\n"
    # uid 0 inside the user namespace the test made
    logs = list((tmp / "agentsh-ipy-0" / "state" / "audit").glob("*.jsonl"))
    assert len(logs) == 1, list(tmp.rglob("*"))
    events = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert events[0]["op"] == "start" and events[-1]["op"] == "end"
    assert any(
        e["type"] == "file" and e.get("path", "").endswith("/out.txt") and e["decision"] == "allow"
        for e in events
    )
    assert (tmp / "agentsh-ipy-0" / "cache" / "sandbox").is_dir()
    assert not (area.home / ".local").exists()


@pytest.mark.needs_userns
def test_nowhere_writable_runs_nothing_and_says_where_it_looked(area: Area, user: User) -> None:
    tmp = area.mkdir("tmp")
    p = _exec(area, user, [area.home, tmp], tmp)
    assert p.returncode == 125, (p.returncode, p.stderr)
    assert "no writable place for agentsh-ipy's" in p.stderr
    assert str(area.home) in p.stderr and str(tmp) in p.stderr
    assert "Read-only file system" in p.stderr
    assert "set XDG_" in p.stderr
    assert not (area.ws / "out.txt").exists()
