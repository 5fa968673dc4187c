"""Host probes (agentsh_ipy._linux.detect) against the real kernel.

This machine (and CI, on the same kind of machine) runs Linux 6.18 as root
with seccomp user-notify, Landlock, ptrace and user namespaces; the tests
assert those facts, version-gated where a mechanism is newer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.platform != "linux":
    pytest.skip("Linux plumbing", allow_module_level=True)

from agentsh_ipy._linux import detect
from agentsh_ipy._linux.detect import PROBE_NAMES, HostFacts, Probe, probe_host

REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL = detect._kernel_version(os.uname().release)


@pytest.fixture(scope="module")
def facts() -> HostFacts:
    return probe_host()


def _status_field(name: str) -> str:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == name:
                return value.strip()
    raise KeyError(name)


def _children() -> set[int]:
    me = str(os.getpid())
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[1] == me:
            out.add(int(entry))
    return out


def test_every_probe_once_in_order(facts: HostFacts) -> None:
    assert tuple(p.name for p in facts.probes) == PROBE_NAMES
    assert facts.kernel == os.uname().release
    assert facts.machine == os.uname().machine
    assert facts.arch_supported == (facts.machine in ("x86_64", "aarch64"))
    for p in facts.probes:
        assert isinstance(p, Probe)
        assert p.detail, p
    with pytest.raises(KeyError):
        facts.get("no_such_probe")


def test_only_the_named_probes_and_the_same_choice(facts: HostFacts) -> None:
    from agentsh_ipy.supervisor._mechanism import CHOICE_PROBES, choose

    some = probe_host(only=set(CHOICE_PROBES))
    assert tuple(p.name for p in some.probes) == tuple(n for n in PROBE_NAMES if n in CHOICE_PROBES)
    for p in some.probes:
        assert p == facts.get(p.name)
    with pytest.raises(KeyError):
        some.get("user_namespaces")  # not probed: never reported as a fact
    assert choose(some) == choose(facts)
    with pytest.raises(ValueError, match="no such probe: nope"):
        probe_host(only=["ptrace", "nope"])


def test_seccomp_user_notify(facts: HostFacts) -> None:
    p = facts.get("seccomp_user_notify")
    assert p.available, p.detail
    assert "ENOENT" in p.detail


@pytest.mark.skipif(KERNEL < (5, 9), reason="NOTIF_ADDFD needs Linux 5.9")
def test_seccomp_addfd(facts: HostFacts) -> None:
    p = facts.get("seccomp_addfd")
    assert p.available, p.detail


@pytest.mark.skipif(KERNEL < (5, 6), reason="pidfd_getfd and openat2 need Linux 5.6")
@pytest.mark.parametrize("name", ["pidfd_getfd", "unshare_fs", "openat2"])
def test_notify_helpers(facts: HostFacts, name: str) -> None:
    # Notify mode's own calls for the tracee: natively, none is refused.
    p = facts.get(name)
    assert p.available, p.detail
    assert p.detail.endswith(" works")


def test_wait_killable_recv_matches_kernel(facts: HostFacts) -> None:
    p = facts.get("wait_killable_recv")
    assert p.available == (KERNEL >= (5, 19)), p.detail
    if not p.available:
        assert p.detail.startswith("EINVAL")


def test_landlock_abi(facts: HostFacts) -> None:
    p = facts.get("landlock")
    assert p.available, p.detail
    assert isinstance(p.value, int)
    assert p.value >= 1
    assert p.detail == f"ABI {p.value}"


def test_ptrace(facts: HostFacts) -> None:
    p = facts.get("ptrace")
    assert p.available, p.detail


def test_process_vm_readv(facts: HostFacts) -> None:
    p = facts.get("process_vm_readv")
    assert p.available, p.detail
    assert p.value in ("process_vm_readv", "/proc/PID/mem")
    assert "process_vm_readv: ok" in p.detail


def test_user_namespaces(facts: HostFacts) -> None:
    p = facts.get("user_namespaces")
    assert p.available, p.detail
    limit = Path("/proc/sys/user/max_user_namespaces")
    if limit.exists():
        assert p.value == int(limit.read_text())


def test_yama_matches_proc(facts: HostFacts) -> None:
    p = facts.get("yama")
    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    if scope.exists():
        assert p.available
        assert p.value == int(scope.read_text())
        assert p.detail.startswith(f"ptrace_scope={p.value} (")
    else:
        assert not p.available
        assert p.value is None
        assert "Yama is not active" in p.detail


def test_to_dict_round_trips_through_json(facts: HostFacts) -> None:
    data = facts.to_dict()
    text = json.dumps(data)
    assert json.loads(text) == data
    assert HostFacts.from_dict(json.loads(text)) == facts
    probes = data["probes"]
    assert isinstance(probes, dict)
    assert list(probes) == list(PROBE_NAMES)


def test_fast_and_leaves_the_caller_unchanged() -> None:
    fds = set(os.listdir("/proc/self/fd"))
    nnp, mode = _status_field("NoNewPrivs"), _status_field("Seccomp")
    start = time.monotonic()
    probe_host()
    assert time.monotonic() - start < 10
    # The probes that set no_new_privs or install filters ran in children.
    assert _status_field("NoNewPrivs") == nnp
    assert _status_field("Seccomp") == mode
    assert _status_field("TracerPid") == "0"
    # No fd leaked (a listener fd received over SCM_RIGHTS, a pipe, a pidfd) ...
    assert set(os.listdir("/proc/self/fd")) == fds
    # ... and no child left behind, zombie or not.
    assert _children() == set()


def test_works_with_four_running_threads() -> None:
    stop = threading.Event()

    def churn(i: int) -> None:
        # Allocate, take the GIL, make syscalls: whatever a kernel's threads do.
        while not stop.is_set():
            json.dumps([{"i": i, "x": list(range(50))}] * 20)
            os.listdir("/proc/self/fd")
            time.sleep(0)

    threads = [threading.Thread(target=churn, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    try:
        assert threading.active_count() >= 5
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            facts = probe_host()
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    for name in (
        "seccomp_user_notify",
        "seccomp_addfd",
        "ptrace",
        "process_vm_readv",
        "landlock",
        "user_namespaces",
    ):
        assert facts.get(name).available, facts.get(name)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert _children() == set()


def test_works_from_a_worker_thread() -> None:
    # After fork the child's only thread is the one that forked; the probes
    # that set signal dispositions there must still work.
    out: list[HostFacts] = []
    t = threading.Thread(target=lambda: out.append(probe_host()))
    t.start()
    t.join(30)
    assert out, "probe_host did not finish"
    for name in ("seccomp_user_notify", "ptrace", "process_vm_readv"):
        assert out[0].get(name).available, out[0].get(name)


def test_stalled_probe_is_killed_within_the_bound() -> None:
    def stall(ctx: detect._Ctx) -> dict[str, object]:
        ctx.step = "stalling"
        while True:
            signal.pause()

    start = time.monotonic()
    with detect._Child(stall) as child:
        report = child.recv(time.monotonic() + 0.5)
        pid = child.pid
    elapsed = time.monotonic() - start
    assert report.get("timeout") is True, report
    assert 0.4 < elapsed < 3, elapsed
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped


def test_probe_killed_by_a_signal_is_reported() -> None:
    def die(ctx: detect._Ctx) -> dict[str, object]:
        os.kill(os.getpid(), signal.SIGKILL)
        return {}

    report = detect._run(die, 5.0)
    assert report == {"error": "the probe process was killed by SIGKILL without a report"}


def test_child_errors_carry_errno_name_and_step() -> None:
    def fail(ctx: detect._Ctx) -> dict[str, object]:
        ctx.step = "the thing"
        raise PermissionError(1, "nope")

    report = detect._run(fail, 5.0)
    assert report["errno"] == 1
    assert detect._failure(report, {1: "refused (profile?)"}) == (
        "EPERM: the thing failed: refused (profile?)"
    )


def test_not_linux_imports_and_reports(tmp_path: Path) -> None:
    # Pretend to be macOS: no libc wrapper, no python-ptrace, no fcntl.
    code = (
        "import sys\n"
        "for m in ('fcntl', 'ptrace', 'agentsh_ipy._linux._syscall'):\n"
        "    sys.modules[m] = None\n"
        "sys.platform = 'darwin'\n"
        "import json\n"
        "from agentsh_ipy._linux.detect import probe_host\n"
        "print(json.dumps(probe_host().to_dict()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    facts = HostFacts.from_dict(json.loads(out.stdout))
    assert not facts.arch_supported
    assert [p.name for p in facts.probes] == list(PROBE_NAMES)
    assert all(not p.available and p.detail == "not Linux" for p in facts.probes)


@pytest.fixture
def unprivileged_python() -> Iterator[tuple[str, Path]]:
    """An interpreter uid 65534 can run, and a world-readable copy of
    agentsh_ipy and python-ptrace (the repo or site-packages may sit under
    a home directory that uid 65534 cannot enter)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to uid 65534")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import ptrace

    tmp = Path(tempfile.mkdtemp(prefix="agentsh-detect-"))
    try:
        shutil.copytree(
            REPO_ROOT / "agentsh_ipy",
            tmp / "agentsh_ipy",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copytree(
            Path(ptrace.__file__).parent,
            tmp / "ptrace",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for d, _dirs, files in os.walk(tmp):
            os.chmod(d, 0o755)
            for name in files:
                os.chmod(os.path.join(d, name), 0o644)
        check = "import sys, ctypes; assert sys.version_info >= (3, 11)"
        for candidate in (sys.executable, "/usr/bin/python3"):
            ok = subprocess.run(
                [
                    setpriv,
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    candidate,
                    "-c",
                    check,
                ],
                capture_output=True,
                cwd=tmp,
                timeout=60,
            )
            if ok.returncode == 0:
                yield candidate, tmp
                return
        pytest.skip("no Python 3.11+ interpreter that uid 65534 may run")
    finally:
        shutil.rmtree(tmp)


def test_unprivileged_user_gets_notify_and_ptrace(
    unprivileged_python: tuple[str, Path],
) -> None:
    python, tmp = unprivileged_python
    code = (
        "import json, os\n"
        "from agentsh_ipy._linux.detect import probe_host\n"
        "print(json.dumps({'uid': os.getuid(), 'facts': probe_host().to_dict()}))\n"
    )
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tmp)},
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["uid"] == 65534
    facts = HostFacts.from_dict(data["facts"])
    # no_new_privs is what lets an unprivileged process install the filter.
    for name in ("seccomp_user_notify", "ptrace", "process_vm_readv"):
        assert facts.get(name).available, facts.get(name)
    if KERNEL >= (5, 14):
        assert facts.get("seccomp_addfd").available, facts.get("seccomp_addfd")


def test_unavailable_probe_names_errno() -> None:
    # A filter refusing seccomp(2) with EPERM, as a container profile would:
    # run probe_host in a child that carries it, and read the words.
    code = (
        "import json, struct\n"
        "from agentsh_ipy._linux import arch, wrapper, _syscall\n"
        "nr = arch.current().nr('seccomp')\n"
        "prog = b''.join(struct.pack('<HBBI', *i) for i in (\n"
        "    (0x20, 0, 0, 0), (0x15, 0, 1, nr), (0x06, 0, 0, 0x00050001),\n"
        "    (0x06, 0, 0, 0x7FFF0000)))\n"
        "_syscall.prctl(_syscall.PR_SET_NO_NEW_PRIVS, 1)\n"
        "import ctypes\n"
        "buf = ctypes.create_string_buffer(prog, len(prog))\n"
        "fprog = ctypes.create_string_buffer(struct.pack('@HP', len(prog) // 8,\n"
        "    ctypes.addressof(buf)))\n"
        "_syscall.syscall(nr, 1, 0, ctypes.c_void_p(ctypes.addressof(fprog)), what='seccomp')\n"
        "from agentsh_ipy._linux.detect import probe_host\n"
        "print(json.dumps(probe_host().to_dict()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    facts = HostFacts.from_dict(json.loads(out.stdout))
    p = facts.get("seccomp_user_notify")
    assert not p.available
    assert re.match(r"EPERM: installing a filter with NEW_LISTENER failed: refused", p.detail), p
    assert facts.get("seccomp_addfd").detail.startswith("EPERM"), facts.get("seccomp_addfd")
    # The rest of the host still probes normally.
    assert facts.get("landlock").available
    assert facts.get("ptrace").available
