"""Where agentsh-ipy keeps its state (audit logs, the trash's key) and the
sandbox's cache home, on hosts whose home may not be writable (a container
with a read-only root file system, a home on a read-only mount).

The first writable of: the XDG variable's directory, the home's default,
a private directory under the temp dir (``agentsh-ipy-<uid>``, made 0700 by
this user; one that exists with another owner or wider rights is refused,
since someone else could read or plant our state there). The same inputs
give the same choice, so every process of a session (and a later ``trash
restore``) finds the same place. When none is writable the error names
each candidate and why.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Mapping

APP = "agentsh-ipy"


class NoStateDir(OSError):
    """No candidate directory is writable; the message says why for each."""


def _usable(path: str) -> str | None:
    """Make ``path`` (0700 where new) and check we can write in it; None if
    so, else why not."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as e:
        return e.strerror or str(e)
    if not os.path.isdir(path):
        return "not a directory"
    if not os.access(path, os.W_OK | os.X_OK, effective_ids=True):
        return os.strerror(errno.EACCES)
    # access() says yes to root on a read-only mount's directory: try it.
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    os.unlink(probe)
    return None


def _private_temp(env: Mapping[str, str]) -> str | None:
    """Make ``<tmp>/agentsh-ipy-<uid>``, ours alone; None, or why it cannot be."""
    path = _temp(env)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        return e.strerror or str(e)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return "exists and is not a directory (refused: not made by us)"
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return "exists with another owner or open to others (refused)"
    return None


def _temp(env: Mapping[str, str]) -> str:
    return os.path.join(env.get("TMPDIR") or "/tmp", f"{APP}-{os.geteuid()}")


def _candidates(
    kind: str, xdg: str, home_default: str, env: Mapping[str, str]
) -> list[tuple[str, str]]:
    home = env.get("HOME") or os.path.expanduser("~")
    out = [(f"${xdg}", os.path.join(env[xdg], APP))] if env.get(xdg) else []
    out.append(("the home", os.path.join(home, home_default, APP)))
    out.append(("the temp dir", os.path.join(_temp(env), kind)))
    return out


def _pick(kind: str, xdg: str, home_default: str, env: Mapping[str, str] | None) -> str:
    env = os.environ if env is None else env
    tried: list[str] = []
    for label, path in _candidates(kind, xdg, home_default, env):
        if label == "the temp dir":
            why = _private_temp(env)
            why = why or _usable(path)
        else:
            why = _usable(path)
        if why is None:
            return path
        tried.append(f"{label} {path}: {why}")
    raise NoStateDir(
        errno.EROFS,
        f"no writable place for agentsh-ipy's {kind} ({'; '.join(tried)}); set {xdg} "
        "to a writable directory",
    )


_STATE = ("state", "XDG_STATE_HOME", os.path.join(".local", "state"))


def state_dir(env: Mapping[str, str] | None = None) -> str:
    """The audit logs and the trash's key: $XDG_STATE_HOME/agentsh-ipy,
    ~/.local/state/agentsh-ipy, else <tmp>/agentsh-ipy-<uid>/state."""
    return _pick(*_STATE, env)


def cache_base(env: Mapping[str, str] | None = None) -> str:
    """agentsh-ipy's cache directory: $XDG_CACHE_HOME/agentsh-ipy,
    ~/.cache/agentsh-ipy, else <tmp>/agentsh-ipy-<uid>/cache."""
    return _pick("cache", "XDG_CACHE_HOME", ".cache", env)


def state_candidates(env: Mapping[str, str] | None = None) -> list[str]:
    """Every place :func:`state_dir` may pick (all protected from the sandbox,
    so it cannot plant state in one that is not made yet)."""
    env = os.environ if env is None else env
    return [
        p for _, p in _candidates("state", "XDG_STATE_HOME", os.path.join(".local", "state"), env)
    ]
