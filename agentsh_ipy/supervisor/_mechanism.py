"""What the sandbox will use on a host, from the facts _linux.detect found.

No silent downgrade: notify mode is chosen only when every facility it
relies on answered, or has a stand-in that keeps the same guarantee (named
in the choice's ``mechanism`` and the start event); another missing one
makes ``auto`` use ptrace mode, or refuse.
A weaker guarantee is used only when named by the user (WEAKER), and then
the start event says which."""

from __future__ import annotations

import platform
from collections.abc import Collection
from typing import Any

from .._linux.detect import HostFacts

# What notify mode relies on besides ptrace, and the weaker guarantee that
# can stand in for each one missing (None: nothing can).
NOTIFY_NEEDS: dict[str, str | None] = {
    "seccomp_user_notify": None,
    "seccomp_addfd": "opens-continue",
    "pidfd_getfd": None,  # without it no allowed bind/connect/send works
    "unshare_fs": "opens-continue",
    "openat2": "opens-continue",
}

# Facilities notify mode can do without, keeping the same guarantee another
# way (issue 19: Docker's and Kubernetes' default profiles refuse both to a
# container without CAP_SYS_ADMIN/CAP_SYS_PTRACE): the part of the
# mechanism it changes, what it uses instead, and how that works.
STAND_INS: dict[str, tuple[str, str, str]] = {
    "unshare_fs": (
        "opens", "explicit-umask",
        "the caller's umask applied explicitly to what the supervisor creates",
    ),
    "pidfd_getfd": (
        "sockets", "ptrace-held",
        "connect, bind and sends with an address traced (SECCOMP_RET_TRACE) and continued "
        "with every task sharing the caller's memory held; fd changes made through an "
        "O_PATH reopen of the fd",
    ),
}  # fmt: skip
# What notify mode uses where every facility answered.
FULL_MECHANISM = {"opens": "private-umask", "sockets": "fd-copy"}

# The weaker guarantees one may accept (--accept-weaker), and what is lost.
WEAKER = {
    "opens-continue": "allowed opens continue in the kernel instead of being done by the "
    "supervisor: a thread racing the decision can swap the path that gets opened",
}

# The probes choose reads.
CHOICE_PROBES = (*NOTIFY_NEEDS, "ptrace", "landlock")


def check_accepted(accept: Collection[str]) -> frozenset[str]:
    unknown = set(accept) - set(WEAKER)
    if unknown:
        raise ValueError(
            f"no such weaker guarantee: {', '.join(sorted(unknown))} (known: {', '.join(WEAKER)})"
        )
    return frozenset(accept)


def choose(facts: HostFacts, mode: str = "auto", accept: Collection[str] = ()) -> dict[str, Any]:
    """{"enforcing", "mode", "landlock", "summary", "missing", "weaker",
    "mechanism"}: the mode ``--mode auto`` (or ``notify``) will use, or why
    the sandbox refuses to run anything (exit 125). ``missing`` names the
    notify facilities this host lacks; ``weaker`` the accepted guarantees
    notify mode gives up here; ``mechanism`` (notify mode) how it does its
    opens and socket calls: FULL_MECHANISM, or a stand-in (STAND_INS) for
    each facility missing that has one."""
    if mode not in ("auto", "notify"):
        raise ValueError(f"mode {mode!r} is not auto or notify")
    accept = check_accepted(accept)
    tracing = facts.get("ptrace")
    landlock = facts.get("landlock")
    ll = f"Landlock ABI {landlock.value}" if landlock.available else "no Landlock"
    absent = [facts.get(n) for n in NOTIFY_NEEDS if not facts.get(n).available]
    missing = [p.name for p in absent]
    # A stand-in for pidfd_getfd traces: it needs what ptrace mode needs.
    traces = tracing.available and platform.machine() == "x86_64"
    standing = [
        p for p in absent if p.name in STAND_INS and (p.name != "pidfd_getfd" or traces)
    ]  # fmt: skip
    gaps = [p for p in absent if p not in standing]
    mechanism = dict(FULL_MECHANISM)
    for p in standing:
        part, instead, _how = STAND_INS[p.name]
        mechanism[part] = instead
    uncovered = [p for p in gaps if NOTIFY_NEEDS[p.name] not in accept]
    weaker = sorted({w for p in gaps if (w := NOTIFY_NEEDS[p.name]) is not None} & accept)
    gap_text = "; ".join(f"{p.name}: {p.detail}" for p in gaps)
    base = {"landlock": landlock.available, "missing": missing, "weaker": [], "mechanism": None}
    can_trace = facts.arch_supported and tracing.available
    instead = "".join(f"; without {p.name}: {STAND_INS[p.name][2]}" for p in standing)
    notify = {**base, "enforcing": True, "mode": "notify", "mechanism": mechanism,
              "summary": f"seccomp user-notify decides files, exec, network and signals; "
                         f"ptrace follows the process tree; {ll}{instead}"}  # fmt: skip
    if can_trace and not gaps:
        return notify
    if mode == "auto" and can_trace and platform.machine() == "x86_64":
        return {**base, "enforcing": True, "mode": "ptrace",
                "summary": f"ptrace mode (notify mode lacks {gap_text}); "
                           f"same policy and audit through SECCOMP_RET_TRACE; {ll}"}  # fmt: skip
    if can_trace and not uncovered:
        # Only what the user accepted is missing (and ptrace mode is not
        # available, or notify was asked for by name).
        lost = "; ".join(f"accepted weaker guarantee {w}: {WEAKER[w]}" for w in weaker)
        return {**notify, "weaker": weaker, "summary": f"{notify['summary']}; {lost}"}
    why = []
    if not facts.arch_supported:
        why.append(f"architecture {facts.machine} is not supported")
    for p in uncovered:
        hint = NOTIFY_NEEDS[p.name]
        more = f" (--accept-weaker {hint} runs without it)" if hint and mode == "notify" else ""
        why.append(f"notify mode needs {p.name}: {p.detail}{more}")
    if not tracing.available:
        why.append(f"ptrace: {tracing.detail}")
    elif mode == "auto" and uncovered:
        why.append("ptrace mode needs x86_64")
    what = "notify mode is unavailable" if mode == "notify" else "unavailable"
    summary = f"{what} (" + "; ".join(why) + "): agentsh-ipy exec refuses to run (125)"
    return {**base, "enforcing": False, "mode": None, "summary": summary}
