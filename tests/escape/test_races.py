"""Races on answers the kernel used to carry out after the decision (issue 17
item 7): a thread flips the path buffer of a rename, link, symlink, mkdir,
mknod or unlink between an allowed name and a forbidden one. The supervisor
now carries out the name operations itself, in pinned parent directories,
so the forbidden name is never reached. The same for opens: openat2, an
outside process's /proc/PID/environ, and a buffer in a MAP_SHARED page that
another process flips (ptrace mode refuses such an argument). The forbidden names are ones only
the supervisor's decision holds (Landlock grants the tree they are in): a
shell startup file in a writable HOME, the trash in the workspace, the key
in a writable HOME.

The cases and the checks are test_escape's: each program first escapes
without the sandbox (test_program_escapes_unsandboxed), then fails inside
it, as root and as uid 65534, in notify and ptrace mode, and in notify mode
under a launcher refusing pidfd_getfd and unshare(CLONE_FS) (BLOCKED_MODE).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import BLOCKED_MODE, Run
from tests.escape import test_escape as te
from tests.escape.conftest import Ctx

pytestmark = te.pytestmark


def done_not_won(c: Ctx, r: Run) -> None:
    assert te.number(r, "done") > 0, "the allowed name never worked: the race never ran"
    assert te.number(r, "won") == 0, r.stdout


def _race(
    op: str, allowed: Callable[[Ctx], Path], forbidden: Callable[[Ctx], Path]
) -> Callable[[Ctx], Sequence[str]]:
    return lambda c: (op, str(allowed(c)), str(forbidden(c)), "2")


def _bashrc(c: Ctx) -> Path:
    return c.home / ".bashrc"


def _trash(c: Ctx) -> Path:
    return c.ws / ".agentsh-trash"


def _ok(c: Ctx) -> Path:
    return c.ws / "race-ok"


def _about(path: Callable[[Ctx], Path]) -> Callable[[Ctx, Run], Path]:
    return lambda c, r: path(c)


def _race_open(
    variant: str, forbidden: Callable[[Ctx], str], allowed: Callable[[Ctx], str] | None = None
) -> Callable[[Ctx], Sequence[str]]:
    first = allowed or (lambda c: str(c.allowed))
    return lambda c: (variant, first(c), forbidden(c), "2")


def _environ(c: Ctx) -> str:
    return f"/proc/{c.env_victim().pid}/environ"


def tried_not_leaked(c: Ctx, r: Run) -> None:
    """Opens of the shared buffer were made (in ptrace mode every one may be
    refused: the buffer is memory another process writes) and none read
    anything but the allowed file."""
    assert te.number(r, "iterations") > 0, "no open was tried: the race never ran"
    assert te.number(r, "leaked") == 0, r.stdout


SHELL = "protected:shell-startup"
STATE = "protected:agentsh-state"

RACES: list[te.Case] = [
    *[
        te.Case(
            f"race-{op}-onto-bashrc",
            "race_names.py",
            _race(op, _ok, _bashrc),
            policy=lambda c: te.HOME_RW,
            effect=[done_not_won, te.missing(_bashrc)],
            audit=[te.denied_file(_about(_bashrc), op=audit_op, rule=SHELL)],
            slow=True,
        )
        for op, audit_op in (
            ("rename", "rename"),
            ("link", "link"),
            ("symlink", "link"),
            ("mknod", "create"),
        )
    ],
    *[
        te.Case(
            f"race-{op}-into-trash",
            "race_names.py",
            _race(op, _ok, _trash),
            effect=[done_not_won, te.missing(_trash)],
            audit=[te.denied_file(_about(_trash), op=audit_op, rule=STATE)],
            slow=True,
        )
        for op, audit_op in (("rename", "rename"), ("mkdir", "mkdir"))
    ],
    te.Case(
        "race-unlink-key",
        "race_names.py",
        lambda c: ("unlink", str(_ok(c)), str(c.key), "2"),
        policy=lambda c: te.HOME_RW,
        effect=[done_not_won, te.present(lambda c: c.key)],
        audit=[te.denied_file(te._key, op="delete", rule="credentials")],
        slow=True,
    ),
]


# Opens: an allowed path flipped to a forbidden one (item 7, second pass).
RACES += [
    *te.and_home_rw(
        te.Case(
            "race-openat2-key",
            "race_open.py",
            _race_open("openat2", lambda c: str(c.key)),
            effect=[te.race_lost],
            audit=[te.denied_file(te._key, syscalls=("openat2",), rule="credentials")],
            slow=True,
        )
    ),
    # /proc/PID/environ of a process outside, which holds the secret in its
    # environment, raced against the caller's own /proc/self/status.
    te.Case(
        "race-proc-environ-outside",
        "race_open.py",
        _race_open("open", _environ, lambda c: "/proc/self/status"),
        effect=[te.race_lost],
        audit=[te.denied_file(lambda c, r: _environ(c), rule=te.PROC_RULES)],
        slow=True,
    ),
    # Another process flips a MAP_SHARED page: notify mode opens what it
    # decided; ptrace mode refuses a continued call reading such memory.
    *te.and_home_rw(
        te.Case(
            "race-shared-page-key",
            "race_open.py",
            _race_open("shared", lambda c: str(c.key)),
            effect=[tried_not_leaked],
            audit=[te.Expect(("file",), rule=("credentials", "shared-memory-argument"))],
            slow=True,
        )
    ),
]


@pytest.mark.parametrize("mode", ["notify", "ptrace", BLOCKED_MODE])
@pytest.mark.parametrize("case", te._params(RACES))
def test_race(case: te.Case, world: Ctx, mode: str) -> None:
    te.test_escape(case, world, mode)


# The path-swap racers of the escape suite, in notify mode on a host refusing
# pidfd_getfd and unshare(CLONE_FS) as Docker's default profile does (issue
# 19): opens still done by the supervisor, on the path decided.
SWAPS = [c for c in te.CASES if c.name.startswith(("race-path-buffer-swap", "race-symlink-swap"))]


@pytest.mark.parametrize("case", te._params(SWAPS))
def test_swap_race_without_privileged_calls(case: te.Case, world: Ctx) -> None:
    te.test_escape(case, world, BLOCKED_MODE)


@pytest.mark.parametrize("case", te._params(RACES))
def test_race_wins_unsandboxed(case: te.Case, world: Ctx) -> None:
    te.test_program_escapes_unsandboxed(case, world)
