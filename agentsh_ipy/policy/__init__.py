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
    PROXY_RULE,
    REBIND_RULE,
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
    "PROXY_RULE",
    "REBIND_RULE",
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
    "example_policy_text",
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


EXAMPLES = ("pypi",)

_PYPI_RULE = """\
  # PyPI through the sandbox's proxy (HTTPS_PROXY): these names on port
  # 443, nothing else. A program that ignores the proxy variables connects
  # by address and is denied (defaults.network).
  - name: pypi
    domains: ["pypi.org", "files.pythonhosted.org"]
    ports: [443]
    decision: allow
"""


def example_policy_text(name: str) -> str:
    """A complete policy: the default one plus the example's rules
    (``pypi``: `pip install` from PyPI, no other host)."""
    if name not in EXAMPLES:
        raise ValueError(f"no example policy {name!r}; there are: {', '.join(EXAMPLES)}")
    text = default_policy_text()
    head = "# agentsh-ipy default policy."
    assert text.startswith(head) and "\nname: default\n" in text and "\nnetwork_rules:\n" in text
    text = text.replace(
        head,
        "# agentsh-ipy example policy 'pypi': the default policy, and PyPI by name\n"
        "# (`agentsh-ipy policy show --example pypi`).",
        1,
    )
    text = text.replace("\nname: default\n", "\nname: pypi\n", 1)
    return text.replace("\nnetwork_rules:\n", "\nnetwork_rules:\n" + _PYPI_RULE, 1)


def load_default(variables: Mapping[str, str]) -> Policy:
    """Parse the packaged default policy with ``variables`` expanded."""
    return Policy.parse(default_policy_text(), DEFAULT_SOURCE, variables)
