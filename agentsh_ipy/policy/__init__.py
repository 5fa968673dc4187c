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

from ._engine import (
    HOST_LOCAL_RULE,
    NOT_OWN,
    OWN_RULE,
    PROTECTED_RULE,
    Decision,
    Policy,
    is_host_address,
)
from ._errors import PolicyError
from ._protected import Host as ProtectedHost
from ._protected import Protected, ahead_of_system, protected_set
from ._protected import describe as describe_protected
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
    Unprotect,
)

__all__ = [
    "COMMAND_DECISIONS",
    "DECISIONS",
    "FILE_DECISIONS",
    "FILE_OPERATIONS",
    "HOST_LOCAL_RULE",
    "NOT_OWN",
    "OWN_RULE",
    "PROTECTED_RULE",
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
    "Protected",
    "ProtectedHost",
    "SignalRule",
    "UnixSocketRule",
    "Unprotect",
    "ahead_of_system",
    "default_policy_text",
    "describe_protected",
    "is_host_address",
    "load_default",
    "protected_set",
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
