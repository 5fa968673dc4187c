"""Where state (audit logs, the trash's key) and the sandbox's caches live
when the home is not writable (issue 19 item 4): the XDG directory, else the
home's default, else a private directory under the temp dir; never a
directory someone else made; a clear error when nothing is writable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agentsh_ipy.supervisor import _state


def _blocked(tmp_path: Path) -> str:
    """A path under a regular file: no one (root neither) can make it."""
    f = tmp_path / "a-file"
    f.write_text("")
    return str(f / "below")


def test_the_xdg_directory_first_then_the_home(tmp_path: Path) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    env = {"HOME": str(home), "XDG_STATE_HOME": str(xdg), "TMPDIR": str(tmp_path)}
    assert _state.state_dir(env) == f"{xdg}/agentsh-ipy"
    env["XDG_STATE_HOME"] = _blocked(tmp_path)
    assert _state.state_dir(env) == f"{home}/.local/state/agentsh-ipy"
    assert stat.S_IMODE(os.stat(f"{home}/.local/state/agentsh-ipy").st_mode) == 0o700


def test_an_unwritable_home_falls_to_a_private_temp_dir(tmp_path: Path) -> None:
    env = {"HOME": _blocked(tmp_path), "TMPDIR": str(tmp_path)}
    private = tmp_path / f"agentsh-ipy-{os.geteuid()}"
    assert _state.state_dir(env) == f"{private}/state"
    assert _state.cache_base(env) == f"{private}/cache"
    st = os.lstat(private)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), 0o700)
    # Every candidate is named for the protected set, the temp one too.
    assert f"{private}/state" in _state.state_candidates(env)


@pytest.mark.parametrize("planted", ["open-to-others", "symlink"])
def test_a_temp_dir_someone_else_made_is_refused_with_every_reason(
    tmp_path: Path, planted: str
) -> None:
    private = tmp_path / f"agentsh-ipy-{os.geteuid()}"
    if planted == "symlink":
        (tmp_path / "elsewhere").mkdir()
        private.symlink_to(tmp_path / "elsewhere")
    else:
        private.mkdir()
        private.chmod(0o777)
    env = {"HOME": _blocked(tmp_path), "TMPDIR": str(tmp_path)}
    with pytest.raises(_state.NoStateDir) as e:
        _state.state_dir(env)
    text = str(e.value.strerror)
    assert "the home" in text and "Not a directory" in text
    assert str(private) in text and "refused" in text
    assert "set XDG_STATE_HOME" in text
    assert not (tmp_path / "elsewhere" / "state").exists()
