"""The three demo notebooks run in JupyterLab as a person would see them
(issue 20), with the server as root and as uid 65534.

A real JupyterLab on 127.0.0.1 (the set-up of test_jupyterlab_outputs: a
random token, HOME and every Jupyter directory in the test's scratch area,
every request to a host other than 127.0.0.1 aborted) is driven by Debian's
Chromium through Playwright, at 1280x800 with the file browser open. Each
demo notebook (quickstart and policy in the python3 kernel with the
``%%agentsh`` magic, sandboxed_kernel in the sandboxed kernel with its
default display) is opened from a copy in the workspace and run whole; then:

* the kernel is idle and every cell ran (the time is printed);
* no error dialog is open;
* every audit display fits its cell: nothing in it reaches past the output
  area's right edge and it has no horizontal scroll (a column cut off, a
  path that does not wrap);
* the first denial of each cell that has one is in the first lines of its
  audit: with the top of the audit scrolled into view, the denial is on
  the screen (not rows further down, past the cell);
* the allowed operations are folded (a closed ``<details>``).

Screenshots go to artifacts/screenshots/ (gitignored; CI keeps them): per
notebook and user, the screen at the first denial and the whole notebook.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.test_jupyterlab_outputs import (
    ALL_RAN,
    KERNEL_READY,
    RUN_ALL,
    Lab,
    _loopback_only,
    _settings,
    clean,
    shut_lab,
    start_lab,
)
from tests.conftest import REPO
from tests.sandboxed_kernel._harness import (
    make_user,
    require_kernel_module,
    sandboxed_area,
    write_kernelspec,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.slow,
]

SCREENSHOTS = REPO / "artifacts" / "screenshots"
NOTEBOOKS = REPO / "notebooks"
WIDTH, HEIGHT = 1280, 800
# code cell id -> it must show at least one denial
DENYING = {
    "quickstart": {"code-04"},
    "policy": {"code-09"},
    "sandboxed_kernel": {"code-05", "code-07", "code-09", "code-11", "code-13"},
}
# The pip cell's write into a root-owned environment: for uid 65534 the file
# permissions may refuse it first (pip sees site-packages unwritable and
# tries no write), so its denial is required of root only (as in
# tests/notebooks/test_demo_notebooks.py).
DENYING_AS_ROOT_ONLY = {"code-11"}

# Per audit display (an output whose HTML starts with "agentsh:"): its
# cell's id, how far it and its parts reach past the output area, whether
# it scrolls sideways, where its first denial is, whether its <details> are
# closed.
AUDITS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const out = [];
  for (const cell of w.content.widgets) {
    const area = cell.node.querySelector('.jp-OutputArea');
    if (!area) continue;
    for (const o of area.querySelectorAll('.jp-OutputArea-output')) {
      const p = o.querySelector('p');
      if (!p || !p.textContent.startsWith('agentsh:')) continue;
      const edge = o.getBoundingClientRect().right;
      let past = 0;
      for (const e of o.querySelectorAll('*')) {
        const r = e.getBoundingClientRect();
        if (r.width > 0) past = Math.max(past, r.right - edge);
      }
      const deny = Array.from(o.querySelectorAll('td')).find(td => td.textContent === 'DENIED');
      out.push({
        id: cell.model.id, past: past, scrolls: o.scrollWidth - o.clientWidth,
        text: o.textContent.slice(0, 200), denial: !!deny,
        closed: Array.from(o.querySelectorAll('details')).every(d => !d.open),
      });
    }
  }
  return out;
}"""
# Scroll the audit of cell ID to the top of the notebook's viewport; the
# first denial's place on the screen, and the screen's height.
FIRST_DENIAL = """id => {
  const w = window.jupyterapp.shell.currentWidget;
  const cell = w.content.widgets.find(c => c.model.id === id);
  const p = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output p'))
    .find(p => p.textContent.startsWith('agentsh:'));
  p.scrollIntoView({block: 'start'});
  const td = Array.from(p.parentElement.querySelectorAll('td'))
    .find(td => td.textContent === 'DENIED');
  const r = td.parentElement.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, height: window.innerHeight};
}"""
DIALOGS = "() => document.querySelectorAll('.jp-Dialog').length"
LEFT_OPEN = "() => !window.jupyterapp.shell.leftCollapsed"
OPEN_FILES = "() => { window.jupyterapp.commands.execute('filebrowser:activate'); }"
SCROLL_HEIGHT = """() => {
  const o = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  if (o) o.scrollTop = 0;
  return o ? o.scrollHeight : 0;
}"""


@pytest.fixture(scope="module", params=["root", "nobody"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_kernel_module()
    user = make_user(request.param)
    area = sandboxed_area(user)
    # The demo's own kernel: the built-in policy and the default display.
    write_kernelspec(area, name="agentsh", audit=area.audit, extra=("--display", "summary"))
    _settings(area)
    for name in DENYING:
        area.write(f"ws/{name}.ipynb", (NOTEBOOKS / f"{name}.ipynb").read_text())
    server = start_lab(area)
    lab = Lab(server, area)
    try:
        yield lab
    finally:
        shut_lab(lab, tmp_path_factory)


def _run(lab: Lab, page: Page, name: str) -> dict[str, float]:
    times: dict[str, float] = {}
    t0 = time.monotonic()
    page.goto(lab.url(f"/lab/tree/{name}.ipynb?reset&token={lab.server.token}"))
    page.wait_for_function(KERNEL_READY, arg=f"{name}.ipynb", timeout=120_000, polling=200)
    times["kernel idle"] = time.monotonic() - t0
    if not page.evaluate(LEFT_OPEN):
        page.evaluate(OPEN_FILES)
    page.wait_for_function(LEFT_OPEN, timeout=10_000)
    page.evaluate(RUN_ALL)
    page.wait_for_function(ALL_RAN, timeout=240_000, polling=250)
    times["all ran"] = time.monotonic() - t0
    page.wait_for_timeout(500)  # one layout of the last outputs
    return times


@pytest.mark.parametrize("name", list(DENYING))
def test_demo_notebook_reads_at_a_glance(lab: Lab, browser: Browser, name: str) -> None:
    user = lab.area.user.name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        context.route("**/*", lambda route: _loopback_only(route, blocked))
        page = context.new_page()
        times = _run(lab, page, name)
        print(f"{user} {name}: {times}")
        assert page.evaluate(DIALOGS) == 0, "an error dialog is open"
        audits: list[dict[str, Any]] = page.evaluate(AUDITS)
        shown = {a["id"] for a in audits}
        assert DENYING[name] <= shown, (sorted(shown), audits)
        for a in audits:
            # Nothing cut at the right, nothing to scroll sideways.
            assert a["past"] <= 1 and a["scrolls"] <= 1, a
            assert a["closed"], a  # the allowed operations are folded
        root = lab.area.user.uid == 0
        denying = DENYING[name] if root else DENYING[name] - DENYING_AS_ROOT_ONLY
        for cell in sorted(denying):
            [a] = [a for a in audits if a["id"] == cell]
            assert a["denial"], a
            where = page.evaluate(FIRST_DENIAL, cell)
            page.wait_for_timeout(200)
            where = page.evaluate(FIRST_DENIAL, cell)  # after any layout the scroll caused
            assert where["top"] >= 0 and where["bottom"] <= where["height"], (cell, where)
            if cell == min(DENYING[name]):
                page.screenshot(path=str(SCREENSHOTS / f"{user}-{name}-first-denial.png"))
        # The whole notebook: the viewport as tall as its content, as wide.
        height = page.evaluate(SCROLL_HEIGHT)
        page.set_viewport_size({"width": WIDTH, "height": min(max(HEIGHT, height + 200), 6000)})
        page.evaluate(SCROLL_HEIGHT)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"{user}-{name}.png"))
        print(f"requests aborted (not to 127.0.0.1): {blocked}")
    finally:
        context.close()
        clean(lab)
