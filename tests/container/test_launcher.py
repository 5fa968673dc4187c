"""The container launcher is what it says: inside it a process is uid 1000
with no capability, Docker's default bounding set, and Docker's default
seccomp profile as runc loads it (the calls the sandbox's container
failures came from refused with EPERM, ptrace allowed, newer syscalls
ENOSYS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import linux_only

LAUNCH = Path(__file__).resolve().parent / "launch.py"
SYSTEM_PYTHON = "/usr/bin/python3"
# CapBnd of `docker run` with the default capabilities (oci/caps/defaults.go).
DOCKER_CAPBND = 0xA80425FB

PROBE = r"""
import ctypes, errno, json, os, signal

libc = ctypes.CDLL(None, use_errno=True)

def call(nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]

status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
              if ":\t" in line)
child = os.fork()
if child == 0:
    signal.pause()
    os._exit(0)
PTRACE_SEIZE, PTRACE_DETACH, CLONE_NEWUSER = 0x4206, 17, 0x10000000
seize = call(101, PTRACE_SEIZE, child, 0, 0)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
st = os.stat(os.environ["HOME"])
print(json.dumps({
    "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
    "caps": {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
    "no_new_privs": status["NoNewPrivs"].strip(),
    "seccomp": status["Seccomp"].strip(),
    "home_owner": [st.st_uid, st.st_gid],
    "unshare_newuser": call(272, CLONE_NEWUSER),
    "pidfd_getfd": call(438, 0, 0, 0),
    "process_vm_readv": call(310, os.getpid(), 0, 0, 0, 0, 0),
    "open_by_handle_at": call(304, -100, 0, 0),
    "ptrace_seize": seize,
    "clone3": call(435, 0, 0),
    "mseal": call(462, 0, 0, 0),
    "getpid": call(39),
}))
"""


def _launcher_ready() -> None:
    if os.geteuid() != 0:
        pytest.skip("the launcher drops from root to uid 1000; this run is not root")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.fail(f"{SYSTEM_PYTHON} is missing: the launcher runs with the system interpreter")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(
            f"{SYSTEM_PYTHON} cannot import seccomp ({probe.stderr.strip()[-200:]}): "
            "install python3-seccomp, as .ci/run does"
        )


@pytest.fixture(scope="module")
def inside() -> Iterator[dict[str, Any]]:
    _launcher_ready()
    parent = Path(tempfile.mkdtemp(prefix="agentsh-launcher-"))
    parent.chmod(0o755)
    home = parent / "home"  # made by the launcher, owned by 1000
    try:
        p = subprocess.run(
            [SYSTEM_PYTHON, str(LAUNCH), "--home", str(home), "--", SYSTEM_PYTHON, "-c", PROBE],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(parent)
    assert p.returncode == 0, p.stderr
    result: dict[str, Any] = json.loads(p.stdout)
    yield result


@linux_only
def test_uid_1000_without_groups(inside: dict[str, Any]) -> None:
    assert inside["ids"] == [[1000] * 3, [1000] * 3, []]
    assert inside["home_owner"] == [1000, 1000]


@linux_only
def test_no_capability_and_dockers_bounding_set(inside: dict[str, Any]) -> None:
    caps = inside["caps"]
    assert (caps["CapInh"], caps["CapPrm"], caps["CapEff"], caps["CapAmb"]) == (0, 0, 0, 0)
    assert caps["CapBnd"] == DOCKER_CAPBND
    # Docker sets no_new_privs only with --security-opt no-new-privileges.
    assert inside["no_new_privs"] == "0"


@linux_only
def test_dockers_default_profile_is_loaded(inside: dict[str, Any]) -> None:
    assert inside["seccomp"] == "2"
    # Refused by the profile without CAP_SYS_ADMIN / CAP_SYS_PTRACE /
    # CAP_DAC_READ_SEARCH: EPERM before the kernel looks at the arguments.
    for name in ("unshare_newuser", "pidfd_getfd", "process_vm_readv", "open_by_handle_at"):
        assert inside[name] == "EPERM", name
    assert inside["ptrace_seize"] == "ok"  # allowed from kernel 4.8 on
    assert inside["clone3"] == "ENOSYS"  # the profile's errnoRet, so libc falls back to clone
    assert inside["mseal"] == "ENOSYS"  # newer than the profile: runc's ENOSYS stub
    assert inside["getpid"] == "ok"
