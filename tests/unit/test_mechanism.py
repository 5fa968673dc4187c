"""What the sandbox chooses from host facts (no probing: crafted facts)."""

from __future__ import annotations

import platform

import pytest

from agentsh_ipy._linux.detect import HostFacts, Probe
from agentsh_ipy.supervisor._mechanism import CHOICE_PROBES, NOTIFY_NEEDS, choose

X86 = pytest.mark.skipif(platform.machine() != "x86_64", reason="ptrace mode is x86_64 only")


def facts(
    notify: bool, ptrace: bool, arch: bool = True, lacking: tuple[str, ...] = ()
) -> HostFacts:
    def p(name: str, ok: bool, detail: str) -> Probe:
        return Probe(name, ok, detail if not ok else "ok", 7 if name == "landlock" else None)

    probes = (
        p("seccomp_user_notify", notify, "EBUSY: already has a seccomp listener"),
        *(
            p(n, n not in lacking, f"EPERM: {n} refused")
            for n in NOTIFY_NEEDS
            if n != "seccomp_user_notify"
        ),
        p("ptrace", ptrace, "EPERM: ptrace refused"),
        p("landlock", True, ""),
    )
    return HostFacts("6.18", platform.machine(), arch, probes)


def test_the_choice_probes_are_what_choose_reads() -> None:
    assert set(CHOICE_PROBES) == {p.name for p in facts(True, True).probes}


def test_notify_when_available() -> None:
    use = choose(facts(True, True))
    assert (use["enforcing"], use["mode"]) == (True, "notify")
    assert "Landlock ABI 7" in use["summary"]


@X86
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


@X86
@pytest.mark.parametrize(
    "lacking",
    [
        ("pidfd_getfd",),
        ("unshare_fs",),
        ("openat2",),
        ("seccomp_addfd",),
        ("pidfd_getfd", "unshare_fs"),
    ],
)
def test_auto_uses_ptrace_mode_when_a_notify_facility_is_missing(lacking: tuple[str, ...]) -> None:
    use = choose(facts(True, True, lacking=lacking))
    assert (use["enforcing"], use["mode"], use["missing"]) == (True, "ptrace", list(lacking))
    for name in lacking:
        assert f"{name}: EPERM: {name} refused" in use["summary"]
    # auto keeps every guarantee: accepting a weaker one does not make it use it
    assert (
        choose(facts(True, True, lacking=lacking), "auto", ["opens-continue"])["mode"] == "ptrace"
    )


def test_auto_refuses_naming_the_facility_when_ptrace_does_not_work() -> None:
    use = choose(facts(True, False, lacking=("pidfd_getfd",)))
    assert use["enforcing"] is False and use["mode"] is None
    assert "notify mode needs pidfd_getfd: EPERM" in use["summary"]
    assert "ptrace: EPERM: ptrace refused" in use["summary"]


@pytest.mark.parametrize(
    "lacking", [("unshare_fs",), ("pidfd_getfd",), ("unshare_fs", "pidfd_getfd")]
)
def test_notify_by_name_refuses_what_is_missing(lacking: tuple[str, ...]) -> None:
    use = choose(facts(True, True, lacking=lacking), "notify")
    assert use["enforcing"] is False and use["mode"] is None
    assert use["summary"].startswith("notify mode is unavailable (")
    for name in lacking:
        assert f"notify mode needs {name}: EPERM: {name} refused" in use["summary"]
    hint = "(--accept-weaker opens-continue runs without it)"
    assert (hint in use["summary"]) == ("unshare_fs" in lacking)


@pytest.mark.parametrize("lacking", [("unshare_fs",), ("openat2", "seccomp_addfd")])
def test_notify_runs_with_the_weaker_guarantee_accepted(lacking: tuple[str, ...]) -> None:
    use = choose(facts(True, True, lacking=lacking), "notify", ["opens-continue"])
    assert (use["enforcing"], use["mode"], use["weaker"]) == (True, "notify", ["opens-continue"])
    assert "accepted weaker guarantee opens-continue" in use["summary"]


def test_accepting_one_weakness_does_not_accept_another() -> None:
    use = choose(
        facts(True, True, lacking=("unshare_fs", "pidfd_getfd")), "notify", ["opens-continue"]
    )
    assert use["enforcing"] is False
    assert "pidfd_getfd" in use["summary"] and "needs unshare_fs" not in use["summary"]


def test_nothing_weaker_when_nothing_is_missing() -> None:
    use = choose(facts(True, True), "notify", ["opens-continue"])
    assert (use["mode"], use["weaker"], use["missing"]) == ("notify", [], [])


def test_unknown_weakness_and_mode_are_refused() -> None:
    with pytest.raises(ValueError, match="no such weaker guarantee: opens-anything"):
        choose(facts(True, True), "notify", ["opens-anything"])
    with pytest.raises(ValueError, match="not auto or notify"):
        choose(facts(True, True), "ptrace")
