"""Terminals: which /dev/pts/N a sandbox may open.

A pseudo-terminal made inside the sandbox is opened by name (open /dev/ptmx,
then /dev/pts/N: the peer ioctl TIOCGPTPEER is refused), so a policy has to
allow /dev/pts/**; by name alone it cannot tell that terminal from another
one's (the user's shell, another notebook's terminal), whose input it could
then read. The supervisor tells them apart: /dev/pts/N may be opened only
when it is the command's own terminal (rule own-terminal, see _session.py),
when a process of the sandbox holds its master (an fd on /dev/ptmx whose
fdinfo says ``tty-index: N``), or when a process of the sandbox already has
it open (a notebook's command gets the kernel's pty as stdin/stdout/stderr:
opening it again by name gives nothing new). Anything else is denied as
rule other-terminal, whatever the policy allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .. import policy as pol
from .._linux import procfs

OWN_TERMINAL_RULE = "own-terminal"
OTHER_TERMINAL_RULE = "other-terminal"
_PTS = "/dev/pts/"


def _index(path: str) -> int | None:
    rest = path[len(_PTS) :] if path.startswith(_PTS) else ""
    return int(rest) if rest.isdigit() else None


def check(
    policy: pol.Policy,
    members: Callable[[], Iterable[int]],
    pid: int,
    tid: int,
    ops: Sequence[str],
    paths: Sequence[str],
    decision: pol.Decision,
) -> pol.Decision:
    """``decision`` for an open of ``paths`` (the literal and the resolved
    path), or a denial when one of them is another terminal's /dev/pts/N.
    ``members``: the pids of every process of the sandbox."""
    if decision.decision == "deny":
        return decision
    wanted = {
        n
        for p in paths
        if (n := _index(p)) is not None
        and not all(policy.check_file(op, p).rule == OWN_TERMINAL_RULE for op in ops)
    }
    if not wanted:
        return decision
    # The caller first (by thread: it may have a file table of its own),
    # then every process of the sandbox, until each terminal is accounted for.
    for holder in dict.fromkeys([tid, pid, *members()]):
        masters, opened = procfs.terminals_held(holder)
        wanted -= masters | opened
        if not wanted:
            return decision
    names = ", ".join(f"{_PTS}{n}" for n in sorted(wanted))
    return pol.Decision(
        "deny",
        OTHER_TERMINAL_RULE,
        f"{names}: another terminal (not this command's, not made in the sandbox)",
    )
