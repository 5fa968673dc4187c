"""What this host gives the tests, for those that need a facility a
container never has (tests/container/launch.py reproduces one: Docker's
default seccomp profile and capabilities, uid 1000). Each answer is None
when the facility is there, else the reason a test needing it skips with;
on an ordinary host run (root, no outer filter) every answer is None.
"""

from __future__ import annotations

import ctypes
import functools
import os

CLONE_NEWUSER = 0x10000000


@functools.cache
def notify_refusal() -> str | None:
    """Why `--mode notify` refuses to run here (the sandbox's own choice,
    see supervisor/_mechanism.py), or None."""
    from agentsh_ipy._linux import detect
    from agentsh_ipy.supervisor._mechanism import CHOICE_PROBES, choose

    use = choose(detect.probe_host(only=CHOICE_PROBES), "notify")
    if use["enforcing"]:
        return None
    return f"notify mode is unavailable on this host: {use['summary']}"


@functools.cache
def userns_refusal() -> str | None:
    """Why this process cannot make a user namespace (what `unshare --user`
    and the tests' private mounts need), or None. Tried in a child, so this
    process keeps its own."""
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        os._exit(0 if libc.unshare(CLONE_NEWUSER) == 0 else ctypes.get_errno())
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    return (
        f"unshare(CLONE_NEWUSER) fails here ({os.strerror(code)}): a container's seccomp "
        "profile without CAP_SYS_ADMIN (Docker's default) refuses user namespaces"
    )


@functools.cache
def outer_filter() -> bool:
    """This process runs under a seccomp filter of its own (a container's;
    tests/container/launch.py applies one). An ordinary run never does: the
    sandbox's filter is on the programs it starts, not on the tests."""
    with open("/proc/self/status") as f:
        return any(line.split() == ["Seccomp:", "2"] for line in f)


@functools.cache
def _docker_profile() -> tuple[frozenset[str], frozenset[str], int]:
    """Docker's default profile as the launcher applies it: the names let
    through whatever the arguments, those let through for some arguments
    only, and the highest x86_64 number it names (runc answers ENOSYS above)."""
    import json
    import platform

    from agentsh_ipy._linux import arch
    from tests.container import launch

    profile = json.loads(launch.PROFILE.read_text())
    goarch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "")
    rules = launch.select_rules(profile, launch.DOCKER_DEFAULT_CAPS, goarch)
    allowed = [r for r in rules if r["action"] == "SCMP_ACT_ALLOW"]
    always = frozenset(n for r in allowed if not r.get("args") for n in r["names"])
    some = frozenset(n for r in allowed if r.get("args") for n in r["names"]) - always
    nrs = [nr for r in rules for n in r["names"] if (nr := arch.current().nr(n)) is not None]
    return always, some, max(nrs)


def outer_refusal(syscall: str) -> str | None:
    """How the outer filter answers ``syscall`` (a name, or syscall_NNN for
    a bare number) before the sandbox sees it, taking it to be Docker's
    default profile: None when it lets the call through; else "EPERM",
    "EPERM for some arguments" or "ENOSYS" (a call newer than the profile,
    as runc answers it)."""
    if not outer_filter():
        return None
    from agentsh_ipy._linux import arch

    always, some, newest = _docker_profile()
    if syscall in always:
        return None
    if syscall in some:
        return "EPERM for some arguments"
    nr = int(syscall[8:]) if syscall.startswith("syscall_") else arch.current().nr(syscall)
    return "ENOSYS" if nr is not None and nr > newest else "EPERM"


@functools.cache
def notify_mechanism() -> dict[str, str] | None:
    """How notify mode does its opens and socket calls here (the choice's
    ``mechanism``: FULL_MECHANISM, or stand-ins where a container refuses
    pidfd_getfd or unshare(CLONE_FS)); None where notify mode refuses."""
    from agentsh_ipy._linux import detect
    from agentsh_ipy.supervisor._mechanism import CHOICE_PROBES, choose

    use = choose(detect.probe_host(only=CHOICE_PROBES), "notify")
    return dict(use["mechanism"]) if use["enforcing"] else None


def stand_ins() -> str | None:
    """Which stand-ins notify mode uses here, or None where it uses none."""
    from agentsh_ipy.supervisor._mechanism import FULL_MECHANISM

    mech = notify_mechanism()
    if mech is None or mech == FULL_MECHANISM:
        return None
    return ", ".join(f"{part}: {how}" for part, how in mech.items() if FULL_MECHANISM[part] != how)
