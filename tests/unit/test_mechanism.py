"""What the sandbox chooses from host facts (no probing: crafted facts)."""

from __future__ import annotations

import platform

import pytest

from agentsh_ipy._linux.detect import HostFacts, Probe
from agentsh_ipy.supervisor._mechanism import choose


def facts(notify: bool, ptrace: bool, arch: bool = True) -> HostFacts:
    def p(name: str, ok: bool, detail: str) -> Probe:
        return Probe(name, ok, detail if not ok else "ok", 7 if name == "landlock" else None)

    probes = (
        p("seccomp_user_notify", notify, "EBUSY: already has a seccomp listener"),
        p("ptrace", ptrace, "EPERM: ptrace refused"),
        p("landlock", True, ""),
    )
    return HostFacts("6.18", platform.machine(), arch, probes)


def test_notify_when_available() -> None:
    use = choose(facts(True, True))
    assert (use["enforcing"], use["mode"]) == (True, "notify")
    assert "Landlock ABI 7" in use["summary"]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="ptrace mode is x86_64 only")
def test_ptrace_mode_when_notify_is_missing() -> None:
    use = choose(facts(False, True))
    assert (use["enforcing"], use["mode"]) == (True, "ptrace")
    assert "EBUSY" in use["summary"]


def test_refuses_and_says_why_when_neither_works() -> None:
    use = choose(facts(False, False))
    assert use["enforcing"] is False and use["mode"] is None
    assert "EBUSY" in use["summary"] and "EPERM: ptrace refused" in use["summary"]
    assert "refuses to run (125)" in use["summary"]
    assert choose(facts(True, True, arch=False))["enforcing"] is False
