"""What the sandbox will use on a host, from the facts _linux.detect found."""

from __future__ import annotations

import platform
from typing import Any

from .._linux.detect import HostFacts

# The probes choose reads.
CHOICE_PROBES = ("seccomp_user_notify", "ptrace", "landlock")


def choose(facts: HostFacts) -> dict[str, Any]:
    """{"enforcing", "mode", "landlock", "summary"}: the mode ``--mode auto``
    will use, or why the sandbox refuses to run anything (exit 125)."""
    notify = facts.get("seccomp_user_notify")
    tracing = facts.get("ptrace")
    landlock = facts.get("landlock")
    ll = f"Landlock ABI {landlock.value}" if landlock.available else "no Landlock"
    if facts.arch_supported and tracing.available and notify.available:
        return {"enforcing": True, "mode": "notify", "landlock": landlock.available,
                "summary": f"seccomp user-notify decides files, exec, network and signals; "
                           f"ptrace follows the process tree; {ll}"}  # fmt: skip
    if facts.arch_supported and tracing.available and platform.machine() == "x86_64":
        return {"enforcing": True, "mode": "ptrace", "landlock": landlock.available,
                "summary": f"ptrace mode (seccomp user-notify unavailable: {notify.detail}); "
                           f"same policy and audit through SECCOMP_RET_TRACE; {ll}"}  # fmt: skip
    why = []
    if not facts.arch_supported:
        why.append(f"architecture {facts.machine} is not supported")
    if not notify.available:
        why.append(f"seccomp user-notify: {notify.detail}")
    if not tracing.available:
        why.append(f"ptrace: {tracing.detail}")
    elif not notify.available:
        why.append("ptrace mode needs x86_64")
    summary = "unavailable (" + "; ".join(why) + "): agentsh-ipy exec refuses to run (125)"
    return {"enforcing": False, "mode": None, "landlock": landlock.available, "summary": summary}
