"""The harness itself, without the magic: a real kernel and a headless
notebook run as root and as uid 65534, and nbconvert's HTML export of the
audit display. What the magic tests rely on is shown here to hold: the
kernel's user, workspace and home are the area's, and without the sandbox
the same user CAN write outside the workspace and read the secret (so when
a sandboxed cell cannot, the sandbox did that)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from agentsh_ipy.audit import mimebundle
from tests.conftest import IS_ROOT, User

from ._harness import (
    AUDIT_MIME,
    SECRET,
    Kernel,
    html_contains,
    html_export,
    html_tokens,
    kernel_area,
    kernel_fixture,
    run_notebook,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


@pytest.fixture(scope="module", params=["root", "nobody"])
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    yield from kernel_fixture(request)


def test_kernel_runs_as_the_user_in_the_area(kernel: Kernel) -> None:
    area = kernel.area
    cell = kernel.ok("import os\nprint(os.getuid(), os.getcwd(), os.environ['HOME'])")
    assert cell.stdout.split() == [str(area.user.uid), str(area.ws), str(area.home)]


def test_without_the_sandbox_the_user_can_write_outside_and_read_the_secret(
    kernel: Kernel,
) -> None:
    target = kernel.area.outside / f"plain-{uuid.uuid4().hex[:8]}"
    cell = kernel.ok(f"!echo x > {target}; cat ~/.ssh/id_rsa\n_exit_code")
    assert target.read_text() == "x\n"
    assert SECRET in cell.stdout
    assert cell.without_audit()["results"] == ["0"]
    assert not cell.audits()


def test_shell_output_and_return_codes_reach_the_client(kernel: Kernel) -> None:
    # The shapes the magic tests compare: pty output of !cmd, fd-level output
    # of os.system, results and script-magic errors.
    sh = "echo out-1; echo err-1 >&2; exit 3"
    bang = kernel.ok(f"!{sh}\n_exit_code")
    assert bang.stdout == "out-1\r\nerr-1\r\n" and bang.without_audit()["results"] == ["3"]
    system = kernel.ok(f"import os\nos.waitstatus_to_exitcode(os.system({sh!r}))")
    assert (system.stdout, system.stderr) == ("out-1\n", "err-1\n")
    assert system.without_audit()["results"] == ["3"]
    script = kernel.run(f"%%bash\n{sh}\n")
    assert script.without_audit()["errors"][0][0] == "CalledProcessError"


def plain_notebook() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_markdown_cell("# plain"),
            new_code_cell("import os\nprint('uid', os.getuid())"),
            new_code_cell("!echo from-the-shell"),
            new_code_cell("from IPython.display import HTML\nHTML('<b>bold</b>')"),
        ],
        metadata=KERNELSPEC,
    )


def test_a_plain_notebook_runs_headless_as_the_user(user: User) -> None:
    area = kernel_area(user)
    try:
        nb = run_notebook(area, plain_notebook(), "plain")
    finally:
        area.cleanup()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    assert code[0].outputs[0].text == f"uid {user.uid}\n"
    assert code[1].outputs[0].text.strip() == "from-the-shell"
    assert code[2].outputs[0].data["text/html"] == "<b>bold</b>"


HOSTILE = "/var/lib/x/<script>alert(1)</script>.txt"


def audit_events() -> list[dict[str, object]]:
    base = {"ts": "2026-01-01T00:00:00.000000Z", "session": "s", "cell": 4}
    return [
        {**base, "seq": 1, "type": "exec", "pid": 10, "argv": ["sh", "-c", "x"],
         "decision": "allow", "rule": "default:command"},
        {**base, "seq": 2, "type": "file", "op": "create", "pid": 10, "path": HOSTILE,
         "decision": "deny", "rule": "default:file", "errno": "EACCES"},
        {**base, "seq": 3, "type": "process_exit", "pid": 10, "exit_code": 2},
    ]  # fmt: skip


def notebook_with_audit(bundle: dict[str, object] | None) -> nbformat.NotebookNode:
    cell = new_code_cell("%%agentsh\n!echo x > /var/lib/x/evil", execution_count=4)
    if bundle is not None:
        cell.outputs = [new_output("display_data", data=bundle)]
    return new_notebook(cells=[cell], metadata=KERNELSPEC)


def audit_fragment(page: str) -> str:
    """The audit display's part of an exported page: from its summary line
    to its last line (where the cell's events are)."""
    start = page.index("<p><strong>agentsh:</strong>")
    return page[start : page.index("</small></p>", start) + len("</small></p>")]


def test_the_audit_display_is_in_nbconvert_html_export() -> None:
    bundle = mimebundle(audit_events(), cell=4)
    page = html_export(notebook_with_audit(bundle))
    fragment = audit_fragment(page)
    assert html_contains(fragment, bundle["text/html"])
    assert html_tokens(fragment) == html_tokens(bundle["text/html"])
    # The hostile path is text, not markup, and the denial stands out.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment
    assert not re.search(r"<\s*(script|style)", fragment, re.I)
    [denied] = [row for row in fragment.split("<details>")[0].split("<tr>") if "create" in row]
    assert "<strong>DENIED</strong>" in denied and "default:file" in denied
    # the allowed operations and every event: folded, as in JupyterLab
    assert fragment.count("<details>") == 2 and "<summary>every event (3)</summary>" in fragment
    # The display adds no script or style of its own to the page.
    empty = html_export(notebook_with_audit(None))
    for tag in ("<script", "<style"):
        assert page.count(tag) == empty.count(tag)
    # The JSON representation is not dumped into the page.
    assert AUDIT_MIME not in page


EXPORT = """\
import sys
import nbformat
from nbconvert import HTMLExporter
nb = nbformat.read(sys.argv[1], as_version=4)
body, _ = HTMLExporter().from_notebook_node(nb)
open(sys.argv[2], "w").write(body)
"""


@pytest.mark.skipif(not IS_ROOT, reason="a network namespace of its own needs root")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_nbconvert_html_export_needs_no_network_and_no_pandoc(tmp_path: Path) -> None:
    # The templates and their CSS ship with nbconvert and jupyterlab_pygments;
    # pandoc is only for markdown conversions the HTML export of outputs does
    # not make. Run it with no network at all and pandoc off the PATH.
    src = tmp_path / "in.ipynb"
    nb = notebook_with_audit(mimebundle(audit_events(), cell=4))
    nb.cells.insert(0, new_markdown_cell("# Title\n\nSome *markdown*, $x^2$."))
    nbformat.write(nb, src)
    script = tmp_path / "export.py"
    script.write_text(EXPORT)
    out = tmp_path / "out.html"
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    p = subprocess.run(
        [
            shutil.which("unshare") or "unshare",
            "--net",
            sys.executable,
            str(script),
            str(src),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    page = out.read_text()
    assert html_contains(page, mimebundle(audit_events(), cell=4)["text/html"])
    assert "<em>markdown</em>" in page
