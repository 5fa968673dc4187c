"""The policy engine: parse, validate and decide.  Pure: no I/O beyond
reading the packaged default policy, no ``os``, no ``ctypes``, no IPython.

    policy = Policy.parse(text, "policy.yaml", {"WORKSPACE": ..., "HOME": ..., "TMPDIR": ...})
    policy.check_file("write", "/home/u/.ssh/id_rsa")  # Decision("deny", "credentials", ...)
    policy.check_signal(15, "outside")                 # Decision("deny", "default:signal")
    policy.limits.max_processes                        # 512 in the default policy
"""

from __future__ import annotations

import pkgutil
from collections.abc import Mapping

from ._engine import HOST_LOCAL_RULE, NOT_OWN, OWN_RULE, Decision, Policy, is_host_address
from ._errors import PolicyError
from ._schema import (
    COMMAND_DECISIONS,
    DECISIONS,
    FILE_DECISIONS,
    FILE_OPERATIONS,
    SIGNAL_TARGETS,
    SIGNALS,
    SOCKET_OPERATIONS,
    VARIABLES,
    CommandRule,
    Defaults,
    EnvPolicy,
    FileRule,
    Limits,
    NetworkRule,
    SignalRule,
    UnixSocketRule,
)

__all__ = [
    "COMMAND_DECISIONS",
    "DECISIONS",
    "FILE_DECISIONS",
    "FILE_OPERATIONS",
    "HOST_LOCAL_RULE",
    "NOT_OWN",
    "OWN_RULE",
    "SIGNALS",
    "SIGNAL_TARGETS",
    "SOCKET_OPERATIONS",
    "VARIABLES",
    "CommandRule",
    "Decision",
    "Defaults",
    "EnvPolicy",
    "FileRule",
    "Limits",
    "NetworkRule",
    "Policy",
    "PolicyError",
    "SignalRule",
    "UnixSocketRule",
    "default_policy_text",
    "is_host_address",
    "load_default",
]

DEFAULT_SOURCE = "<built-in default.yaml>"


def default_policy_text() -> str:
    """The packaged default policy, ``agentsh_ipy/policy/default.yaml``."""
    # The package's loader reads it (importlib.resources would cost every
    # start-up its pathlib and zipfile imports).
    data = pkgutil.get_data(__name__, "default.yaml")
    if data is None:
        raise PolicyError([(DEFAULT_SOURCE, 0, "the built-in policy is missing from the package")])
    return data.decode("utf-8")


def load_default(variables: Mapping[str, str]) -> Policy:
    """Parse the packaged default policy with ``variables`` expanded."""
    return Policy.parse(default_policy_text(), DEFAULT_SOURCE, variables)
