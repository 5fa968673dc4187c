"""tests/notebooks/magic.ipynb executed headless with nbclient (no stdin),
as root and as uid 65534; assertions on its saved outputs, on the files its
cells tried to write, and on nbconvert's HTML export of the result."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import TEST_POLICY, Area, User

from ._harness import AUDIT_MIME, SECRET, html_contains, html_export, kernel_area, run_notebook

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "magic.ipynb"


def audit_of(cell: Any) -> dict[str, Any]:
    """The cell's audit display: exactly one, and its last output."""
    audits = [o for o in cell.outputs if o.output_type == "display_data" and AUDIT_MIME in o.data]
    assert len(audits) == 1, cell.outputs
    assert cell.outputs[-1] is audits[0], "the audit is not the cell's last output"
    return dict(audits[0].data)


def file_event(data: dict[str, Any], path: Path) -> dict[str, Any]:
    [event] = [
        e
        for e in data[AUDIT_MIME]["events"]
        if e["type"] == "file" and e.get("path") == str(path) and e.get("decision") != "allow"
    ]
    return dict(event)


def stdout(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


@pytest.fixture
def executed(user: User) -> Any:
    area: Area = kernel_area(user)
    ask = (
        f"  - {{name: ask-first, paths: ['{area.outside}/**'], operations: ['*'],"
        " decision: approve}\n"
    )
    policy = area.write("ask.yaml", TEST_POLICY.replace("file_rules:\n", "file_rules:\n" + ask))
    try:
        nb = run_notebook(
            area,
            nbformat.read(NOTEBOOK, as_version=4),
            "magic",
            AGENTSH_TEST_ASK_POLICY=str(policy),
        )
        yield area, nb
    finally:
        area.cleanup()


def test_magic_notebook_outputs(executed: tuple[Area, Any]) -> None:
    area, nb = executed
    out = area.outside
    cells = {c.id: c for c in nb.cells if c.cell_type == "code"}
    for cell in cells.values():
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{cell.id}: {errors}"

    # Shell forms: the workspace write lands, the write outside and the
    # read of ~/.ssh do not, and the audit says so for this cell.
    shell = cells["cell-2"]
    assert "hello from the sandbox" in stdout(shell)
    assert (area.ws / "inside.txt").read_text() == "hello from the sandbox\n"
    assert not (out / "nb-bang").exists()
    assert SECRET not in str(shell.outputs)
    data = audit_of(shell)
    assert data[AUDIT_MIME]["cell"] == shell.execution_count
    assert file_event(data, out / "nb-bang")["rule"] == "default:file"
    assert file_event(data, area.home / ".ssh" / "id_rsa")["rule"] == "credentials"
    assert not re.search(r"<\s*(script|style)", data["text/html"], re.I)
    lines = data["text/plain"].splitlines()
    [line] = [ln for ln in lines if "nb-bang" in ln and ln.startswith("! ")]  # the full table
    assert line.startswith("!") and "DENY" in line
    assert any(ln.startswith("  ! create ") and "nb-bang" in ln for ln in lines[:5]), lines

    # subprocess: the command fails as it would on a read-only file system.
    sub = cells["cell-3"]
    [rc] = re.findall(r"returncode (\d+)", stdout(sub))
    assert rc != "0"
    assert not (out / "nb-subprocess").exists()
    assert file_event(audit_of(sub), out / "nb-subprocess")["decision"] == "deny"

    # approve with nobody to ask: denied at once, and the audit says why.
    asked = cells["cell-4"]
    assert not (out / "nb-asked").exists()
    event = file_event(audit_of(asked), out / "nb-asked")
    assert event["rule"] == "ask-first"
    assert "no approver" in str(event.get("approval", "")).lower(), event

    # The companion without the magic: the same user's write lands, no audit.
    plain = cells["cell-6"]
    assert (out / "nb-plain").read_text() == "plain\n"
    assert not [o for o in plain.outputs if AUDIT_MIME in o.get("data", {})]

    # nbconvert's HTML export shows every audit table as it was displayed.
    page = html_export(nb)
    for key in ("cell-2", "cell-3", "cell-4"):
        assert html_contains(page, audit_of(cells[key])["text/html"]), key
    assert SECRET not in page
