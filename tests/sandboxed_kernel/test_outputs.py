"""What a sandboxed cell shows reaches the frontend only in forms that cannot
run code in the Jupyter server's page (issue 13), as root and as uid 65534.

JupyterLab runs the scripts of a trusted output (every output of a cell it
executed) with the server's origin: the _xsrf cookie is readable and the
REST API answers (an unsandboxed kernel, a terminal, any file). The cells here
send such outputs the ways a cell can: IPython's display objects, and raw
messages signed with the inner kernel's own key (which the sandbox holds).
The frontend (the test's client) must receive none of the code, the cell's
audit must name each refusal (rule ``frontend-outputs``), as must the JSON
Lines log, and ordinary outputs must arrive intact.

The control runs the same cells in a plain ipykernel: there every carrier
arrives as sent, so the absence under the sandbox is the proxy's doing.
tests/browser/ shows the same in JupyterLab with a real browser.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from agentsh_ipy.audit import is_denial
from tests.kernel._harness import make_user

from ._harness import AUDIT_MIME, SandboxedKernel, SkCell, sandboxed_area, write_kernelspec

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
    "kgAAAABJRU5ErkJggg=="
)

# Every carrier: if any of these strings reaches something the browser
# renders as HTML or runs, the page runs it.
ATTACK = r"""
import base64
from IPython.display import HTML, SVG, Javascript, Markdown, display
k = get_ipython().kernel
parent = k.get_parent()
display(Javascript("MARK_js()"))
display(HTML('<b>kept-bold</b><script>MARK_script()</script>'
             '<img src=x onerror="MARK_onerror()"><a href="javascript:MARK_href()">a</a>'
             '<img src="https://example.invalid/MARK_leak.png">'))
display(Markdown('# kept-title\n<img src=x onerror="MARK_md()">'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="MARK_svg()"><circle r="4"/></svg>'))
# raw messages, as a cell that skips IPython's display machinery would send
k.session.send(k.iopub_socket, "comm_open",
               {"comm_id": "c1", "target_name": "jupyter.widget",
                "data": {"state": {"value": "<img src=x onerror=MARK_comm()>"}}},
               parent=parent, ident=b"comm-c1")
k.session.send(k.iopub_socket, "display_data",
               {"data": {"text/plain": "raw", "application/vnd.custom+json": "MARK_custom"},
                "metadata": {}, "transient": {}}, parent=parent)
k.session.send(k.iopub_socket, "update_display_data",
               {"data": {"text/plain": "MARK_forged_audit"}, "metadata": {},
                "transient": {"display_id": "agentsh-audit-guess-1"}}, parent=parent)
None
"""

BENIGN = f"""
from IPython.display import HTML, JSON, Image, display
import base64
print("kept-print")
display(HTML('<style scoped>td {{color: red}}</style><table class="dataframe">'
             '<tr><th>col</th></tr><tr><td>kept-cell</td></tr></table>'
             '<a href="https://example.org/docs">docs</a>'))
display(Image(data=base64.b64decode("{PNG}"), format="png"))
display(JSON({{"kept": [1, 2]}}))
"""

MARKS = ("MARK_js", "MARK_script", "MARK_onerror", "MARK_href", "MARK_leak", "MARK_md",
         "MARK_svg", "MARK_comm", "MARK_custom", "MARK_forged_audit")  # fmt: skip


def rendered(cell: SkCell) -> str:
    """Everything of the cell's outputs that the frontend renders as more than
    plain text (text/plain and streams are shown as text)."""
    parts = [
        json.dumps(value)
        for o in cell.outputs
        if "data" in o and AUDIT_MIME not in o["data"]
        for mime, value in o["data"].items()
        if mime != "text/plain"
    ]
    return "\n".join(parts)


def displays(cell: SkCell) -> list[dict[str, Any]]:
    return [
        o["data"]
        for o in cell.outputs
        if o["output_type"] in ("display_data", "update_display_data")
        and AUDIT_MIME not in o["data"]
    ]


@pytest.fixture(scope="module")
def control() -> Iterator[SandboxedKernel]:
    """A plain ipykernel, run by the same driver: no proxy between."""
    area = sandboxed_area(make_user("root"))
    write_kernelspec(area, policy=area.policy, audit=area.audit)
    kernel = SandboxedKernel(area, name="python3")
    try:
        yield kernel
    finally:
        kernel.shutdown()


def test_control_every_carrier_arrives_without_the_sandbox(control: SandboxedKernel) -> None:
    cell = control.ok(ATTACK)
    shown = json.dumps(cell.outputs)
    for mark in MARKS:
        if mark == "MARK_comm":  # not an output: a message to the frontend's widgets
            continue
        assert mark in shown, f"{mark} did not arrive even unsandboxed: {cell.outputs}"
    assert "comm_open" in cell.iopub_types
    assert any("application/javascript" in d for d in displays(cell))
    assert any("<script>" in d.get("text/html", "") for d in displays(cell))


def test_no_code_reaches_the_frontend(kernel: SandboxedKernel) -> None:
    cell = kernel.ok(ATTACK)
    page = rendered(cell)
    for mark in MARKS:
        assert mark not in page, f"{mark} reached the frontend: {page}"
    assert "MARK_forged_audit" not in json.dumps(cell.outputs)
    assert "comm_open" not in cell.iopub_types, cell.iopub_types
    kinds = {mime for d in displays(cell) for mime in d}
    assert kinds <= {"text/plain", "text/html"}, kinds
    # what was harmless in them still shows, and the cell says what was held back
    html = [d["text/html"] for d in displays(cell) if "text/html" in d]
    assert any("<b>kept-bold</b>" in h for h in html), html
    plain = "\n".join(d.get("text/plain", "") for d in displays(cell))
    assert "# kept-title" in plain and "[agentsh: not shown: text/markdown" in plain
    assert "[agentsh: not shown: application/javascript" in plain
    assert "image/svg+xml" in plain and "application/vnd.custom+json" in plain

    # the audit under the cell and the log name every refusal
    refused = [
        e
        for e in cell.events_of("sandbox", op="output")
        if is_denial(e) and e.get("rule") == "frontend-outputs"
    ]
    by_mime = {e["mime"]: e for e in refused}
    for mime in ("application/javascript", "text/html", "text/markdown", "image/svg+xml",
                 "comm_open", "application/vnd.custom+json", "display_id"):  # fmt: skip
        assert mime in by_mime, f"no audit event for {mime}: {refused}"
    removed = by_mime["text/html"]["message"]
    assert "<script>" in removed and "onerror=" in removed and "href=javascript:" in removed
    assert "example.invalid" in removed
    logged = {e["seq"]: e for e in kernel.jsonl()}
    for e in refused:
        assert logged[e["seq"]]["rule"] == "frontend-outputs"
        assert logged[e["seq"]]["message"] == e["message"]


def test_ordinary_outputs_arrive_intact(kernel: SandboxedKernel, control: SandboxedKernel) -> None:
    cell = kernel.ok(BENIGN)
    assert cell.stdout == "kept-print\n"
    shown = displays(cell)
    assert len(shown) == 3, shown
    table, image, data = shown
    assert "<td>kept-cell</td>" in table["text/html"]
    assert 'href="https://example.org/docs"' in table["text/html"]
    assert "<style" not in table["text/html"]  # presentation, dropped quietly
    plain = displays(control.ok(BENIGN))
    assert image["image/png"] == plain[1]["image/png"]
    assert data["application/json"] == {"kept": [1, 2]} == plain[2]["application/json"]
    # Nothing refused: no audit at all (nothing else here is the sandbox's to decide).
    assert not cell.audits(), cell.outputs
