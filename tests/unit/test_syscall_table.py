"""docs/security.md carries the syscall table the filter is built from."""

from __future__ import annotations

from pathlib import Path

from agentsh_ipy._linux import syscalls

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_docs_table_is_the_catalogs() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert syscalls.MARK_BEGIN in text and syscalls.MARK_END in text, "the table's markers are gone"
    assert syscalls.replace_table(text) == text, (
        "docs/security.md's syscall table differs from agentsh_ipy/_linux/syscalls.py; "
        "regenerate it: python -m agentsh_ipy._linux.syscalls --update docs/security.md"
    )


def test_every_entry_says_why() -> None:
    for name, entry in syscalls.CATALOG.items():
        assert entry.reason.strip(), name
        assert entry.kind in syscalls.Kind, name
        if entry.rules:
            assert entry.otherwise in (syscalls.ALLOW, syscalls.TRAP, syscalls.REFUSE), name


def test_a_changed_entry_shows_in_the_table() -> None:
    row = next(x for x in syscalls.markdown().splitlines() if "`vhangup`" in x)
    assert row.startswith("| refused |") and "terminal's session" in row
