"""The seam of the native fast path: file decisions by the C matcher
(agentsh_ipy_native) when it is there and not switched off, else by the
pure-Python engine, which stays the reference (tests compare the two).

Everything around a file decision (/proc of other processes, terminals,
soft_delete, approvals, emulated opens) stays in the decoder; only the
first-match walk over the file rules is done in C.
"""

from __future__ import annotations

import os
from types import ModuleType

from .. import policy as pol
from ..policy._table import OP_BITS, compile_file_rules

ENV = "AGENTSH_IPY_FAST"
"""``0`` switches the fast path off (the tests run both ways with it)."""


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(ENV, "1") == "0":
        return None, f"switched off ({ENV}=0)"
    try:
        import agentsh_ipy_native as _native
    except ImportError as e:  # built without a C compiler, or a broken build
        return None, f"the extension agentsh_ipy_native does not load: {e}"
    return _native, ""


def status() -> str:
    """``on``, or ``off: <why>`` (the start event and ``detect`` say it)."""
    native, why = _load()
    return "on" if native is not None else f"off: {why}"


def expected() -> str:
    """What status() must say when the extension is built (it is, by the
    package build): for tests, which run both ways."""
    if os.environ.get(ENV, "1") == "0":
        return f"off: switched off ({ENV}=0)"
    return "on"


class FileDecider:
    """``check_file`` as Policy.check_file answers it, by the fast path if on."""

    def __init__(self, policy: pol.Policy) -> None:
        self.policy = policy
        native, self.why = _load()
        self._table = None
        if native is not None:
            self._table = native.FileTable(compile_file_rules(policy.file_rules))
        # One Decision per rule, built once: the C side answers with an index.
        self._decisions = [pol.Decision(r.decision, r.name, r.message) for r in policy.file_rules]
        self._default = pol.Decision(policy.defaults.file, "default:file")

    @property
    def on(self) -> bool:
        return self._table is not None

    def check_file(self, op: str, path: str) -> pol.Decision:
        bit = OP_BITS.get(op)
        if self._table is None or bit is None:
            return self.policy.check_file(op, path)  # (an unknown op raises there)
        try:
            raw = os.fsencode(path)
        except UnicodeEncodeError:  # not from fsdecode: the reference decides it
            return self.policy.check_file(op, path)
        i: int = self._table.match(bit, raw)
        return self._decisions[i] if i >= 0 else self._default
