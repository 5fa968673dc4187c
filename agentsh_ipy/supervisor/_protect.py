"""This host's facts for the built-in protected set (policy/_protected.py):
the policy layer names the entries, the supervisor says where they are.

Jupyter's and IPython's directories are computed as jupyter_core and
IPython find them, from the environment and their defaults, without
importing either (the supervisor's start-up cost).
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Callable, Iterable, Mapping

from .. import policy as pol
from ._state import state_candidates


def _real(paths: Iterable[str | None], cwd: str | None = None) -> tuple[str, ...]:
    """Absolute, symlinks resolved, in order, once each; empty entries dropped."""
    out = []
    for p in paths:
        if not p:
            continue
        if not os.path.isabs(p):
            if cwd is None:
                continue
            p = os.path.join(cwd, p)
        out.append(os.path.realpath(p))
    return tuple(dict.fromkeys(out))


def _split(value: str | None) -> list[str]:
    return [p for p in (value or "").split(os.pathsep) if p]


def gather(home: str, env: Mapping[str, str] | None = None) -> pol.ProtectedHost:
    """The facts of this process and host: ``home`` is the policy's
    ${HOME}; ``env`` the supervisor's environment (the sandbox's derives
    from it)."""
    env = os.environ if env is None else env
    config = env.get("XDG_CONFIG_HOME")
    data = env.get("XDG_DATA_HOME")
    prefixes = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    user_base = env.get("PYTHONUSERBASE") or os.path.join(home, ".local")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    user_site = os.path.join(user_base, "lib", version, "site-packages")
    # the site dirs this interpreter imports from (others: python-env's globs)
    sites = [*site.getsitepackages(), *([user_site] if site.ENABLE_USER_SITE else [])]
    jupyter_config = [
        env.get("JUPYTER_CONFIG_DIR") or os.path.join(home, ".jupyter"),
        *_split(env.get("JUPYTER_CONFIG_PATH")),
        *(os.path.join(p, "etc", "jupyter") for p in (*prefixes, user_base)),
        "/usr/local/etc/jupyter",
        "/etc/jupyter",
    ]
    jupyter_data = [
        env.get("JUPYTER_DATA_DIR")
        or os.path.join(data or os.path.join(home, ".local", "share"), "jupyter"),
        *_split(env.get("JUPYTER_PATH")),
        *(os.path.join(p, "share", "jupyter") for p in (*prefixes, user_base)),
        "/usr/local/share/jupyter",
        "/usr/share/jupyter",
    ]
    startup = env.get("PYTHONSTARTUP")
    return pol.ProtectedHost(
        home=home,
        config_homes=_real([config]),
        data_homes=_real([data]),
        state_dirs=_real(state_candidates({**env, "HOME": home})),
        ipython_dirs=_real([env.get("IPYTHONDIR"), os.path.join(home, ".config", "ipython")]),
        jupyter_config=_real(jupyter_config),
        jupyter_data=_real(jupyter_data),
        site_dirs=_real(sites),
        prefixes=_real(prefixes),
        package=os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        startup_files=_real([startup], cwd=os.getcwd()),
        user_path=_real(pol.ahead_of_system(_split(env.get("PATH")))),
    )


def entries(home: str, env: Mapping[str, str] | None = None) -> tuple[pol.Protected, ...]:
    """The protected set on this host, with dotfiles that are symlinks
    protected at their targets too."""
    return pol.protected_set(gather(home, env), _resolver())


def _resolver() -> Callable[[str], str]:
    """os.path.realpath for a few hundred paths sharing their directories:
    each directory is resolved once, and a leaf only when it is a link."""
    dirs: dict[str, str] = {}

    def resolve(path: str) -> str:
        parent, leaf = os.path.split(path)
        real = dirs.get(parent)
        if real is None:
            real = dirs[parent] = os.path.realpath(parent)
        full = os.path.join(real, leaf)
        return os.path.realpath(full) if os.path.islink(full) else full

    return resolve
