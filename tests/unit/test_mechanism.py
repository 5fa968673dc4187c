"""What the sandbox chooses from host facts (no probing: crafted facts)."""

from __future__ import annotations

import platform

import pytest

from agentsh_ipy._linux.detect import HostFacts, Probe
from agentsh_ipy.supervisor._mechanism import (
    CHOICE_PROBES,
    FULL_MECHANISM,
    NOTIFY_NEEDS,
    STAND_INS,
    choose,
)

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
@pytest.mark.parametrize("lacking", [("openat2",), ("seccomp_addfd",), ("unshare_fs", "openat2")])
def test_auto_uses_ptrace_mode_when_a_notify_facility_is_missing(lacking: tuple[str, ...]) -> None:
    use = choose(facts(True, True, lacking=lacking))
    assert (use["enforcing"], use["mode"], use["missing"]) == (True, "ptrace", list(lacking))
    assert "openat2" in lacking or "seccomp_addfd" in lacking
    assert use["mechanism"] is None
    for name in lacking:
        if name not in STAND_INS:
            assert f"{name}: EPERM: {name} refused" in use["summary"]
    # auto keeps every guarantee: accepting a weaker one does not make it use it
    assert (
        choose(facts(True, True, lacking=lacking), "auto", ["opens-continue"])["mode"] == "ptrace"
    )


@X86
@pytest.mark.parametrize("mode", ["auto", "notify"])
@pytest.mark.parametrize(
    ("lacking", "mechanism"),
    [
        (("pidfd_getfd",), {"opens": "private-umask", "sockets": "ptrace-held"}),
        (("unshare_fs",), {"opens": "explicit-umask", "sockets": "fd-copy"}),
        (("pidfd_getfd", "unshare_fs"), {"opens": "explicit-umask", "sockets": "ptrace-held"}),
    ],
)
def test_stand_ins_keep_notify_mode_and_are_named(
    lacking: tuple[str, ...], mechanism: dict[str, str], mode: str
) -> None:
    """Docker's default profile refuses both (issue 19): notify mode keeps
    its guarantees another way, and says which."""
    use = choose(facts(True, True, lacking=lacking), mode)
    assert (use["enforcing"], use["mode"], use["weaker"]) == (True, "notify", [])
    assert (use["missing"], use["mechanism"]) == (list(lacking), mechanism)
    for name in lacking:
        assert f"without {name}: {STAND_INS[name][2]}" in use["summary"]


def test_the_full_mechanism_when_nothing_is_missing() -> None:
    assert choose(facts(True, True))["mechanism"] == FULL_MECHANISM


@pytest.mark.skipif(platform.machine() == "x86_64", reason="pidfd_getfd's stand-in traces")
def test_no_stand_in_for_pidfd_getfd_where_ptrace_mode_is_not_supported() -> None:
    use = choose(facts(True, True, lacking=("pidfd_getfd",)))
    assert use["enforcing"] is False
    assert "notify mode needs pidfd_getfd" in use["summary"]


def test_auto_refuses_naming_the_facility_when_ptrace_does_not_work() -> None:
    use = choose(facts(True, False, lacking=("pidfd_getfd",)))
    assert use["enforcing"] is False and use["mode"] is None
    assert "notify mode needs pidfd_getfd: EPERM" in use["summary"]
    assert "ptrace: EPERM: ptrace refused" in use["summary"]


@pytest.mark.parametrize("lacking", [("openat2",), ("seccomp_addfd", "unshare_fs")])
def test_notify_by_name_refuses_what_is_missing(lacking: tuple[str, ...]) -> None:
    use = choose(facts(True, True, lacking=lacking), "notify")
    assert use["enforcing"] is False and use["mode"] is None
    assert use["summary"].startswith("notify mode is unavailable (")
    for name in lacking:
        needs = f"notify mode needs {name}: EPERM: {name} refused"
        assert (needs in use["summary"]) == (name not in STAND_INS)
    assert "(--accept-weaker opens-continue runs without it)" in use["summary"]


@pytest.mark.parametrize("lacking", [("openat2",), ("openat2", "seccomp_addfd", "unshare_fs")])
def test_notify_runs_with_the_weaker_guarantee_accepted(lacking: tuple[str, ...]) -> None:
    use = choose(facts(True, True, lacking=lacking), "notify", ["opens-continue"])
    assert (use["enforcing"], use["mode"], use["weaker"]) == (True, "notify", ["opens-continue"])
    assert "accepted weaker guarantee opens-continue" in use["summary"]


def test_accepting_one_weakness_does_not_accept_another() -> None:
    use = choose(facts(False, True, lacking=("openat2",)), "notify", ["opens-continue"])
    assert use["enforcing"] is False
    assert "seccomp_user_notify" in use["summary"] and "needs openat2" not in use["summary"]


def test_nothing_weaker_when_nothing_is_missing() -> None:
    use = choose(facts(True, True), "notify", ["opens-continue"])
    assert (use["mode"], use["weaker"], use["missing"]) == ("notify", [], [])


def test_unknown_weakness_and_mode_are_refused() -> None:
    with pytest.raises(ValueError, match="no such weaker guarantee: opens-anything"):
        choose(facts(True, True), "notify", ["opens-anything"])
    with pytest.raises(ValueError, match="not auto or notify"):
        choose(facts(True, True), "ptrace")
