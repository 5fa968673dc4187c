"""The sandbox's own cache home.

Notebook programs write caches and datasets (pip, matplotlib's font cache,
scikit-learn's and Hugging Face's downloads, ...). The user's ``~/.cache`` is
not the place: the sandbox could plant code there that an unconfined program
later loads (a poisoned wheel in pip's cache). So every sandboxed process is
told, by the variables these tools read, to use a cache home of the
sandbox's own, which the policy lets it read and write and which nothing
outside reads. A variable the user set is overridden too: its directory is
the user's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._state import cache_base

RULE = "sandbox-cache"

# variable -> its directory under the cache home
VARIABLES: dict[str, str] = {
    "XDG_CACHE_HOME": "xdg",  # the default of most tools (fontconfig, pip's fallback, ...)
    "PIP_CACHE_DIR": "pip",
    "UV_CACHE_DIR": "uv",
    "npm_config_cache": "npm",
    "MPLCONFIGDIR": "matplotlib",
    "SCIKIT_LEARN_DATA": "scikit_learn_data",
    "KERAS_HOME": "keras",
    "HF_HOME": "huggingface",
    "TORCH_HOME": "torch",
    "NUMBA_CACHE_DIR": "numba",
}


def cache_home(env: Mapping[str, str] | None = None) -> str:
    """``$XDG_CACHE_HOME/agentsh-ipy/sandbox`` (``~/.cache/...``, else under
    the temp dir: see _state), from the supervisor's environment, not the
    sandbox's."""
    return os.path.join(os.path.realpath(cache_base(env)), "sandbox")


def cache_env(home: str) -> dict[str, str]:
    """The variables that send the tools' caches into ``home``."""
    return {name: os.path.join(home, sub) for name, sub in VARIABLES.items()}


def ensure(home: str) -> None:
    """Create the cache home (0700) before a launch: the tools create their
    own directories in it."""
    os.makedirs(home, mode=0o700, exist_ok=True)
